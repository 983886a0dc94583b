#include "app/environment.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <mpi.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <thread>

#include "app/cli.h"
#include "ddp/dist/nccl_communicator.h"
#include "ddp/observe/cuda_driver_probe.h"

namespace ddp {
namespace {

constexpr int64_t kRankRecordBytes = 256;  // "host pid local_rank cpus", NUL-padded.

// The CUDA runtime LibTorch was built with; "none" for a CPU-only LibTorch.
std::string libtorch_cuda_runtime() {
  try {
    const long v = at::detail::getCUDAHooks().versionCUDART();
    return v > 0 ? format_cuda_version(static_cast<int>(v)) : "none";
  } catch (const std::exception&) {
    return "none (CPU-only LibTorch)";
  }
}

}  // namespace

std::string nccl_version_line() {
  if (!nccl_built())
    return "NCCL: not built (CPU-only LibTorch or no nccl.h; dist.backend=nccl is unavailable)";
  return "NCCL: " + nccl_version() + ", the library LibTorch loads";
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return "unknown";
  std::string s(text, static_cast<size_t>(len));
  const auto nl = s.find_first_of("\r\n");
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  return s + " (MPI " + std::to_string(major) + "." + std::to_string(minor) + ")";
}

std::string environment_report(const ProcessInfo& p, Communicator& comm, int threads) {
  // ---- every rank: one all-gather of "host pid local_rank cpus" ----
  at::Tensor mine = at::zeros({kRankRecordBytes}, at::kByte);
  const std::string record = p.hostname + " " + std::to_string(getpid()) + " " +
                             std::to_string(p.local_rank) + " " + std::to_string(p.cpus);
  std::memcpy(mine.data_ptr(), record.data(), std::min<size_t>(record.size(), kRankRecordBytes - 1));
  at::Tensor all = comm.all_gather(mine).contiguous();
  if (comm.rank() != 0) return "";

  // ---- rank 0 only: the report ----
  std::ostringstream out;
  out << "ddptrain: " << version_string() << "\n";
  out << "LibTorch: " << TORCH_VERSION << " (CUDA runtime built in: " << libtorch_cuda_runtime() << ")\n";
  const bool cuda = torch::cuda::is_available();
  const int torch_gpus = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  const CudaDriverInfo driver = probe_cuda_driver();
  if (!driver.usable && !cuda) {
    out << "CUDA: not available (no driver/GPU: " << driver.error << ")\n";
  } else {
    out << "CUDA: " << (cuda ? "available" : "not usable by LibTorch") << " | LibTorch sees " << torch_gpus
        << " GPU(s) | driver supports CUDA "
        << (driver.driver_version > 0 ? format_cuda_version(driver.driver_version) : "unknown") << "\n";
    if (!driver.usable) out << "  driver: " << driver.error << "\n";
    for (const GpuInfo& g : driver.gpus) out << "  " << format_gpu_line(g) << "\n";
  }
  out << nccl_version_line() << "\n";
  out << "MPI: " << mpi_library_version() << "\n";
  out << "threads: " << threads << " intra-op per rank (rank 0 may run on " << p.cpus << " of the "
      << std::thread::hardware_concurrency() << " CPUs of its node, shared by " << p.cpu_sharers << " of its "
      << p.local_size << " local ranks)\n";
  std::string device;
  try {
    device = choose_device("auto", cuda, torch_gpus, p.local_rank, p.local_size);
  } catch (const std::exception& e) {
    device = std::string("none (") + e.what() + ")";
  }
  out << "auto choice: device " << device << " | backend " << choose_backend("auto", device, nccl_built())
      << "\n";
  out << "ranks: " << comm.size() << "\n";
  for (int r = 0; r < comm.size(); ++r) {
    const char* text = reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>());
    std::istringstream fields(std::string(text, strnlen(text, kRankRecordBytes)));
    std::string host, pid, local, cpus;
    fields >> host >> pid >> local >> cpus;
    out << "  rank " << r << ": host " << host << " | pid " << pid << " | local rank " << local
        << " | may run on " << cpus << " CPU(s)\n";
  }
  return out.str();
}

}  // namespace ddp
