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
// broadcast (when the model has buffers and dist.broadcast_buffers), the bucket all-reduces, and
// on a log step one loss all-reduce. After each epoch: one eval all-reduce.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "ddp/batcher.h"
#include "ddp/communicator.h"
#include "ddp/config.h"
#include "ddp/dataset.h"
#include "ddp/models.h"

namespace ddp {

struct EvalResult {
  double loss = 0;      // Mean cross-entropy per test image.
  double accuracy = 0;  // Fraction correct.
  int64_t count = 0;    // Images evaluated, over all ranks (each exactly once).
};

struct TrainSummary {
  int64_t steps = 0;
  int64_t epochs = 0;
  double wall_s = 0;
  double first_loss = 0;  // Mean training loss over the first log interval.
  double last_loss = 0;   // Mean training loss over the last log interval.
  int64_t bad_steps = 0;  // Steps skipped for non-finite loss or gradients.
  bool stopped_by_signal = false;  // Stopped early by an agreed stop request; checkpoint saved.
  EvalResult eval;
};

class Trainer {
 public:
  Trainer(Config config, Communicator& comm, const c10::Device& device, ImageDataset train,
          ImageDataset test);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainSummary run();
  // Evaluates on the test set, every rank on its own exact shard; the result is global.
  EvalResult evaluate();
  Classifier& model();
  // Gradient buckets whose all-reduce started inside the last backward (0 with overlap off).
  int64_t buckets_started_in_backward() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Evaluates `model` on `test`, every rank on its own exact contiguous shard (no padded duplicates),
// with one all-reduce of the sums; the result is global. Every rank of `comm` must call it. The
// model is in eval() mode during the call and in train() mode after it.
EvalResult evaluate_model(Classifier& model, const Batcher& test, Communicator& comm,
                          int64_t batch_size, const c10::Device& device);

}  // namespace ddp
