#include "ddp/dist/gradient_synchronizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <sstream>

#include "ddp/core/check.h"
#include "ddp/core/hash.h"

namespace ddp {

GradientSynchronizer::GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params,
                                           SyncOptions options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  DDP_CHECK(!params_.empty(), "no parameters to synchronise");
  std::vector<int64_t> numels;
  for (const auto& p : params_) {
    DDP_CHECK(p.scalar_type() == params_[0].scalar_type(),
              "all parameters must share one dtype, got " << p.dtype() << " and " << params_[0].dtype());
    numels.push_back(p.numel());
  }
  if (options_.comm_dtype == at::ScalarType::Undefined) options_.comm_dtype = params_[0].scalar_type();
  const int64_t element_bytes = c10::elementSize(options_.comm_dtype);
  buckets_ = plan_buckets(numels, element_bytes, options_.cap_bytes, options_.first_cap_bytes);
  bucket_of_.resize(params_.size());
  offset_of_.resize(params_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    flat_.push_back(at::zeros({buckets_[b].numel}, params_[0].options().dtype(options_.comm_dtype)));
    int64_t offset = 0;
    for (int64_t i : buckets_[b].params) {
      bucket_of_[i] = static_cast<int64_t>(b);
      offset_of_[i] = offset;
      offset += params_[i].numel();
    }
  }
  pending_.assign(buckets_.size(), 0);
  filled_.assign(params_.size(), 0);
  works_.resize(buckets_.size());
  verify_same_parameters();
  if (comm_.size() > 1 && options_.overlap) {
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].requires_grad()) continue;
      hooks_.push_back(params_[i].register_hook(
          [this, i](const at::Tensor& grad) { on_gradient(static_cast<int64_t>(i), grad); }));
    }
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  size_t h = 0;
  for (size_t i = 0; i < params_.size() && h < hooks_.size(); ++i) {
    if (params_[i].requires_grad()) params_[i].remove_hook(hooks_[h++]);
  }
}

void GradientSynchronizer::verify_same_parameters() {
  int64_t total = 0;
  Fnv1a64 shapes;  // Of every parameter's dimensions, each shape ended by a -1.
  for (const auto& p : params_) {
    total += p.numel();
    for (int64_t d : p.sizes()) shapes.add_value(d);
    shapes.add_value(int64_t{-1});
  }
  const uint64_t shape_hash = shapes.value();
  at::Tensor mine = at::tensor(
      {static_cast<int64_t>(params_.size()), total, static_cast<int64_t>(shape_hash >> 1)}, at::kLong);
  at::Tensor all = comm_.all_gather(mine);
  auto a = all.accessor<int64_t, 2>();
  for (int r = 1; r < comm_.size(); ++r) {
    if (a[r][0] != a[0][0] || a[r][1] != a[0][1] || a[r][2] != a[0][2]) {
      std::ostringstream s;
      s << "model mismatch across ranks: rank " << r << " has " << a[r][0] << " parameters (" << a[r][1]
        << " elements) but rank 0 has " << a[0][0] << " (" << a[0][1] << " elements)"
        << (a[r][1] == a[0][1] ? " with different shapes" : "")
        << "; every rank must build the same model from the same config";
      throw Error(s.str(), /*same_on_all_ranks=*/true);
    }
  }
}

void GradientSynchronizer::prepare() {
  if (comm_.size() == 1 || !options_.overlap) return;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b] = static_cast<int64_t>(buckets_[b].params.size());
    works_[b].reset();
  }
  std::fill(filled_.begin(), filled_.end(), 0);
  next_bucket_ = 0;
  started_in_backward_ = 0;
  armed_ = true;
}

// Writes the parameter's full gradient for this step (what is already accumulated in .grad plus
// `new_grad`, either of which may be undefined) into its bucket slice.
void GradientSynchronizer::fill_slice(int64_t i, const at::Tensor& new_grad) {
  const at::Tensor& p = params_[i];
  // Shaped like the parameter, so a gradient in another memory layout (channels_last) is written
  // in one strided copy instead of a reshape copy and then a second copy.
  at::Tensor slice = flat_[bucket_of_[i]].narrow(0, offset_of_[i], p.numel()).view(p.sizes());
  const at::Tensor& accumulated = p.grad();
  if (accumulated.defined() && new_grad.defined()) {
    at::add_out(slice, accumulated, new_grad);
  } else if (new_grad.defined()) {
    slice.copy_(new_grad);
  } else if (accumulated.defined()) {
    slice.copy_(accumulated);
  } else {
    slice.zero_();
  }
  filled_[i] = 1;
}

void GradientSynchronizer::on_gradient(int64_t i, const at::Tensor& grad) {
  if (!armed_ || filled_[i]) return;
  c10::NoGradGuard no_grad;
  fill_slice(i, grad);
  if (--pending_[bucket_of_[i]] == 0) launch_ready_buckets();
  // Let MPI progress the buckets already in flight while backward goes on.
  for (size_t b = 0; b < next_bucket_; ++b) works_[b]->test();
}

void GradientSynchronizer::launch_ready_buckets() {
  while (next_bucket_ < buckets_.size() && pending_[next_bucket_] == 0) {
    works_[next_bucket_] = comm_.all_reduce_async(flat_[next_bucket_], ReduceOp::kAvg);
    ++next_bucket_;
    if (armed_) ++started_in_backward_;
  }
}

void GradientSynchronizer::finalize() {
  if (comm_.size() == 1) return;
  c10::NoGradGuard no_grad;
  if (!armed_) {  // Overlap off: everything happens here.
    std::fill(filled_.begin(), filled_.end(), 0);
    next_bucket_ = 0;
    started_in_backward_ = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = 0;
    for (size_t i = 0; i < params_.size(); ++i) fill_slice(static_cast<int64_t>(i), at::Tensor());
  }
  armed_ = false;
  // Parameters whose hook did not fire this step (unused in the forward pass).
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!filled_[i]) {
      fill_slice(static_cast<int64_t>(i), at::Tensor());
      --pending_[bucket_of_[i]];
    }
  }
  launch_ready_buckets();
  DDP_CHECK(next_bucket_ == buckets_.size(), "internal: bucket " << next_bucket_ << " was not launched");
  for (size_t b = 0; b < buckets_.size(); ++b) {
    works_[b]->wait();
    for (int64_t i : buckets_[b].params) {
      at::Tensor& p = params_[i];
      at::Tensor avg = flat_[b].narrow(0, offset_of_[i], p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(avg);
      } else {
        p.mutable_grad() = avg.to(p.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
      }
    }
    works_[b].reset();
  }
}

void GradientSynchronizer::synchronize() {
  armed_ = false;
  finalize();
}

}  // namespace ddp
