#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ddp/core/check.h"
#include "ddp/dist/communicator.h"
#include "ddp/dist/nccl_communicator.h"
#include "ddp/dist/runtime.h"
#include "ddp/observe/cuda_driver_probe.h"
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
  // Without a GPU, the NCCL communicator (or its stand-in when not built) refuses before touching
  // MPI or NCCL, naming the backend setting to change.
  if (probe_cuda_driver().usable && !probe_cuda_driver().gpus.empty()) GTEST_SKIP() << "a GPU is usable here";
  try {
    make_nccl_communicator(MPI_COMM_NULL, 0, std::chrono::milliseconds(1000));
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dist.backend=mpi"), std::string::npos) << e.what();
  }
}

TEST(NcclCommunicator, VersionIsNcclsNumbersOrNotBuilt) {
  // DDP_NCCL_BUILT: whether CMake compiled the NCCL communicator into this build.
  EXPECT_EQ(nccl_built(), DDP_NCCL_BUILT != 0);
  if (nccl_built()) {
    // The NCCL loaded at run time, then the one compiled against: "2.28.9 (compiled 2.28.9)".
    EXPECT_THAT(nccl_version(),
                ::testing::MatchesRegex("2\\.[0-9]+\\.[0-9]+ \\(compiled 2\\.[0-9]+\\.[0-9]+\\)"));
  } else {
    EXPECT_EQ(nccl_version(), "not built");
  }
}

}  // namespace
}  // namespace ddp
