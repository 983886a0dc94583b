// Rank 0's reporter: the one place that knows the log line formats, the metrics.jsonl events and
// the TensorBoard tags. The trainer hands it numbers that every rank already agreed on; on other
// ranks every method does nothing. It issues no collective.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "ddp/observe/logging.h"
#include "ddp/observe/tensorboard_writer.h"

namespace ddp {

struct EvalResult;
struct TrainSummary;

// One log interval, as every rank agreed on it.
struct IntervalReport {
  int64_t epoch = 0;  // 1-based.
  int64_t step = 0;   // Steps done.
  int64_t total_steps = 0;
  int64_t steps = 0;     // Steps in the interval.
  bool applied = false;  // Some step of the interval was applied (else there is no loss).
  double loss = 0;       // Global mean training loss over the applied steps.
  double lr = 0;
  double ms_per_step = 0;
  double images_per_s = 0;
};

class Reporter {
 public:
  explicit Reporter(bool is_root) : is_root_(is_root), progress_(std::make_unique<ProgressLine>(false)) {}
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  // Rank 0: writes the resolved config to <log_dir>/config.yaml, opens <log_dir>/metrics.jsonl and,
  // with `tensorboard`, an event file; the progress line is drawn when `progress_line`.
  void open(const std::string& log_dir, const std::string& config_yaml, bool tensorboard, bool progress_line);
  // The start-up lines: what trains where, and how gradients travel.
  void started(const std::string& model, int64_t parameters, const std::string& dataset, int world,
               int64_t batch, int64_t micro, int64_t steps_per_epoch, int64_t total_steps, size_t buckets,
               size_t first_bucket_params, const std::string& backend, bool overlap,
               const std::string& grad_dtype, const std::string& log_dir);
  void nothing_to_train(int64_t step, int64_t epoch);
  void overflow_skipped(int64_t step, double loss_scale);
  void bad_step_skipped(int64_t step, int64_t in_row, int64_t in_all, int64_t limit);
  void interval(const IntervalReport& r);
  // Redraws the progress line (when drawn) after `epoch_steps` steps of the epoch begun at
  // `epoch_start`, each of `images_per_step` images; `force` at the end of an epoch or run.
  void progress(int64_t epoch, int64_t step, int64_t total_steps, int64_t epoch_steps,
                int64_t images_per_step, std::chrono::steady_clock::time_point epoch_start, bool force);
  void epoch_ended();
  void stopping(int64_t step);
  void eval(int64_t epoch, int64_t step, const EvalResult& r);
  void checkpoint_saved(const std::string& path);
  void finished(const TrainSummary& s, bool loss_scaling);

 private:
  bool is_root_;
  std::unique_ptr<ProgressLine> progress_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  double last_loss_ = std::numeric_limits<double>::quiet_NaN();  // At the last log step.
};

}  // namespace ddp
