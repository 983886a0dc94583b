// The step's agreement (every rank): after the gradients are averaged, one tiny all-reduce agrees
// on stopping (a signal on any rank) and on non-finite values (a NaN loss on one rank, NaN or
// overflowing gradients), so that every rank applies or skips the same steps and stops after the
// same one. See Note [loss scaling and bad steps] in mixed_precision.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "ddp/dist/communicator.h"
#include "ddp/train/mixed_precision.h"

namespace ddp {

enum class StepOutcome {
  kApply,         // Finite: the optimizer steps.
  kSkipOverflow,  // fp16: the scaled gradients overflowed; the scale was lowered, nothing counted.
  kSkipBad,       // Non-finite loss or gradients: skipped and counted as a bad step.
};

struct StepVerdict {
  StepOutcome outcome = StepOutcome::kApply;
  bool stop = false;       // Every rank stops after this step.
  int64_t bad_in_row = 0;  // Bad steps in a row, this one included.
};

class StepAgreement {
 public:
  // `max_bad_steps`: bad steps in a row that are skipped; one more stops the run as diverged.
  StepAgreement(Communicator& comm, int64_t max_bad_steps) : comm_(comm), max_bad_steps_(max_bad_steps) {}

  // One all-reduce of three flags: this rank's stop request, whether `step_loss` (undefined when
  // this rank had no samples) and the gradients of `params` are finite. Updates `scaler` (when
  // enabled) with the agreed overflow.
  StepVerdict agree(const at::Tensor& step_loss, const std::vector<at::Tensor>& params, bool stop_here,
                    LossScaler& scaler);
  // Throws ddp::Error (the same on all ranks) when the bad steps in a row exceed max_bad_steps;
  // `step` (1-based) is named in it.
  void throw_if_diverged(const StepVerdict& verdict, int64_t step) const;

 private:
  Communicator& comm_;
  int64_t max_bad_steps_;
  int64_t bad_in_row_ = 0;
};

}  // namespace ddp
