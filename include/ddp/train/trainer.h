// The data-parallel training loop.
//
// Who runs what (see Note [collective order]):
//   every rank   sampler shard -> batch -> forward -> backward -> gradient all-reduce -> step;
//                log-step loss all-reduce; evaluation on its exact shard of the test set and
//                one all-reduce of the sums
//   rank 0 only  logs and the progress line, metrics.jsonl, TensorBoard events, checkpoint files
//                (no collective inside any of them)
//
// Note [collective order]: every rank issues the same collectives in the same order. Start-up:
// all-gather (model check), broadcast of parameters and buffers from rank 0. Each step: buffer
// broadcast (when the model has buffers and dist.broadcast_buffers), the bucket all-reduces, the
// step's agreement (one all-reduce of three flags, step_agreement.h), and on a log step one loss
// all-reduce. After each epoch: one eval all-reduce. The parts of the loop: resume.h (where a run
// starts), step_agreement.h, reporter.h (rank 0's logs, metrics and TensorBoard tags) and
// fault_injection.h (test-only faults).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "ddp/config/config.h"
#include "ddp/data/batcher.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/communicator.h"
#include "ddp/train/models.h"

namespace ddp {

struct EvalResult {
  double loss = 0;      // Mean cross-entropy per test image.
  double accuracy = 0;  // Fraction correct.
  int64_t count = 0;    // Images evaluated, over all ranks (each exactly once).
};

// Where a training step's time goes, summed over the steady-state steps of a run (every step
// after the first kTimingWarmupSteps), on this rank, by host clock. On a GPU the phases are
// launch times unless something synchronises (the flags all-reduce does, once per step).
struct StepTimes {
  int64_t steps = 0;       // Steps timed.
  double setup_s = 0;      // LR, buffer broadcast, zero_grad.
  double data_s = 0;       // Cutting the batch (and starting the host prefetch).
  double forward_s = 0;    // Forward and loss.
  double backward_s = 0;   // backward(), including the bucket all-reduces it starts.
  double comm_wait_s = 0;  // finalize(): exposed communication (waiting for the last buckets).
  double check_s = 0;      // Non-finite check and the per-step flags all-reduce.
  double optimizer_s = 0;  // optimizer.step() (and fp16 unscaling).
  double total_s = 0;      // Whole steps, including buffer broadcast, zero_grad and logging.
};
constexpr int64_t kTimingWarmupSteps = 3;

struct TrainSummary {
  int64_t steps = 0;
  int64_t epochs = 0;
  double wall_s = 0;
  double first_loss = 0;           // Mean training loss over the first log interval.
  double last_loss = 0;            // Mean training loss over the last log interval.
  int64_t bad_steps = 0;           // Steps skipped for non-finite loss or gradients.
  int64_t overflow_steps = 0;      // fp16: steps skipped because the scaled gradients overflowed.
  double loss_scale = 0;           // fp16: the loss scale at the end of the run (0 otherwise).
  bool stopped_by_signal = false;  // Stopped early by an agreed stop request; checkpoint saved.
  StepTimes timing;                // Steady-state steps of this run.
  EvalResult eval;
};

// Throws the same InputError on every rank (naming the first key that differs) unless every rank
// resolved the same config; only data.root, log.dir and checkpoint.dir may differ. One broadcast
// and one all-gather: the commands call it once, on every rank, before anything depends on the
// config (the Trainer trusts its config to be the same everywhere).
void check_same_config(Communicator& comm, const Config& config);

class Trainer {
 public:
  // `faults`: test-only fault injection (none by default).
  Trainer(Config config, Communicator& comm, const c10::Device& device, ImageDataset train, ImageDataset test,
          FaultInjection faults = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainSummary run();
  // Evaluates on the test set, every rank on its own exact shard; the result is global.
  EvalResult evaluate();
  Classifier& model();
  // Gradient buckets whose all-reduce started inside the last backward (0 with overlap off).
  int64_t buckets_started_in_backward() const;

  struct State;  // The run's parts (trainer.cpp); its named steps take it.

 private:
  std::unique_ptr<State> s_;
};

// Evaluates `model` on `test`, every rank on its own exact contiguous shard (no padded duplicates),
// with one all-reduce of the sums; the result is global. Every rank of `comm` must call it. The
// model is in eval() mode during the call and in train() mode after it.
EvalResult evaluate_model(Classifier& model, const Batcher& test, Communicator& comm, int64_t batch_size,
                          const c10::Device& device);

}  // namespace ddp
