#include "ddp/train/fault_injection.h"

#include <c10/core/GradMode.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cmath>
#include <thread>

namespace ddp {
namespace {
// A fault's trigger (1-based; 0 = off) firing at step `at`.
bool fires(int64_t trigger, int64_t at) { return trigger > 0 && trigger == at; }
}  // namespace

void FaultInjector::hang_before(int64_t step) const {
  if (!fires(faults_.hang_at_step, step) || rank_ != faults_.hang_rank) return;
  spdlog::warn("fault.hang_at_step: rank {} stops participating at step {}", rank_, step);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

at::Tensor FaultInjector::poison_loss(at::Tensor loss, int64_t step) const {
  if (!fires(faults_.nan_at_step, step) || rank_ != faults_.nan_rank) return loss;
  return loss * std::nan("");
}

bool FaultInjector::stop_requested(int64_t step) const {
  return fires(faults_.stop_at_step, step) && rank_ == 0;
}

void FaultInjector::drift_after(torch::nn::Module& model, int64_t step) const {
  if (!fires(faults_.drift_at_step, step) || rank_ != faults_.drift_rank) return;
  c10::NoGradGuard no_grad;
  model.parameters()[0].add_(1e-3);
}

}  // namespace ddp
