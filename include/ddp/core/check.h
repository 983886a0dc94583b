// Error checking for ddptrain.
//
// Every failure below main() is reported by throwing ddp::Error (never exit()). The message names
// the rank, the failing call or condition, file:line and the library's own message, so that the
// one line main() logs before MPI_Abort is enough to find the cause.
//
//   DDP_CHECK(n > 0, "batch_size must be positive, got " << n);
//
// MPI_CHECK (ddp/dist/mpi_check.h) and the NCCL and CUDA checks of the communicators build on
// detail::error_location().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ddp {

// An error. `same_on_all_ranks` marks errors that every rank hits identically at the same point,
// before any collective (a bad config, a missing data file): main() then prints it once, from
// rank 0, and every rank exits with the same code instead of aborting the job.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, bool same_on_all_ranks = false)
      : std::runtime_error(what), same_on_all_ranks_(same_on_all_ranks) {}
  bool same_on_all_ranks() const { return same_on_all_ranks_; }

 private:
  bool same_on_all_ranks_;
};

// A user-facing input problem (config, data, checkpoint) that names the thing and the fix.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what, bool same_on_all_ranks = true)
      : Error(what, same_on_all_ranks) {}
};

namespace detail {
// The rank printed in check messages; -1 until the MPI runtime sets it.
void set_message_rank(int rank);
[[noreturn]] void throw_check_failure(const char* file, int line, const char* cond,
                                      const std::string& message);
// "[rank R] file.cpp:LINE: ", the prefix of every check message.
std::string error_location(const char* file, int line);
}  // namespace detail

}  // namespace ddp

#define DDP_CHECK(cond, ...)                                                               \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::ostringstream ddp_check_msg_;                                                   \
      ddp_check_msg_ << __VA_ARGS__;                                                       \
      ::ddp::detail::throw_check_failure(__FILE__, __LINE__, #cond, ddp_check_msg_.str()); \
    }                                                                                      \
  } while (0)
