// A Communicator without MPI, for unit tests that drive the trainer in one process and count its
// collectives.
//
// LoopbackCommunicator() is a world of one process: rank 0 of 1, every result computed in place
// as a one-rank world computes it (kSum and kAvg leave the tensor as it is, broadcast leaves it,
// all_gather returns shape [1, ...]). LoopbackCommunicator(n) with n > 1 stands for n ranks that
// all hold this process's tensors (replicas that agree, as they should): size() is n, kSum
// multiplies by n, kAvg and broadcast leave the values, all_gather stacks n copies. A one-rank
// world skips gradient all-reduces and buffer broadcasts altogether; the mirrored world runs the
// code paths of a real multi-rank run, in one process.
//
// Every call is recorded in order: the collective, the tensor's numel and dtype, the reduce op or
// the root, and how often its Work was waited for and tested. An asynchronous all-reduce writes
// its result when its Work is waited for or tested, not before, as a real backend may.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ddp/dist/communicator.h"

namespace ddp::testing {

struct CollectiveCall {
  std::string name;  // "all_reduce", "broadcast", "all_gather" or "barrier".
  int64_t numel = 0;
  at::ScalarType dtype = at::ScalarType::Undefined;
  ReduceOp op = ReduceOp::kSum;  // all_reduce only.
  int root = 0;                  // broadcast only.
  int waits = 0;                 // Work::wait() calls (all_reduce only; all_reduce() waits once).
  int tests = 0;                 // Work::test() calls (all_reduce only).

  // "all_reduce 120 x Float avg", "broadcast 1 x Long from 0", "all_gather 3 x Long", "barrier".
  std::string str() const;
};

class LoopbackCommunicator : public Communicator {
 public:
  // `size` 1: a world of one process; `size` > 1: `size` ranks that mirror this one (see above).
  explicit LoopbackCommunicator(int size = 1);
  LoopbackCommunicator(const LoopbackCommunicator&) = delete;
  LoopbackCommunicator& operator=(const LoopbackCommunicator&) = delete;

  int rank() const override { return 0; }
  int size() const override { return size_; }
  std::string backend() const override { return "loopback"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) override;
  void broadcast(at::Tensor tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override;

  // Every call so far, in order.
  const std::vector<CollectiveCall>& calls() const { return calls_; }
  // CollectiveCall::str() of every call since index `from`.
  std::vector<std::string> sequence(size_t from = 0) const;
  // Forgets the calls so far (Works still in flight keep recording into their own entries).
  void clear();

 private:
  friend class LoopbackWork;
  // Appends a call of `name` on `tensor` (its numel and dtype; none for a barrier).
  CollectiveCall& record(const char* name, const at::Tensor* tensor);
  int size_;
  // Entries are appended and never moved out: Works refer to theirs by index.
  std::vector<CollectiveCall> calls_;
  int64_t cleared_ = 0;  // Calls forgotten by clear(), so that a Work's index stays valid.
};

}  // namespace ddp::testing
