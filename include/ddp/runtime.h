// The process: MPI start-up and shutdown, who we are (rank, world, local rank), and the choices
// that follow from it (device, threads).
#pragma once

#include <mpi.h>

#include <string>

namespace ddp {

// Where this process sits in the job.
struct ProcessInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;   // Rank among the processes on this node (MPI_Comm_split_type SHARED).
  int local_size = 1;   // Processes on this node.
  std::string hostname;
};

// Owns MPI: initialises it (also as a singleton without mpirun) and finalises it on destruction.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  const ProcessInfo& info() const { return info_; }
  MPI_Comm world() const { return MPI_COMM_WORLD; }
  // Ends every rank of the job now. Used by main() after an error on one rank.
  [[noreturn]] void abort(int code) const;

 private:
  ProcessInfo info_;
  MPI_Comm node_comm_ = MPI_COMM_NULL;
};

// Device choice (a pure function, tested without GPUs): "cuda:<local_rank>" when CUDA is usable,
// "cpu" otherwise. `requested` is "auto", "cpu" or "cuda". Throws InputError when the node runs
// more ranks than it has GPUs, or when cuda is requested on a machine without one.
std::string choose_device(const std::string& requested, bool cuda_available, int gpu_count,
                          int local_rank, int local_size);

// Communication backend (a pure function): "nccl" or "mpi" for dist.backend `requested` ("auto",
// "mpi", "nccl") on `device` ("cpu", "cuda:N"). "auto" picks NCCL for GPUs when the build has it.
// Throws InputError when nccl is asked for without a GPU or without NCCL in the build.
std::string choose_backend(const std::string& requested, const std::string& device, bool nccl_in_build);

// Intra-op threads per rank: `configured` when > 0, else cores / local ranks, at least 1.
int choose_threads(int configured, int cores, int local_size);

}  // namespace ddp
