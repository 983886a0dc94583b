#include "ddp/core/check.h"

#include <cstring>

namespace ddp::detail {
namespace {
int g_message_rank = -1;  // Set once at start-up; read only when formatting errors.
}  // namespace

std::string error_location(const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  std::ostringstream s;
  s << "[rank " << g_message_rank << "] " << (base ? base + 1 : file) << ":" << line << ": ";
  return s.str();
}

void set_message_rank(int rank) { g_message_rank = rank; }

void throw_check_failure(const char* file, int line, const char* cond, const std::string& message) {
  throw Error(error_location(file, line) + message + " (check failed: " + cond + ")");
}

}  // namespace ddp::detail
