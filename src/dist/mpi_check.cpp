#include "ddp/dist/mpi_check.h"

#include <mpi.h>

#include <string>

namespace ddp::detail {

void throw_mpi_error(const char* file, int line, const char* call, int rc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(error_location(file, line) + call + " failed: " + std::string(text, len));
}

}  // namespace ddp::detail
