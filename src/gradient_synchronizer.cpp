#include "ddp/gradient_synchronizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <functional>
#include <sstream>

#include "ddp/check.h"

namespace ddp {

GradientSynchronizer::GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params,
                                           int64_t cap_bytes, int64_t first_cap_bytes)
    : comm_(comm), params_(std::move(params)) {
  DDP_CHECK(!params_.empty(), "no parameters to synchronise");
  std::vector<int64_t> numels;
  for (const auto& p : params_) {
    DDP_CHECK(p.scalar_type() == params_[0].scalar_type(),
              "all parameters must share one dtype, got " << p.dtype() << " and " << params_[0].dtype());
    numels.push_back(p.numel());
  }
  buckets_ = plan_buckets(numels, params_[0].element_size(), cap_bytes, first_cap_bytes);
  for (const auto& b : buckets_) flat_.push_back(at::zeros({b.numel}, params_[0].options()));
  verify_same_parameters();
}

void GradientSynchronizer::verify_same_parameters() {
  int64_t total = 0;
  uint64_t shape_hash = 1469598103934665603ull;
  for (const auto& p : params_) {
    total += p.numel();
    for (auto d : p.sizes()) shape_hash = (shape_hash ^ static_cast<uint64_t>(d)) * 1099511628211ull;
    shape_hash = (shape_hash ^ 0xff) * 1099511628211ull;
  }
  at::Tensor mine = at::tensor({static_cast<int64_t>(params_.size()), total,
                                static_cast<int64_t>(shape_hash >> 1)}, at::kLong);
  at::Tensor all = comm_.all_gather(mine);
  auto a = all.accessor<int64_t, 2>();
  for (int r = 1; r < comm_.size(); ++r) {
    if (a[r][0] != a[0][0] || a[r][1] != a[0][1] || a[r][2] != a[0][2]) {
      std::ostringstream s;
      s << "model mismatch across ranks: rank " << r << " has " << a[r][0] << " parameters ("
        << a[r][1] << " elements) but rank 0 has " << a[0][0] << " (" << a[0][1]
        << " elements)" << (a[r][1] == a[0][1] ? " with different shapes" : "")
        << "; every rank must build the same model from the same config";
      throw Error(s.str(), /*same_on_all_ranks=*/true);
    }
  }
}

void GradientSynchronizer::synchronize() {
  if (comm_.size() == 1) return;
  c10::NoGradGuard no_grad;
  std::vector<std::unique_ptr<Work>> works;
  works.reserve(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t offset = 0;
    for (int64_t i : buckets_[b].params) {
      const at::Tensor& p = params_[i];
      at::Tensor slice = flat_[b].narrow(0, offset, p.numel());
      const at::Tensor& g = p.grad();
      if (g.defined()) {
        slice.copy_(g.reshape({-1}));
      } else {
        slice.zero_();
      }
      offset += p.numel();
    }
    works.push_back(comm_.all_reduce_async(flat_[b], ReduceOp::kAvg));
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    works[b]->wait();
    int64_t offset = 0;
    for (int64_t i : buckets_[b].params) {
      at::Tensor& p = params_[i];
      at::Tensor slice = flat_[b].narrow(0, offset, p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slice);
      } else {
        p.mutable_grad() = slice.clone();
      }
      offset += p.numel();
    }
  }
}

}  // namespace ddp
