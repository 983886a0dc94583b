// Mixed precision under real mpirun: bf16 autocast, and fp16 loss scaling (an overflow skipped on
// every rank alike, the scale restored on resume).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/train/trainer.h"
#include "dist_helpers.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::flat_params;
using testing::kTimeout;
using testing::rank0_string;
using testing::small_config;
using testing::TempDir;

TEST(Precision, Bf16AutocastLearnsLikeFp32) {
  // Same seed, data and steps; only train.precision differs. bf16 autocast rounds activations and
  // weights in the convolutions to 8 mantissa bits, so the runs differ, but both learn and their
  // last-interval mean losses stay within 0.1 of each other (measured: about 0.001 apart).
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TrainSummary summary[2];
  at::Tensor params[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    Config c =
        small_config(dir, {std::string("train.precision=") + precisions[i], "train.max_steps=20",
                           "train.batch_size=32", "train.lr=0.01", "train.momentum=0.9", "log.every_steps=5",
                           "data.synthetic_train=2048", "data.synthetic_test=64"});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    summary[i] = trainer.run();
    params[i] = flat_params(trainer.model());
    EXPECT_EQ(summary[i].bad_steps, 0) << precisions[i];
    EXPECT_LT(summary[i].last_loss, summary[i].first_loss - 0.05) << precisions[i] << " did not learn";
    // Replicas stay bit-identical under autocast too.
    at::Tensor all = comm.all_gather(params[i]);
    for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << precisions[i];
  }
  EXPECT_LT(std::abs(summary[1].last_loss - summary[0].last_loss), 0.1);
  EXPECT_FALSE(torch::equal(params[0], params[1])) << "bf16 made no difference: autocast was not on";
  EXPECT_EQ(params[1].scalar_type(), at::kFloat) << "master weights stay fp32";
}

// fp16 runs on CPU (slowly, with a warning) so that the loss-scaling path is tested here; see
// Note [loss scaling and bad steps].
std::vector<std::string> fp16_config(const std::string& dir, const std::string& scale) {
  return {"log.dir=" + dir + "/logs",  "checkpoint.dir=" + dir + "/ckpt",
          "data.dataset=synthetic",    "train.threads=1",
          "log.every_steps=2",         "train.precision=fp16",
          "train.loss_scale=" + scale, "train.loss_scale_growth_steps=1000",
          "train.batch_size=16",       "train.lr=0.01",
          "train.momentum=0.9",        "data.synthetic_train=1024",
          "data.synthetic_test=16",    "checkpoint.keep=10"};
}

TEST(Precision, Fp16OverflowSkipsTheStepOnEveryRankAlike) {
  // A scale of 1e30 overflows float16 in the first backward whatever the data: every rank must
  // see the overflow, halve the scale and leave the parameters untouched.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  auto overrides = fp16_config(dir.path(), "1e30");
  overrides.push_back("train.max_steps=1");
  Config c = parse_config("", "t", overrides);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  const at::Tensor before = flat_params(trainer.model()).clone();
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.overflow_steps, 1);
  EXPECT_EQ(s.bad_steps, 0) << "an overflow is not a bad step while the scale can still fall";
  EXPECT_EQ(s.loss_scale, 5e29);
  EXPECT_TRUE(torch::equal(flat_params(trainer.model()), before)) << "the overflowing step was applied";
  at::Tensor counts = comm.all_gather(torch::tensor({s.overflow_steps}));
  EXPECT_TRUE(torch::equal(counts, torch::full_like(counts, 1))) << "ranks disagreed on the overflow";
}

TEST(Precision, Fp16LearnsAndItsLossScaleSurvivesResume) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir d;
  const std::string dir = rank0_string(d.path());
  // 2^24 overflows for the first steps, then the scale settles where the gradients fit in fp16.
  auto first_overrides = fp16_config(dir, "16777216");
  first_overrides.push_back("train.max_steps=30");
  first_overrides.push_back("dist.check_params_every=10");  // Replicas stay identical through the skips.
  Config first = parse_config("", "t", first_overrides);
  Trainer part1(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false));
  TrainSummary s1 = part1.run();
  EXPECT_GE(s1.overflow_steps, 1);
  EXPECT_EQ(s1.bad_steps, 0);
  EXPECT_EQ(s1.loss_scale, std::ldexp(1.0, 24 - static_cast<int>(s1.overflow_steps)));
  EXPECT_LT(s1.last_loss, s1.first_loss - 0.05) << "fp16 did not learn";
  EXPECT_GT(s1.first_loss, 0.0) << "an interval of skipped steps was reported as loss 0";
  // Resumed with train.loss_scale=1 in the config: only the checkpoint's scale can be above 1
  // (growth needs 1000 good steps).
  auto second_overrides = fp16_config(dir, "1");
  second_overrides.push_back("train.max_steps=34");
  second_overrides.push_back("resume=auto");
  Config second = parse_config("", "t", second_overrides);
  Trainer part2(second, comm, torch::kCPU, load_dataset(second, true), load_dataset(second, false));
  TrainSummary s2 = part2.run();
  EXPECT_EQ(s2.steps, 34);
  EXPECT_EQ(s2.loss_scale, std::ldexp(s1.loss_scale, -static_cast<int>(s2.overflow_steps)));
  EXPECT_GT(s2.loss_scale, 1.0) << "the checkpoint's loss scale was not restored";
  comm.barrier();  // rank 0's directory outlives the other ranks' reads
}

}  // namespace
}  // namespace ddp
