#include "ddp/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "ddp/core/check.h"

namespace ddp {

double lr_at(const LrSchedule& s, int64_t step) {
  const int64_t total = std::max<int64_t>(s.total_steps, 1);
  int64_t warmup = s.warmup_steps;
  if (s.kind == LrScheduleKind::kOneCycle && warmup <= 0) warmup = std::max<int64_t>(1, total * 3 / 10);
  const double start = s.kind == LrScheduleKind::kOneCycle ? s.base_lr / s.onecycle_div : 0.0;
  if (warmup > 0 && step < warmup) {
    return start + (s.base_lr - start) * static_cast<double>(step + 1) / static_cast<double>(warmup);
  }
  if (s.kind == LrScheduleKind::kConstant) return s.base_lr;
  if (s.kind == LrScheduleKind::kStep) {
    const int64_t decays = step / std::max<int64_t>(1, s.step_steps);  // Whole periods only.
    return s.base_lr * std::pow(s.gamma, static_cast<double>(decays));
  }
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  const double t = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  if (s.kind == LrScheduleKind::kCosine)
    return s.min_lr + (s.base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
  if (s.kind == LrScheduleKind::kOneCycle) return s.base_lr + (s.min_lr - s.base_lr) * t;
  DDP_CHECK(false, "unknown lr schedule " << static_cast<int>(s.kind));
  return 0.0;
}

}  // namespace ddp
