// What the NVIDIA driver reports about the GPUs, for `ddptrain env`.
//
// The driver library (libcuda.so.1) is opened at run time with dlopen, so this file needs no CUDA
// headers or libraries to build and works on machines without a driver: the probe then reports
// why nothing was found. It never throws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddp {

struct GpuInfo {
  int index = 0;
  std::string name;
  std::string uuid;          // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (as nvidia-smi -L)
  int64_t memory_bytes = 0;  // Total device memory.
  int cc_major = 0;          // Compute capability.
  int cc_minor = 0;
};

struct CudaDriverInfo {
  bool usable = false;     // Driver loaded and initialised.
  std::string error;       // Why not, when !usable.
  int driver_version = 0;  // CUDA version the driver supports, e.g. 13000 for 13.0.
  std::vector<GpuInfo> gpus;
};

CudaDriverInfo probe_cuda_driver();

// 12040 -> "12.4" (the encoding of cudaRuntimeGetVersion / cuDriverGetVersion).
std::string format_cuda_version(int version);
// "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...) | 79.2 GiB | compute capability 9.0"
std::string format_gpu_line(const GpuInfo& gpu);
// 16 raw UUID bytes -> "GPU-8-4-4-4-12" lower-case hex.
std::string format_gpu_uuid(const unsigned char bytes[16]);

}  // namespace ddp
