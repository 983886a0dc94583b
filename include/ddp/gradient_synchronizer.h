// Keeps replicas identical: averages parameter gradients across ranks, bucket by bucket.
//
// Construction plans the buckets (plan_buckets, in reverse parameter order) and checks, with one
// all-gather, that every rank holds the same parameter list (count, shapes); a mismatch is an
// error on every rank naming the rank that differs, not a hang. synchronize() is called after
// backward on every rank: it copies each bucket's gradients into a flat buffer, starts that
// bucket's all-reduce (buckets in plan order, the same on every rank), then waits for all of
// them and writes the averages back. A parameter that got no gradient this step contributes
// zeros and receives the average, so it never desynchronises the ranks or hangs them.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "ddp/bucket_plan.h"
#include "ddp/communicator.h"

namespace ddp {

class GradientSynchronizer {
 public:
  GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params, int64_t cap_bytes,
                       int64_t first_cap_bytes);
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  // Averages the gradients of all parameters across ranks, in place.
  void synchronize();

  const std::vector<Bucket>& plan() const { return buckets_; }

 private:
  void verify_same_parameters();

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<at::Tensor> flat_;  // One buffer per bucket, reused every step.
};

}  // namespace ddp
