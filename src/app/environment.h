// `ddptrain env`: what this build and this machine offer, for bug reports and for checking a node
// before a long job. Works without a GPU (the CUDA lines then say so).
#pragma once

#include <string>

#include "ddp/dist/communicator.h"
#include "ddp/dist/runtime.h"

namespace ddp {

// Every rank of `comm` calls this (one all-gather of host, pid and local rank). Returns the report
// on rank 0 and an empty string elsewhere. `threads` is the intra-op thread count per rank.
std::string environment_report(const ProcessInfo& process, Communicator& comm, int threads);

// "NCCL: ..." -- the NCCL that ddptrain's communicator uses (compiled and loaded versions), or
// that it is not built in. One place to extend when the NCCL communicator lands.
std::string nccl_version_line();

// MPI_Get_library_version's first line, e.g. "Open MPI v4.1.4, package: ...".
std::string mpi_library_version();

}  // namespace ddp
