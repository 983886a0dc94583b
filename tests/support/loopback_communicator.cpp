#include "loopback_communicator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <sstream>

#include "ddp/core/check.h"

namespace ddp::testing {

std::string CollectiveCall::str() const {
  std::ostringstream s;
  s << name;
  if (name == "barrier") return s.str();
  s << " " << numel << " x " << c10::toString(dtype);
  if (name == "all_reduce") s << (op == ReduceOp::kAvg ? " avg" : " sum");
  if (name == "broadcast") s << " from " << root;
  return s.str();
}

// An all-reduce of the loopback world: the result is written when the Work is first waited for or
// tested. `sequence` is the call's number since the communicator was made.
class LoopbackWork : public Work {
 public:
  LoopbackWork(LoopbackCommunicator& comm, int64_t sequence, at::Tensor tensor, ReduceOp op)
      : comm_(comm), sequence_(sequence), tensor_(std::move(tensor)), op_(op) {}

  void wait() override {
    if (CollectiveCall* c = entry()) ++c->waits;
    complete();
  }
  bool test() override {
    if (CollectiveCall* c = entry()) ++c->tests;
    complete();
    return true;
  }

 private:
  CollectiveCall* entry() {
    const int64_t i = sequence_ - comm_.cleared_;
    return i >= 0 ? &comm_.calls_[static_cast<size_t>(i)] : nullptr;
  }
  void complete() {
    if (done_) return;
    done_ = true;
    // n ranks holding the same tensor: the sum is n times it, the average is itself.
    if (op_ == ReduceOp::kSum && comm_.size() > 1) {
      c10::NoGradGuard no_grad;
      tensor_.mul_(comm_.size());
    }
  }

  LoopbackCommunicator& comm_;
  int64_t sequence_;
  at::Tensor tensor_;
  ReduceOp op_;
  bool done_ = false;
};

LoopbackCommunicator::LoopbackCommunicator(int size) : size_(size) {
  DDP_CHECK(size >= 1, "a loopback world has at least one rank, got " << size);
}

CollectiveCall& LoopbackCommunicator::record(const char* name, const at::Tensor* tensor) {
  CollectiveCall c;
  c.name = name;
  if (tensor) c.numel = tensor->numel(), c.dtype = tensor->scalar_type();
  calls_.push_back(c);
  return calls_.back();
}

std::unique_ptr<Work> LoopbackCommunicator::all_reduce_async(at::Tensor tensor, ReduceOp op) {
  record("all_reduce", &tensor).op = op;
  const int64_t sequence = cleared_ + static_cast<int64_t>(calls_.size()) - 1;
  return std::make_unique<LoopbackWork>(*this, sequence, std::move(tensor), op);
}

void LoopbackCommunicator::broadcast(at::Tensor tensor, int root) {
  DDP_CHECK(root >= 0 && root < size_, "broadcast from rank " << root << " in a world of " << size_);
  record("broadcast", &tensor).root = root;
}

at::Tensor LoopbackCommunicator::all_gather(const at::Tensor& tensor) {
  record("all_gather", &tensor);
  std::vector<int64_t> shape = {size_};
  for (int64_t d : tensor.sizes()) shape.push_back(d);
  return tensor.detach().unsqueeze(0).expand(shape).clone(at::MemoryFormat::Contiguous);
}

void LoopbackCommunicator::barrier() { record("barrier", nullptr); }

std::vector<std::string> LoopbackCommunicator::sequence(size_t from) const {
  std::vector<std::string> out;
  for (size_t i = from; i < calls_.size(); ++i) out.push_back(calls_[i].str());
  return out;
}

void LoopbackCommunicator::clear() {
  cleared_ += static_cast<int64_t>(calls_.size());
  calls_.clear();
}

}  // namespace ddp::testing
