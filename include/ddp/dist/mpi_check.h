// MPI_CHECK: throws ddp::Error naming the rank, the call, file:line and MPI's own message
// (MPI_Error_string) when an MPI call does not return MPI_SUCCESS.
//
//   MPI_CHECK(MPI_Barrier(comm));
#pragma once

#include "ddp/core/check.h"

namespace ddp::detail {
[[noreturn]] void throw_mpi_error(const char* file, int line, const char* call, int rc);
}  // namespace ddp::detail

#define MPI_CHECK(call)                                                                           \
  do {                                                                                            \
    int ddp_mpi_rc_ = (call);                                                                     \
    if (ddp_mpi_rc_ != 0) ::ddp::detail::throw_mpi_error(__FILE__, __LINE__, #call, ddp_mpi_rc_); \
  } while (0)
