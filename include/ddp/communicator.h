// The collective operations ddptrain needs, independent of the transport.
//
// Contract: every rank calls the same collectives in the same order with tensors of the same
// dtype and numel (counts and datatypes come from the tensor, never typed by hand). Every wait is
// bounded by the communicator's timeout; on expiry it throws ddp::Error naming the collective, its
// sequence number, the rank and the elapsed time. The trainer and the gradient synchronizer talk
// only to this interface: they never call MPI or NCCL themselves.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

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

// Broadcasts every tensor in `tensors` from `root`, in place, with one collective per dtype
// (tensors are flattened into one buffer). Every rank passes tensors of the same shapes.
void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root);

}  // namespace ddp
