#include "ddp/dist/runtime.h"

#include <gtest/gtest.h>
#include <sched.h>

#include "ddp/core/check.h"
#include "test_files.h"

namespace ddp {
namespace {

TEST(ChooseDevice, CpuWithoutCuda) {
  EXPECT_EQ(choose_device("auto", false, 0, 0, 4), "cpu");
  EXPECT_EQ(choose_device("cpu", true, 8, 3, 4), "cpu");
}

TEST(ChooseDevice, LocalRankPicksItsGpu) {
  EXPECT_EQ(choose_device("auto", true, 4, 0, 4), "cuda:0");
  EXPECT_EQ(choose_device("auto", true, 4, 3, 4), "cuda:3");
  EXPECT_EQ(choose_device("cuda", true, 8, 1, 2), "cuda:1");
}

TEST(ChooseDevice, MoreRanksThanGpusIsAnError) {
  try {
    choose_device("auto", true, 2, 2, 3);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("3 ranks run on this node but it has only 2"), std::string::npos)
        << e.what();
  }
}

TEST(ChooseDevice, CudaRequestedWithoutGpuIsAnError) {
  EXPECT_EQ(testing::input_error_of([] { choose_device("cuda", false, 0, 0, 1); }),
            "device cuda requested but no CUDA GPU is usable on this node (torch::cuda::is_available() is "
            "false); set dist.device=cpu or auto");
}

TEST(ChooseThreads, DividesTheRanksCpusAmongTheRanksSharingThem) {
  EXPECT_EQ(choose_threads(0, 16, 4), 4);  // --bind-to none: 4 ranks share all 16 cores
  EXPECT_EQ(choose_threads(0, 2, 3), 1);
  EXPECT_EQ(choose_threads(0, 2, 1), 2);
  EXPECT_EQ(choose_threads(0, 1, 1), 1);  // bound to one core
  EXPECT_EQ(choose_threads(0, 8, 2), 4);  // two ranks bound to the same 8-core socket
  EXPECT_EQ(choose_threads(6, 2, 1), 6);  // train.threads wins
  EXPECT_EQ(choose_threads(0, 0, 0), 1);
}

TEST(ChooseThreads, AffinityCountIsTheCpusThisProcessMayRunOn) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof(mine), &mine), 0);
  EXPECT_EQ(affinity_cpu_count(), CPU_COUNT(&mine));
  // Bound to one CPU (mpirun --bind-to core, taskset -c 0): 1, whatever the machine has.
  int first = 0;
  while (!CPU_ISSET(first, &mine)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  const int bound = affinity_cpu_count();
  ASSERT_EQ(sched_setaffinity(0, sizeof(mine), &mine), 0);
  EXPECT_EQ(bound, 1);
}

}  // namespace
}  // namespace ddp
