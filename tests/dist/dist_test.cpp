// Distributed behaviour under real mpirun (ctest runs this binary with 2 and 3 ranks).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>


#include "ddp/check.h"
#include "ddp/checkpoint.h"
#include "ddp/cifar10.h"
#include "ddp/config.h"
#include "ddp/gradient_synchronizer.h"
#include "ddp/mpi_communicator.h"
#include "ddp/trainer.h"
#include "../unit/test_files.h"

namespace ddp {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

constexpr milliseconds kTimeout{120000};

int world_rank() {
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

at::Tensor flat_params(torch::nn::Module& m) {
  std::vector<at::Tensor> parts;
  for (auto& p : m.parameters()) parts.push_back(p.detach().reshape({-1}));
  return torch::cat(parts);
}

at::Tensor flat_buffers(torch::nn::Module& m) {
  std::vector<at::Tensor> parts = {torch::zeros({1})};
  for (auto& b : m.buffers()) {
    if (b.is_floating_point()) parts.push_back(b.detach().reshape({-1}));
  }
  return torch::cat(parts);
}

Config small_config(const TempDir& dir, std::vector<std::string> overrides) {
  std::vector<std::string> base = {"log.dir=" + dir.path() + "/logs",
                                   "checkpoint.dir=" + dir.path() + "/ckpt",
                                   "data.dataset=synthetic", "train.threads=1",
                                   "log.every_steps=2"};
  base.insert(base.end(), overrides.begin(), overrides.end());
  return parse_config("", "dist_test", base);
}

TEST(Communicator, CollectivesTakeCountsAndTypesFromTensors) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const int r = comm.rank(), n = comm.size();
  auto f = torch::full({5}, static_cast<float>(r + 1));
  comm.all_reduce(f, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(f, torch::full({5}, n * (n + 1) / 2.0f)));
  auto d = torch::full({3, 2}, static_cast<double>(r), torch::kDouble);
  comm.all_reduce(d, ReduceOp::kAvg);
  EXPECT_TRUE(torch::allclose(d, torch::full({3, 2}, (n - 1) / 2.0, torch::kDouble)));
  auto l = torch::tensor({static_cast<int64_t>(1) << 40, static_cast<int64_t>(r)});
  comm.all_reduce(l, ReduceOp::kSum);
  EXPECT_EQ(l[0].item<int64_t>(), (static_cast<int64_t>(1) << 40) * n);
  auto b = r == 1 ? torch::arange(7, torch::kFloat) : torch::zeros({7});
  comm.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b, torch::arange(7, torch::kFloat)));
  auto g = comm.all_gather(torch::tensor({r, r * 10}, torch::kInt));
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{n, 2}));
  for (int i = 0; i < n; ++i) EXPECT_EQ(g[i][1].item<int>(), i * 10);
  auto noncontig = torch::full({4, 4}, 1.0f).t();
  comm.all_reduce(noncontig, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(noncontig, torch::full({4, 4}, static_cast<float>(n))));
  comm.barrier();
}

TEST(Communicator, MissingPeerTimesOutWithANamedError) {
  // On a communicator of its own, so the abandoned collective cannot disturb later tests.
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MpiCommunicator comm(dup, milliseconds(1500));
  if (comm.rank() != 0) {  // Rank 0 never arrives.
    auto t = torch::ones({16});
    const auto start = std::chrono::steady_clock::now();
    try {
      comm.all_reduce(t, ReduceOp::kSum);
      ADD_FAILURE() << "all_reduce returned without rank 0";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("all_reduce #0"), std::string::npos) << msg;
      EXPECT_NE(msg.find("timed out after"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[rank " + std::to_string(comm.rank()) + "]"), std::string::npos) << msg;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(GradientSynchronizer, MismatchedModelsFailOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  std::vector<at::Tensor> params = {torch::zeros({10}), torch::zeros({4, 4})};
  if (comm.rank() == comm.size() - 1) params.push_back(torch::zeros({3}));
  try {
    GradientSynchronizer sync(comm, params, 1 << 20, 1 << 10);
    ADD_FAILURE() << "no error for mismatched models";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model mismatch across ranks: rank " +
                                         std::to_string(comm.size() - 1)),
              std::string::npos)
        << e.what();
    EXPECT_TRUE(e.same_on_all_ranks());
  }
}

TEST(GradientSynchronizer, AveragesAndFillsMissingGradients) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const int r = comm.rank(), n = comm.size();
  std::vector<at::Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(torch::zeros({100 + i}).requires_grad_());
  for (int i = 0; i < 5; ++i) {
    if (i == 2 && r == 0) continue;  // rank 0 has no gradient for parameter 2
    params[i].mutable_grad() = torch::full({100 + i}, static_cast<float>(r + i));
  }
  GradientSynchronizer sync(comm, params, 4 * 210, 4 * 100);  // several buckets
  EXPECT_GT(sync.plan().size(), 2u);
  sync.synchronize();
  for (int i = 0; i < 5; ++i) {
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += (i == 2 && k == 0) ? 0 : k + i;
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(torch::allclose(params[i].grad(), torch::full({100 + i}, sum / n))) << "param " << i;
  }
}

