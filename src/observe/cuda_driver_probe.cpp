#include "ddp/observe/cuda_driver_probe.h"

#include <dlfcn.h>

#include <cstdio>

namespace ddp {
namespace {

// The few driver API entry points used, with their C signatures (CUresult is an int, CUdevice an
// int; CUDA_SUCCESS is 0).
using CuInit = int (*)(unsigned int);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuDeviceGetUuid = int (*)(unsigned char*, int);
using CuGetErrorString = int (*)(int, const char**);

constexpr int kAttrComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrComputeCapabilityMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

template <typename F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

}  // namespace

std::string format_cuda_version(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

std::string format_gpu_uuid(const unsigned char b[16]) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return buf;
}

std::string format_gpu_line(const GpuInfo& g) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "GPU %d: %s (UUID: %s) | %.1f GiB | compute capability %d.%d", g.index,
                g.name.c_str(), g.uuid.c_str(),
                static_cast<double>(g.memory_bytes) / (1024.0 * 1024.0 * 1024.0), g.cc_major, g.cc_minor);
  return buf;
}

CudaDriverInfo probe_cuda_driver() {
  CudaDriverInfo info;
  // The handle stays open for the life of the process: LibTorch may hold the same library.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    info.error = "no NVIDIA driver (libcuda.so.1 not found)";
    return info;
  }
  auto cu_init = symbol<CuInit>(lib, "cuInit");
  auto get_version = symbol<CuDriverGetVersion>(lib, "cuDriverGetVersion");
  auto get_count = symbol<CuDeviceGetCount>(lib, "cuDeviceGetCount");
  auto get_device = symbol<CuDeviceGet>(lib, "cuDeviceGet");
  auto get_name = symbol<CuDeviceGetName>(lib, "cuDeviceGetName");
  auto total_mem = symbol<CuDeviceTotalMem>(lib, "cuDeviceTotalMem_v2");
  auto get_attr = symbol<CuDeviceGetAttribute>(lib, "cuDeviceGetAttribute");
  auto get_uuid = symbol<CuDeviceGetUuid>(lib, "cuDeviceGetUuid");
  auto error_string = symbol<CuGetErrorString>(lib, "cuGetErrorString");
  if (!cu_init || !get_version || !get_count || !get_device || !get_name || !total_mem || !get_attr) {
    info.error = "libcuda.so.1 lacks the driver API entry points used here";
    return info;
  }
  if (get_version(&info.driver_version) != 0) info.driver_version = 0;
  if (int rc = cu_init(0); rc != 0) {
    const char* msg = nullptr;
    if (error_string) error_string(rc, &msg);
    info.error = "cuInit failed: error " + std::to_string(rc) + (msg ? std::string(" (") + msg + ")" : "");
    return info;
  }
  int count = 0;  // cuDeviceGetCount leaves it untouched on failure: start from 0.
  if (get_count(&count) != 0) count = 0;
  info.usable = true;
  for (int i = 0; i < count; ++i) {
    int dev = 0;
    if (get_device(&dev, i) != 0) continue;
    GpuInfo g;
    g.index = i;
    char name[256] = {};
    if (get_name(name, sizeof(name) - 1, dev) == 0) g.name = name;
    size_t bytes = 0;
    if (total_mem(&bytes, dev) == 0) g.memory_bytes = static_cast<int64_t>(bytes);
    get_attr(&g.cc_major, kAttrComputeCapabilityMajor, dev);
    get_attr(&g.cc_minor, kAttrComputeCapabilityMinor, dev);
    unsigned char uuid[16] = {};
    if (get_uuid && get_uuid(uuid, dev) == 0) g.uuid = format_gpu_uuid(uuid);
    info.gpus.push_back(g);
  }
  return info;
}

}  // namespace ddp
