// Learning-rate schedules as pure functions of the optimizer step.
//
//   constant  lr
//   step      lr * gamma^floor(step / step_steps)
//   cosine    linear warm-up to lr over warmup_steps, then cosine decay to min_lr at total_steps
//   onecycle  linear warm-up from lr/div to lr over warmup_steps (default 30% of the run when
//             none is configured), then linear decay to min_lr at total_steps (the piecewise-
//             linear schedule of the fast CIFAR-10 recipes)
// Warm-up applies to every kind when warmup_steps > 0.
#pragma once

#include <cstdint>
#include <string>

#include "ddp/config/config.h"

namespace ddp {

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double base_lr = 0.01;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t step_steps = 1;    // "step": decay every this many steps.
  double gamma = 0.1;        // "step": decay factor.
  double onecycle_div = 25;  // "onecycle": start lr = base_lr / onecycle_div.
  int64_t total_steps = 1;
};

// The learning rate for optimizer step `step` (0-based).
double lr_at(const LrSchedule& s, int64_t step);

}  // namespace ddp