TEST(Training, ReplicasStayBitIdentical) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  for (const char* model : {"seed_cnn", "resnet9"}) {
    TempDir dir;
    const bool big = std::string(model) == "resnet9";
    Config c = small_config(dir, {std::string("model.name=") + model, "data.augment=true",
                                  "train.momentum=0.9", "train.max_steps=" + std::string(big ? "2" : "6"),
                                  "train.batch_size=" + std::string(big ? "4" : "16"),
                                  "data.synthetic_train=256", "data.synthetic_test=" + std::string(big ? "8" : "64")});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    at::Tensor mine = flat_params(trainer.model());
    at::Tensor all = comm.all_gather(mine);
    at::Tensor all_buffers = comm.all_gather(flat_buffers(trainer.model()));
    for (int r = 1; r < comm.size(); ++r) {
      EXPECT_TRUE(torch::equal(all[r], all[0])) << model << ": parameters of rank " << r << " differ from rank 0";
      EXPECT_TRUE(torch::equal(all_buffers[r], all_buffers[0])) << model << ": buffers of rank " << r << " differ";
    }
    // The replicas moved away from their common start, so they really trained.
    torch::manual_seed(0);
    EXPECT_FALSE(torch::equal(mine, flat_params(*make_model(model)))) << model;
  }
}

TEST(Training, RanksWithBatchBEqualOneProcessWithBatchNB) {
  MpiCommunicator world(MPI_COMM_WORLD, kTimeout);
  MpiCommunicator self(MPI_COMM_SELF, kTimeout);
  const int n = world.size();
  const int per_rank = 32;
  std::vector<std::string> common = {"train.max_steps=5", "train.momentum=0.9", "train.weight_decay=0.0005",
                                     "train.lr=0.05", "train.lr_schedule=cosine", "data.augment=true",
                                     "data.synthetic_train=" + std::to_string(per_rank * n * 8)};
  TempDir d1, d2;
  auto o1 = common, o2 = common;
  o1.push_back("train.batch_size=" + std::to_string(per_rank));
  o2.push_back("train.batch_size=" + std::to_string(per_rank * n));
  Config dist_cfg = small_config(d1, o1), ref_cfg = small_config(d2, o2);
  Trainer distributed(dist_cfg, world, torch::kCPU, load_dataset(dist_cfg, true), load_dataset(dist_cfg, false));
  TrainSummary s = distributed.run();
  EXPECT_EQ(s.steps, 5);
  Trainer reference(ref_cfg, self, torch::kCPU, load_dataset(ref_cfg, true), load_dataset(ref_cfg, false));
  reference.run();
  at::Tensor a = flat_params(distributed.model()), b = flat_params(reference.model());
  EXPECT_TRUE(torch::allclose(a, b, /*rtol=*/1e-4, /*atol=*/1e-5))
      << "max abs difference " << (a - b).abs().max().item<float>();
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
  Config c = small_config(dir, {"data.dataset=cifar10", "data.root=" + dir.path(), "train.epochs=2",
                                "train.batch_size=32", "train.lr=0.01", "train.momentum=0.9", "train.lr_schedule=cosine",
                                "log.every_steps=10"});
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
