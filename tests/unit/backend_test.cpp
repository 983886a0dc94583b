#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ddp/core/check.h"
#include "ddp/dist/communicator.h"
#include "ddp/dist/nccl_communicator.h"
#include "ddp/dist/runtime.h"
#include "test_files.h"

namespace ddp {
namespace {

TEST(Staged, UsesTheTensorItselfWhenItFitsTheDevice) {
  at::Tensor t = torch::arange(6, torch::kFloat);
  Staged s(t, at::kCPU);
  EXPECT_TRUE(s.buffer().is_same(t));
  s.buffer().mul_(2);
  s.finish();
  EXPECT_TRUE(torch::equal(t, torch::arange(6, torch::kFloat) * 2));
}

TEST(Staged, CopiesAViewAndWritesTheResultBackIntoIt) {
  at::Tensor base = torch::arange(12, torch::kFloat).reshape({3, 4});
  at::Tensor view = base.t();  // Not contiguous.
  Staged s(view, at::kCPU);
  ASSERT_FALSE(s.buffer().is_same(view));
  EXPECT_TRUE(s.buffer().is_contiguous());
  EXPECT_TRUE(torch::equal(s.buffer(), view));
  s.buffer().add_(100);
  EXPECT_EQ(base[0][0].item<float>(), 0.0f) << "the copy aliases the caller's tensor before finish()";
  s.finish();
  EXPECT_TRUE(torch::equal(base, torch::arange(12, torch::kFloat).reshape({3, 4}) + 100));
}

TEST(Backend, AutoPicksNcclOnlyForGpusWithNcclBuilt) {
  EXPECT_EQ(choose_backend("auto", "cuda:1", true), "nccl");
  EXPECT_EQ(choose_backend("auto", "cuda:0", false), "mpi");
  EXPECT_EQ(choose_backend("auto", "cpu", true), "mpi");
  EXPECT_EQ(choose_backend("mpi", "cuda:0", true), "mpi");
  EXPECT_EQ(choose_backend("nccl", "cuda:0", true), "nccl");
}

TEST(Backend, NcclWithoutGpuOrWithoutNcclIsAnError) {
  EXPECT_EQ(testing::input_error_of([] { choose_backend("nccl", "cpu", true); }),
            "dist.backend=nccl needs CUDA GPUs, and none is usable here; use dist.backend=auto or mpi");
  EXPECT_EQ(testing::input_error_of([] { choose_backend("nccl", "cuda:0", false); }),
            "dist.backend=nccl: this ddptrain was built without NCCL; use dist.backend=auto or mpi");
}

TEST(NcclCommunicator, WithoutAUsableGpuIsAClearError) {
  // This machine has no GPU: the NCCL communicator (or its stand-in when not built) refuses
  // before touching MPI or NCCL, naming the backend setting to change.
  try {
    make_nccl_communicator(MPI_COMM_NULL, 0, std::chrono::milliseconds(1000));
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dist.backend=mpi"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(nccl_version().empty());
}

}  // namespace
}  // namespace ddp
