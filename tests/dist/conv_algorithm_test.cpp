// Winograd convolutions under real mpirun: the same training as direct ones up to float rounding.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <string>

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
using testing::small_config;
using testing::TempDir;

TEST(ConvAlgorithm, WinogradTrainsLikeDirect) {
  // train.conv_algorithm=auto runs ResNet-9's 3x3 convolutions as Winograd F(4x4, 3x3) on the
  // CPU: the same training up to float rounding, and the replicas stay bit-identical.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const char* algorithms[] = {"direct", "auto"};
  at::Tensor params[2];
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    Config c = small_config(dir, {std::string("train.conv_algorithm=") + algorithms[i], "model.name=resnet9",
                                  "train.max_steps=2", "train.batch_size=4", "train.momentum=0.9",
                                  "data.synthetic_train=64", "data.synthetic_test=8"});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    params[i] = flat_params(trainer.model());
    at::Tensor all = comm.all_gather(params[i]);
    for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << algorithms[i];
  }
  EXPECT_LT((params[0] - params[1]).abs().max().item<float>(), 1e-4);
  EXPECT_FALSE(torch::equal(params[0], params[1])) << "auto made no difference: Winograd did not run";
}

}  // namespace
}  // namespace ddp
