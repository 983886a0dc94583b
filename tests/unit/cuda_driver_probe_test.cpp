#include "ddp/observe/cuda_driver_probe.h"

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
  const CudaDriverInfo info = probe_cuda_driver();
  if (!info.usable) {
    EXPECT_FALSE(info.error.empty());
    EXPECT_TRUE(info.gpus.empty());
  }
}

}  // namespace
}  // namespace ddp
