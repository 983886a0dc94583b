// Communicator over NCCL for CUDA tensors. Built only when LibTorch has CUDA and NCCL is found
// (CMake gates src/nccl_communicator.cpp; src/nccl_unavailable.cpp stands in otherwise).
//
// Rank 0 creates the ncclUniqueId and broadcasts it over MPI; each rank binds cuda:<local rank>.
// Collectives run on a communication stream of the rank's device, ordered after LibTorch's
// current stream by a CUDA event (no host synchronisation to launch). Every wait polls the done
// event and ncclCommGetAsyncError against the deadline; on error or timeout the NCCL
// communicator is aborted and the error names the collective, its sequence number, the rank and
// the elapsed time. The NCCL linked is the one the CUDA LibTorch itself loads (the wheel's
// nvidia-nccl library): two NCCLs in one process do not share state.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <string>

#include "ddp/dist/communicator.h"

namespace ddp {

// True when this build contains the NCCL backend.
bool nccl_built();
// "2.28.9 (compiled 2.28.9)", or "not built".
std::string nccl_version();
// Creates the NCCL communicator over the ranks of `comm` on CUDA device `device`. Throws
// InputError when this build has no NCCL or no CUDA device is usable.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device,
                                                     std::chrono::milliseconds timeout);

}  // namespace ddp
