// Stand-in for src/nccl_communicator.cpp in builds without NCCL (CPU-only LibTorch).
#include "ddp/core/check.h"
#include "ddp/dist/nccl_communicator.h"

namespace ddp {

bool nccl_built() { return false; }

std::string nccl_version() { return "not built"; }

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int, std::chrono::milliseconds) {
  throw InputError(
      "this ddptrain was built without NCCL (a CPU-only LibTorch or no nccl.h); "
      "use dist.backend=mpi or rebuild against a CUDA LibTorch");
}

}  // namespace ddp
