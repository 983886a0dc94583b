// The MPI communicator under real mpirun: collectives, Open MPI's ring for the non-blocking
// all-reduce, a missing peer timing out.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <string>

#include "ddp/core/check.h"
#include "ddp/dist/mpi_communicator.h"
#include "dist_helpers.h"

namespace ddp {
namespace {

using std::chrono::milliseconds;
using testing::kTimeout;

TEST(Communicator, OpenMpiUsesTheRingForNonBlockingAllReduce) {
  // See Note [non-blocking all-reduce algorithm]: MpiRuntime asks libnbc for its ring (1) before
  // MPI_Init. Read back through the MPI tool interface what the library actually took. (Run the
  // tests without exporting OMPI_MCA_coll_libnbc_iallreduce_algorithm: a user's value wins.)
  int provided = 0;
  ASSERT_EQ(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
  int index = -1;
  if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) {
    MPI_T_finalize();
    GTEST_SKIP() << "not Open MPI's libnbc";
  }
  MPI_T_cvar_handle handle;
  int count = 0, value = -1;
  ASSERT_EQ(MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count), MPI_SUCCESS);
  ASSERT_EQ(MPI_T_cvar_read(handle, &value), MPI_SUCCESS);
  MPI_T_cvar_handle_free(&handle);
  MPI_T_finalize();
  EXPECT_EQ(value, 1) << "libnbc's MPI_Iallreduce is not the ring";
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
  // Tensors that are not contiguous go through a Staged copy (the path NCCL takes for CPU
  // tensors): the result lands in the caller's view, in its layout.
  auto base = torch::arange(16, torch::kFloat).reshape({4, 4}) + static_cast<float>(r);
  auto view = base.t();
  comm.all_reduce(view, ReduceOp::kSum);
  auto expected = (torch::arange(16, torch::kFloat).reshape({4, 4}) * n + n * (n - 1) / 2.0f);
  EXPECT_TRUE(torch::equal(base, expected));
  auto column_base = r == 0 ? torch::arange(12, torch::kFloat).reshape({4, 3}) : torch::zeros({4, 3});
  auto column = column_base.select(1, 1);  // Stride 3.
  comm.broadcast(column, 0);
  EXPECT_TRUE(torch::equal(column, torch::tensor({1.0f, 4.0f, 7.0f, 10.0f})));
  if (r != 0) {
    EXPECT_EQ(column_base.select(1, 0).abs().sum().item<float>(), 0.0f) << "wrote outside the view";
  }
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

}  // namespace
}  // namespace ddp
