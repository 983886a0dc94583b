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
  int cpus = 1;         // CPUs this process may run on (its affinity mask: mpirun binding, taskset,
                        // a Slurm cpuset).
  int cpu_sharers = 1;  // Processes on this node, itself included, whose masks overlap this one's.
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
std::string choose_device(const std::string& requested, bool cuda_available, int gpu_count, int local_rank,
                          int local_size);

// Communication backend (a pure function): "nccl" or "mpi" for dist.backend `requested` ("auto",
// "mpi", "nccl") on `device` ("cpu", "cuda:N"). "auto" picks NCCL for GPUs when the build has it.
// Throws InputError when nccl is asked for without a GPU or without NCCL in the build.
std::string choose_backend(const std::string& requested, const std::string& device, bool nccl_in_build);

// Intra-op threads per rank: `configured` when > 0, else the CPUs this rank may run on divided
// among the local ranks that share them, at least 1. Under `mpirun --bind-to none` that is cores /
// local ranks; a rank bound to one core gets 1 thread (more would time-slice one core).
int choose_threads(int configured, int cpus, int cpu_sharers);

// The CPUs the calling process may run on (sched_getaffinity; hardware_concurrency() if that fails).
int affinity_cpu_count();

}  // namespace ddp
