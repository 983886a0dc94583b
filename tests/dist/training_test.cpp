// Training under real mpirun: replicas stay identical, and N ranks train like one process with N
// times the batch (with overlap on and off, with accumulation, with 16-bit gradients).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "ddp/core/files.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/trainer.h"
#include "dist_helpers.h"
#include "fixtures.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::flat_buffers;
using testing::flat_params;
using testing::kTimeout;
using testing::small_config;
using testing::TempDir;
using testing::write_cifar10_file;

TEST(Training, ReplicasStayBitIdentical) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  for (const char* model : {"seed_cnn", "resnet9"}) {
    TempDir dir;
    const bool big = std::string(model) == "resnet9";
    Config c =
        small_config(dir, {std::string("model.name=") + model, "data.augment=true", "train.momentum=0.9",
                           "train.max_steps=" + std::string(big ? "2" : "6"),
                           "train.batch_size=" + std::string(big ? "4" : "16"), "data.synthetic_train=256",
                           "data.synthetic_test=" + std::string(big ? "8" : "64")});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    at::Tensor mine = flat_params(trainer.model());
    at::Tensor all = comm.all_gather(mine);
    at::Tensor all_buffers = comm.all_gather(flat_buffers(trainer.model()));
    for (int r = 1; r < comm.size(); ++r) {
      EXPECT_TRUE(torch::equal(all[r], all[0]))
          << model << ": parameters of rank " << r << " differ from rank 0";
      EXPECT_TRUE(torch::equal(all_buffers[r], all_buffers[0]))
          << model << ": buffers of rank " << r << " differ";
    }
    // The replicas moved away from their common start, so they really trained.
    torch::manual_seed(0);
    EXPECT_FALSE(torch::equal(mine, flat_params(*make_model(model)))) << model;
  }
}

// Trains 5 steps on all ranks with per-rank batch b (and `extra` settings), and on every rank
// alone (MPI_COMM_SELF) with batch world*b*accumulate, and returns the largest parameter
// difference between the two. Augmentation (crop, flip, cutout) is on: it is keyed by global
// sample position, so both runs see the same images.
float distributed_vs_one_process(const std::vector<std::string>& extra, int accumulate = 1,
                                 int64_t* buckets_in_backward = nullptr) {
  MpiCommunicator world(MPI_COMM_WORLD, kTimeout);
  MpiCommunicator self(MPI_COMM_SELF, kTimeout);
  const int n = world.size();
  const int per_rank = 16;
  std::vector<std::string> common = {"train.max_steps=5",
                                     "train.momentum=0.9",
                                     "train.weight_decay=0.0005",
                                     "train.lr=0.05",
                                     "train.lr_schedule=cosine",
                                     "data.augment=true",
                                     "data.cutout=8",
                                     "dist.bucket_mb=0.05",
                                     "dist.first_bucket_mb=0.01",
                                     "data.synthetic_train=" + std::to_string(per_rank * n * accumulate * 8)};
  TempDir d1, d2;
  auto o1 = common, o2 = common;
  o1.insert(o1.end(), extra.begin(), extra.end());
  o1.push_back("train.batch_size=" + std::to_string(per_rank));
  o1.push_back("train.accumulate_steps=" + std::to_string(accumulate));
  o2.push_back("train.batch_size=" + std::to_string(per_rank * n * accumulate));
  Config dist_cfg = small_config(d1, o1), ref_cfg = small_config(d2, o2);
  Trainer distributed(dist_cfg, world, torch::kCPU, load_dataset(dist_cfg, true),
                      load_dataset(dist_cfg, false));
  TrainSummary s = distributed.run();
  EXPECT_EQ(s.steps, 5);
  if (buckets_in_backward) *buckets_in_backward = distributed.buckets_started_in_backward();
  Trainer reference(ref_cfg, self, torch::kCPU, load_dataset(ref_cfg, true), load_dataset(ref_cfg, false));
  reference.run();
  at::Tensor a = flat_params(distributed.model()), b = flat_params(reference.model());
  EXPECT_GT((b - flat_params(*make_model("seed_cnn"))).abs().max().item<float>(), 1e-3)
      << "reference did not train";
  return (a - b).abs().max().item<float>();
}

TEST(Training, RanksWithBatchBEqualOneProcessWithBatchNB_Overlap) {
  int64_t in_backward = 0;
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=true"}, 1, &in_backward), 2e-5);
  EXPECT_GT(in_backward, 1) << "buckets should start while backward runs";
}

TEST(Training, RanksWithBatchBEqualOneProcessWithBatchNB_NoOverlap) {
  int64_t in_backward = -1;
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=false"}, 1, &in_backward), 2e-5);
  EXPECT_EQ(in_backward, 0);
}

TEST(Training, AccumulationEqualsTheLargerBatch) {
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=true"}, 3), 2e-5);
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=false"}, 2), 2e-5);
}

TEST(Training, Bf16GradientsStayWithinTolerance) {
  // bf16 keeps 8 bits of mantissa: 5 steps drift by well under 1e-2 here; fp32 stays at 2e-5.
  const float bf16 = distributed_vs_one_process({"dist.grad_dtype=bf16"});
  EXPECT_LT(bf16, 1e-2);
  EXPECT_LT(distributed_vs_one_process({"dist.grad_dtype=fp16"}), 1e-2);
  EXPECT_GT(bf16, 0.0f) << "bf16 rounding should be visible, else compression did not happen";
}

TEST(Training, LearnsFromCifarFilesAndEvaluatesEveryImageOnce) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  // Every rank writes the same generated images in the CIFAR-10 binary layout to its own folder.
  const std::string root = dir.path() + "/cifar-10-batches-bin";
  files::make_directories(root);
  ImageDataset train = make_synthetic_dataset(2500, 11), test = make_synthetic_dataset(1001, 12);
  for (int f = 0; f < 5; ++f) {
    write_cifar10_file(root + "/data_batch_" + std::to_string(f + 1) + ".bin",
                       train.images.narrow(0, f * 500, 500), train.labels.narrow(0, f * 500, 500));
  }
  write_cifar10_file(root + "/test_batch.bin", test.images, test.labels);
  Config c = small_config(
      dir, {"data.dataset=cifar10", "data.root=" + dir.path(), "train.epochs=2", "train.batch_size=32",
            "train.lr=0.01", "train.momentum=0.9", "train.lr_schedule=cosine", "log.every_steps=10"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.eval.count, 1001);  // 1001 does not divide by 2 or 3 ranks: no padded duplicates
  EXPECT_GT(s.eval.accuracy, 0.5) << "chance is 0.1";
  EXPECT_LT(s.last_loss, s.first_loss);
  if (comm.rank() == 0) {
    EXPECT_TRUE(files::exists(dir.path() + "/logs/metrics.jsonl"));
    EXPECT_EQ(list_checkpoints(dir.path() + "/ckpt").size(), 2u);
  }
}

}  // namespace
}  // namespace ddp
