// Test-only fault injection (the fault.* keys; see FaultInjection in config.h): the trainer calls
// these hooks at fixed points of its loop, and each does nothing unless its fault is set for this
// rank at this step. Steps are 1-based, as in the keys.
#pragma once

#include <ATen/core/Tensor.h>

#include "ddp/config/config.h"

namespace torch::nn {
class Module;
}

namespace ddp {

class FaultInjector {
 public:
  FaultInjector(FaultInjection faults, int rank) : faults_(faults), rank_(rank) {}

  // fault.hang_at_step: this rank stops participating (sleeps forever) before step `step`.
  void hang_before(int64_t step) const;
  // fault.nan_at_step: the loss of step `step` on this rank, made NaN.
  at::Tensor poison_loss(at::Tensor loss, int64_t step) const;
  // fault.stop_at_step: rank 0 acts as if a stop signal arrived during step `step`.
  bool stop_requested(int64_t step) const;
  // fault.drift_at_step: nudges this rank's first parameter after step `step`.
  void drift_after(torch::nn::Module& model, int64_t step) const;

 private:
  FaultInjection faults_;
  int rank_;
};

}  // namespace ddp
