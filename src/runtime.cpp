#include "ddp/runtime.h"

#include <unistd.h>

#include <sstream>

#include "ddp/check.h"

namespace ddp {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  // SERIALIZED: MPI is called from one thread at a time (the training thread).
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.world_size));
  detail::set_message_rank(info_.rank);
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL,
                                &node_comm_));
  MPI_CHECK(MPI_Comm_rank(node_comm_, &info_.local_rank));
  MPI_CHECK(MPI_Comm_size(node_comm_, &info_.local_size));
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

void MpiRuntime::abort(int code) const { MPI_Abort(MPI_COMM_WORLD, code); std::_Exit(code); }

std::string choose_device(const std::string& requested, bool cuda_available, int gpu_count,
                          int local_rank, int local_size) {
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
      << " ranks per node (mpirun -np / --map-by ppr:" << gpu_count
      << ":node) or set dist.device=cpu";
    throw InputError(s.str());
  }
  return "cuda:" + std::to_string(local_rank);
}

std::string choose_backend(const std::string& requested, const std::string& device, bool nccl_in_build) {
  const bool gpu = device.rfind("cuda", 0) == 0;
  if (requested == "nccl") {
    if (!gpu) throw InputError("dist.backend=nccl needs CUDA GPUs, and none is usable here; use dist.backend=auto or mpi");
    if (!nccl_in_build) throw InputError("dist.backend=nccl: this ddptrain was built without NCCL; use dist.backend=auto or mpi");
    return "nccl";
  }
  if (requested == "auto") return gpu && nccl_in_build ? "nccl" : "mpi";
  return "mpi";
}

int choose_threads(int configured, int cores, int local_size) {
  if (configured > 0) return configured;
  int t = cores / (local_size > 0 ? local_size : 1);
  return t < 1 ? 1 : t;
}

}  // namespace ddp
