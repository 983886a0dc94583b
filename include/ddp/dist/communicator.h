// The collective operations ddptrain needs, independent of the transport.
//
// Contract: every rank calls the same collectives in the same order with tensors of the same
// dtype and numel (counts and datatypes come from the tensor, never typed by hand). Every wait is
// bounded by the communicator's timeout; on expiry it throws ddp::Error naming the collective, its
// sequence number, the rank and the elapsed time. The trainer and the gradient synchronizer talk
// only to this interface: they never call MPI or NCCL themselves.
#pragma once

#include <ATen/core/Tensor.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddp/core/check.h"

namespace ddp {

enum class ReduceOp { kSum, kAvg };

// A collective in flight. wait() returns once the result is in the tensor handed to the call
// (for kAvg already divided by the world size), or throws on error or timeout.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until done; throws on error or when the communicator's deadline passes.
  virtual void wait() = 0;
  // Non-blocking: true when done (the result is then in place, as after wait()). Calling it also
  // lets the backend make progress (MPI's non-blocking collectives progress only inside MPI).
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "nccl": for logs.
  virtual std::string backend() const = 0;

  // Starts an in-place all-reduce of a contiguous tensor; the tensor must not be touched until
  // the returned Work is waited for.
  virtual std::unique_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) = 0;
  // In-place all-reduce; returns when done.
  void all_reduce(at::Tensor tensor, ReduceOp op) { all_reduce_async(std::move(tensor), op)->wait(); }
  // In-place broadcast of `tensor` from `root`.
  virtual void broadcast(at::Tensor tensor, int root) = 0;
  // Returns a tensor of shape [size(), *tensor.sizes()] holding every rank's tensor in rank order.
  virtual at::Tensor all_gather(const at::Tensor& tensor) = 0;
  virtual void barrier() = 0;
};

}  // namespace ddp

namespace ddp {

// A tensor as a backend's collective needs it: `t` itself when it is contiguous on `device`, else
// a contiguous copy there that finish() writes back into `t`. Callers hand the communicators
// tensors wherever they live (the trainer's small flags and sums stay on the CPU under NCCL;
// GPU gradients go through MPI when NCCL is not built); both backends stage through this one
// class (MPI to host memory, NCCL to the rank's GPU), so the CPU tests run the code the GPU path
// uses.
class Staged {
 public:
  Staged(const at::Tensor& t, const at::Device& device);
  // What the collective reads and writes.
  const at::Tensor& buffer() const { return buffer_; }
  // After the collective completed: copies the result back when buffer() is a copy.
  void finish();

 private:
  at::Tensor target_;
  at::Tensor buffer_;
};

// "all_reduce #12 (1024 x float, 4096 B)": names a collective in errors and timeouts.
std::string describe_collective(const char* name, int64_t sequence, const at::Tensor& t);

// Note [agreed start-up errors]: start-up work can fail on some ranks only (the config file or
// the dataset missing on one node, more ranks than GPUs on one node). A rank that just exits
// leaves the others waiting in their next collective until dist.timeout_s, and its message is
// lost (only rank 0 prints errors that every rank shares). So start-up work runs inside
// agreed(): one all-gather of each rank's error text ("" when fine), then every rank throws the
// same error (same_on_all_ranks, so rank 0 prints it once and all exit 2), naming the first
// failing rank and its host when not every rank failed.
void throw_if_any_rank_failed(Communicator& comm, const std::string& error, bool input_error);

// Runs `work` (which returns a value) on every rank; see Note [agreed start-up errors].
template <typename Work>
auto agreed(Communicator& comm, Work&& work) {
  std::optional<decltype(work())> result;
  std::string error;
  bool input_error = true;
  try {
    result.emplace(work());
  } catch (const InputError& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
    input_error = false;
  }
  if (error.empty() && !result) error = "unknown error";
  throw_if_any_rank_failed(comm, error, input_error);
  return std::move(*result);
}

// Rank 0's value on every rank, so that all ranks decide alike (one or two broadcasts). Every rank
// of `comm` calls it.
std::string root_value(Communicator& comm, const std::string& mine);
double root_value(Communicator& comm, double mine);

// Broadcasts every tensor in `tensors` from `root`, in place, with one collective per dtype
// (tensors are flattened into one buffer). Every rank passes tensors of the same shapes.
void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root);

}  // namespace ddp
