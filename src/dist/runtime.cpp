#include "ddp/dist/runtime.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/dist/mpi_check.h"

namespace ddp {
namespace {

// The CPUs this process may run on; CPUs 0..n-1 of the machine when the mask is unavailable.
cpu_set_t own_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return set;
  const int n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < n && i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
  return set;
}

}  // namespace

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  // Note [non-blocking all-reduce algorithm]: gradients travel through MPI_Iallreduce (polled
  // against a deadline). Open MPI's libnbc picks binomial/recursive-doubling schedules for it by
  // default, which ran 2-2.5x slower than the blocking MPI_Allreduce for 0.1-32 MB on one node;
  // its ring matches the blocking call at 2 ranks and beats it at 3 (README, bench-comm). Set
  // before MPI_Init, without overriding a value the user exported. Other MPIs ignore the variable.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
  int provided = 0;
  // SERIALIZED: MPI is called from one thread at a time (the training thread).
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.world_size));
  detail::set_message_rank(info_.rank);
  MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &node_comm_));
  MPI_CHECK(MPI_Comm_rank(node_comm_, &info_.local_rank));
  MPI_CHECK(MPI_Comm_size(node_comm_, &info_.local_size));
  // Who shares this rank's CPUs: gather every local rank's affinity mask.
  cpu_set_t mine = own_cpus();
  info_.cpus = CPU_COUNT(&mine);
  std::vector<cpu_set_t> all(static_cast<size_t>(info_.local_size));
  MPI_CHECK(
      MPI_Allgather(&mine, sizeof(cpu_set_t), MPI_BYTE, all.data(), sizeof(cpu_set_t), MPI_BYTE, node_comm_));
  info_.cpu_sharers = 0;
  for (cpu_set_t& other : all) {
    cpu_set_t both;
    CPU_AND(&both, &mine, &other);
    if (CPU_COUNT(&both) > 0) ++info_.cpu_sharers;
  }
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  info_.hostname = host;
}

MpiRuntime::~MpiRuntime() {
  if (node_comm_ != MPI_COMM_NULL) MPI_Comm_free(&node_comm_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiRuntime::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::string choose_device(const std::string& requested, bool cuda_available, int gpu_count, int local_rank,
                          int local_size) {
  if (requested == "cpu") return "cpu";
  if (!cuda_available || gpu_count <= 0) {
    if (requested == "cuda") {
      throw InputError(
          "device cuda requested but no CUDA GPU is usable on this node (torch::cuda::is_available() "
          "is false); set dist.device=cpu or auto");
    }
    return "cpu";
  }
  if (local_size > gpu_count) {
    std::ostringstream s;
    s << local_size << " ranks run on this node but it has only " << gpu_count
      << " visible GPU(s); start at most " << gpu_count
      << " ranks per node (mpirun -np / --map-by ppr:" << gpu_count << ":node) or set dist.device=cpu";
    throw InputError(s.str());
  }
  return "cuda:" + std::to_string(local_rank);
}

std::string choose_backend(const std::string& requested, const std::string& device, bool nccl_in_build) {
  const bool gpu = device.rfind("cuda", 0) == 0;
  if (requested == "nccl") {
    if (!gpu)
      throw InputError(
          "dist.backend=nccl needs CUDA GPUs, and none is usable here; use dist.backend=auto or mpi");
    if (!nccl_in_build)
      throw InputError(
          "dist.backend=nccl: this ddptrain was built without NCCL; use dist.backend=auto or mpi");
    return "nccl";
  }
  if (requested == "auto") return gpu && nccl_in_build ? "nccl" : "mpi";
  return "mpi";
}

int choose_threads(int configured, int cpus, int cpu_sharers) {
  if (configured > 0) return configured;
  int t = cpus / (cpu_sharers > 0 ? cpu_sharers : 1);
  return t < 1 ? 1 : t;
}

int affinity_cpu_count() {
  cpu_set_t set = own_cpus();
  return CPU_COUNT(&set);
}

}  // namespace ddp
