// Mixed precision (train.precision): autocast around the forward pass and, for fp16, dynamic loss
// scaling.
//
// fp32  no autocast.
// bf16  autocast to bfloat16 on the model's device (CPU or CUDA). No loss scaling: bf16 has fp32's
//       exponent range. BatchNorm keeps fp32 weights and running statistics and accumulates its
//       batch statistics in fp32 (it takes the 16-bit activations of the convolution before it,
//       as under Python's autocast); the loss runs in fp32 (the trainer casts the logits first).
// fp16  autocast to float16 plus dynamic loss scaling (LossScaler). Meant for CUDA. On CPU it runs,
//       with a warning (precision_warning): LibTorch's CPU fp16 kernels are several times slower
//       than fp32 without AVX512-FP16 (measured 9x for the seed CNN here) and bf16 gives the same
//       memory saving without loss scaling. It is allowed there so that the loss-scaling path is
//       tested under mpirun on machines without a GPU.
//
// Note [loss scaling and bad steps]: with fp16 the backward pass runs on loss * scale. The
// trainer's one per-step flags all-reduce already tells every rank whether the averaged gradients
// are finite; since the gradients are identical on all ranks after finalize(), every rank takes
// the same branch: on overflow it halves the scale and skips the step without counting it as a
// bad step (a non-finite *loss* still counts as one); after growth_interval good steps in a row it
// doubles the scale. The scale and its good-step count are checkpointed (manifest loss_scale,
// loss_scale_good_steps), so a resumed fp16 run continues with the scale it had.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "ddp/config/config.h"

namespace ddp {

// A warning for a precision that runs badly on `device` (fp16 on CPU), or "" when it is a good fit.
std::string precision_warning(Precision p, c10::DeviceType device);
// Why `p` cannot run on a GPU of compute capability `cc_major`.x named `gpu` (bf16 needs 8.0,
// Ampere, as Python's torch.autocast checks), or "" when it can. cc_major 0 (unknown) passes.
std::string precision_gpu_problem(Precision p, int cc_major, int cc_minor, const std::string& gpu);

// Enables autocast for `device` with the dtype of `p` for its lifetime (nothing for fp32), and
// restores the previous autocast state afterwards. Not copyable.
class AutocastGuard {
 public:
  AutocastGuard(Precision p, c10::DeviceType device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Float;
};

// Dynamic loss scale (pure bookkeeping, no tensors): the same rules as torch.amp.GradScaler.
class LossScaler {
 public:
  explicit LossScaler(bool enabled, double init_scale = 65536.0, int64_t growth_interval = 2000,
                      double min_scale = 1.0);
  bool enabled() const { return enabled_; }
  // The factor to multiply the loss by before backward (1 when disabled).
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Records one step's outcome: overflow halves the scale (not below min_scale) and resets the
  // good-step count; growth_interval good steps in a row double it.
  void update(bool overflow);
  // True when the scale is at min_scale: an overflow there is a real divergence, not a scale
  // problem, and the trainer counts it as a bad step.
  bool at_minimum() const { return scale_ <= min_scale_; }
  // Good steps in a row since the scale last changed.
  int64_t good_steps() const { return good_steps_; }
  // Continues from a checkpointed state (scale > 0, good_steps >= 0); ignored when disabled.
  void restore(double scale, int64_t good_steps);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_;
  double min_scale_;
  int64_t good_steps_ = 0;
};

}  // namespace ddp
