// Non-finite steps and drifted replicas under real mpirun: skipped, stopped or named alike on
// every rank.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <string>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/train/trainer.h"
#include "dist_helpers.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::flat_params;
using testing::kTimeout;
using testing::small_config;
using testing::TempDir;

TEST(Numerics, NonFiniteStepIsSkippedOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  FaultInjection faults;
  Config c = small_config(dir,
                          {"train.max_steps=6", "fault.nan_at_step=3",
                           "fault.nan_rank=" + std::to_string(comm.size() - 1), "data.synthetic_train=512"},
                          &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.bad_steps, 1);
  EXPECT_EQ(s.steps, 6);
  at::Tensor mine = flat_params(trainer.model());
  EXPECT_TRUE(at::isfinite(mine).all().item<bool>());
  at::Tensor all = comm.all_gather(mine);
  for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << "rank " << r;
}

TEST(Numerics, TooManyBadStepsStopEveryRankWithOneError) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  FaultInjection faults;
  Config c = small_config(
      dir, {"train.max_steps=6", "fault.nan_at_step=2", "train.max_bad_steps=0", "data.synthetic_train=512"},
      &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  try {
    trainer.run();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.same_on_all_ranks());
    EXPECT_NE(std::string(e.what()).find("training diverged"), std::string::npos) << e.what();
  }
}

TEST(Numerics, ParameterDriftNamesTheRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  const int drifter = comm.size() - 1;
  FaultInjection faults;
  Config c = small_config(dir,
                          {"train.max_steps=6", "dist.check_params_every=2", "fault.drift_at_step=3",
                           "fault.drift_rank=" + std::to_string(drifter), "data.synthetic_train=512"},
                          &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  try {
    trainer.run();
    ADD_FAILURE() << "drift not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("replica check at step 4: the parameters of rank " +
                                         std::to_string(drifter)),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ddp
