// The gradient synchronizer under real mpirun: the model check and bucketed averaging.
#include "ddp/dist/gradient_synchronizer.h"

#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/dist/mpi_communicator.h"
#include "dist_helpers.h"

namespace ddp {
namespace {

using testing::kTimeout;

TEST(GradientSynchronizer, MismatchedModelsFailOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  std::vector<at::Tensor> params = {torch::zeros({10}), torch::zeros({4, 4})};
  if (comm.rank() == comm.size() - 1) params.push_back(torch::zeros({3}));
  try {
    GradientSynchronizer sync(comm, params, SyncOptions{});
    ADD_FAILURE() << "no error for mismatched models";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("model mismatch across ranks: rank " + std::to_string(comm.size() - 1)),
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
  SyncOptions options;
  options.cap_bytes = 4 * 210;  // several buckets
  options.first_cap_bytes = 4 * 100;
  GradientSynchronizer sync(comm, params, options);
  EXPECT_GT(sync.plan().size(), 2u);
  sync.synchronize();
  for (int i = 0; i < 5; ++i) {
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += (i == 2 && k == 0) ? 0 : k + i;
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(torch::allclose(params[i].grad(), torch::full({100 + i}, sum / n))) << "param " << i;
  }
}

}  // namespace
}  // namespace ddp
