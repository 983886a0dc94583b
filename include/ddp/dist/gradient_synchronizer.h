// Keeps replicas identical: averages parameter gradients across ranks, bucket by bucket, while
// backward is still running.
//
// Construction plans the buckets (plan_buckets: reverse parameter order, small first bucket) and
// checks with one all-gather that every rank holds the same parameter list (count, shapes); a
// mismatch is an error on every rank naming the rank that differs, not a hang. It registers a
// hook on every parameter.
//
// One optimizer step, with k >= 1 micro-batches (gradient accumulation):
//   backward() x (k-1)   hooks idle: gradients accumulate locally in .grad, no communication
//   prepare()            arms the hooks for the next backward
//   backward()           each hook copies its parameter's full gradient (accumulated + new) into
//                        its bucket's flat buffer; when every gradient of a bucket is in, that
//                        bucket's all-reduce starts asynchronously. Buckets start strictly in
//                        plan order, the same on every rank.
//   finalize()           starts any bucket still waiting (a parameter that got no gradient this
//                        step contributes its accumulated gradient or zeros: never a hang), waits
//                        for all buckets, and writes the averages into .grad in float32.
// With overlap off, prepare() arms nothing and finalize() copies, all-reduces and writes back
// every bucket after backward. Optional 16-bit compression (comm_dtype bf16/fp16) all-reduces
// the buckets in that type; gradients return to the parameters' dtype before the step.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "ddp/dist/bucket_plan.h"
#include "ddp/dist/communicator.h"

namespace ddp {

struct SyncOptions {
  int64_t cap_bytes = 25 << 20;
  int64_t first_cap_bytes = 1 << 20;
  bool overlap = true;
  // The dtype gradients travel in; Undefined = the parameters' own dtype.
  at::ScalarType comm_dtype = at::ScalarType::Undefined;
};

class GradientSynchronizer {
 public:
  GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params, SyncOptions options);
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  // Arms the hooks: the next backward's gradients are all-reduced as they arrive.
  void prepare();
  // Completes the all-reduce of every bucket and leaves the averaged gradients in .grad.
  void finalize();
  // prepare-less form for callers that ran backward already: finalize() with overlap off.
  void synchronize();

  const std::vector<Bucket>& plan() const { return buckets_; }
  // Buckets whose all-reduce was started from inside backward in the last step (for tests and
  // the overlap benchmark).
  int64_t buckets_started_in_backward() const { return started_in_backward_; }

 private:
  void verify_same_parameters();
  void on_gradient(int64_t param, const at::Tensor& grad);
  void fill_slice(int64_t param, const at::Tensor& new_grad);
  void launch_ready_buckets();

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  SyncOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<at::Tensor> flat_;              // One buffer per bucket, reused every step.
  std::vector<int64_t> bucket_of_;            // Parameter -> bucket.
  std::vector<int64_t> offset_of_;            // Parameter -> offset in its bucket.
  std::vector<int64_t> pending_;              // Bucket -> gradients still missing this step.
  std::vector<char> filled_;                  // Parameter -> gradient copied this step.
  std::vector<std::unique_ptr<Work>> works_;  // Bucket -> all-reduce in flight.
  std::vector<unsigned> hooks_;
  size_t next_bucket_ = 0;  // Buckets are launched in order; this is the next to launch.
  bool armed_ = false;
  int64_t started_in_backward_ = 0;
};

}  // namespace ddp
