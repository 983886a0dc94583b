#include "ddp/check.h"

#include <mpi.h>

#include <cstring>

namespace ddp::detail {
namespace {
int g_message_rank = -1;  // Set once at start-up; read only when formatting errors.

std::string where(const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  std::ostringstream s;
  s << "[rank " << g_message_rank << "] " << (base ? base + 1 : file) << ":" << line << ": ";
  return s.str();
}
}  // namespace

void set_message_rank(int rank) { g_message_rank = rank; }

void throw_check_failure(const char* file, int line, const char* cond, const std::string& message) {
  throw Error(where(file, line) + message + " (check failed: " + cond + ")");
}

void throw_mpi_error(const char* file, int line, const char* call, int rc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(where(file, line) + call + " failed: " + std::string(text, len));
}
}  // namespace ddp::detail
