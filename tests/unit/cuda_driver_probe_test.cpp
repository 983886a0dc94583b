#include "ddp/observe/cuda_driver_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ddp {
namespace {

TEST(CudaDriverProbe, VersionFormatting) {
  EXPECT_EQ(format_cuda_version(12040), "12.4");
  EXPECT_EQ(format_cuda_version(13000), "13.0");
  EXPECT_EQ(format_cuda_version(11080), "11.8");
}

TEST(CudaDriverProbe, GpuLineLooksLikeNvidiaSmi) {
  GpuInfo g;
  g.index = 1;
  g.name = "NVIDIA H100 80GB HBM3";
  const unsigned char uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  g.uuid = format_gpu_uuid(uuid);
  g.memory_bytes = int64_t{80} << 30;
  g.cc_major = 9;
  g.cc_minor = 0;
  EXPECT_EQ(format_gpu_line(g),
            "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-12345678-9abc-def0-0123-456789abcdef) | 80.0 GiB | "
            "compute capability 9.0");
}

TEST(CudaDriverProbe, NeverThrowsAndExplainsAbsence) {
  using ::testing::MatchesRegex;
  const CudaDriverInfo info = probe_cuda_driver();
  if (info.usable) {
    // What `ddptrain env` prints must be real: every GPU with a name, nvidia-smi's UUID form and a
    // compute capability, and the driver's CUDA version as N.M.
    EXPECT_EQ(info.error, "");
    ASSERT_FALSE(info.gpus.empty()) << "the driver initialised but no GPU was listed";
    EXPECT_GT(info.driver_version, 0);
    EXPECT_THAT(format_cuda_version(info.driver_version), MatchesRegex("[1-9][0-9]*\\.[0-9]"));
    for (size_t i = 0; i < info.gpus.size(); ++i) {
      const GpuInfo& g = info.gpus[i];
      EXPECT_EQ(g.index, static_cast<int>(i));
      EXPECT_FALSE(g.name.empty()) << "GPU " << i;
      EXPECT_EQ(g.uuid.size(), 40u) << g.uuid;
      EXPECT_THAT(g.uuid, MatchesRegex("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
      EXPECT_GT(g.cc_major, 0) << "GPU " << i;
      EXPECT_GE(g.cc_minor, 0) << "GPU " << i;
      EXPECT_GT(g.memory_bytes, 0) << "GPU " << i;
    }
  } else {
    // No driver (this machine), a driver without the entry points, or cuInit's error by number
    // and name.
    EXPECT_TRUE(info.gpus.empty());
    EXPECT_THAT(info.error, ::testing::AnyOf("no NVIDIA driver (libcuda.so.1 not found)",
                                             "libcuda.so.1 lacks the driver API entry points used here",
                                             MatchesRegex("cuInit failed: error [0-9]+( \\(.+\\))?")));
  }
}

}  // namespace
}  // namespace ddp
