#include "ddp/train/step_agreement.h"

#include <ATen/ATen.h>

#include <string>

#include "ddp/core/check.h"

namespace ddp {

StepVerdict StepAgreement::agree(const at::Tensor& step_loss, const std::vector<at::Tensor>& params,
                                 bool stop_here, LossScaler& scaler) {
  // The averaged gradients are identical on all ranks, so a NaN anywhere is seen everywhere; the
  // flag also covers a non-finite loss on one rank.
  const at::Tensor loss_total = step_loss.defined() ? step_loss.to(at::kDouble) : at::zeros({}, at::kDouble);
  at::Tensor grad_total;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const at::Tensor s = p.grad().sum().to(at::kDouble);
    grad_total = grad_total.defined() ? grad_total + s : s;
  }
  if (!grad_total.defined()) grad_total = at::zeros({}, at::kDouble);
  at::Tensor flags = at::stack({at::scalar_tensor(stop_here ? 1.0 : 0.0, at::kDouble),
                                at::isfinite(loss_total.cpu()).logical_not().to(at::kDouble),
                                at::isfinite(grad_total.cpu()).logical_not().to(at::kDouble)});
  comm_.all_reduce(flags, ReduceOp::kSum);
  const auto agreed = flags.accessor<double, 1>();
  const bool loss_nonfinite = agreed[1] > 0, grad_nonfinite = agreed[2] > 0;

  StepVerdict v;
  v.stop = agreed[0] > 0;
  // fp16: an overflow of the scaled gradients (with a finite loss) lowers the scale and skips the
  // step without counting as a bad step, on every rank alike.
  const bool overflow = scaler.enabled() && grad_nonfinite && !loss_nonfinite && !scaler.at_minimum();
  if (scaler.enabled()) scaler.update(grad_nonfinite);
  if (overflow) {
    v.outcome = StepOutcome::kSkipOverflow;
  } else if (loss_nonfinite || grad_nonfinite) {
    v.outcome = StepOutcome::kSkipBad;
    ++bad_in_row_;
  } else {
    bad_in_row_ = 0;
  }
  v.bad_in_row = bad_in_row_;
  return v;
}

void StepAgreement::throw_if_diverged(const StepVerdict& v, int64_t step) const {
  if (v.outcome != StepOutcome::kSkipBad || v.bad_in_row <= max_bad_steps_) return;
  throw Error("training diverged: " + std::to_string(v.bad_in_row) +
                  " steps in a row with non-finite loss or "
                  "gradients (last at step " +
                  std::to_string(step) +
                  "); lower train.lr, check the data, or resume "
                  "from an earlier checkpoint",
              /*same_on_all_ranks=*/true);
}

}  // namespace ddp
