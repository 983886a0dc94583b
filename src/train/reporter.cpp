#include "ddp/train/reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/train/trainer.h"

namespace ddp {
namespace {
std::string fmt_eta(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  return buf;
}
}  // namespace

void Reporter::open(const std::string& log_dir, const std::string& config_yaml, bool tensorboard,
                    bool progress_line) {
  if (!is_root_) return;
  const std::string config_path = files::join(log_dir, "config.yaml");
  std::ofstream config(config_path, std::ios::trunc);
  config << config_yaml;
  if (!config.flush()) throw InputError("cannot write " + config_path + "; set log.dir to a writable folder");
  if (!metrics_) metrics_ = std::make_unique<MetricsWriter>(files::join(log_dir, "metrics.jsonl"));
  if (tensorboard && !tensorboard_) tensorboard_ = std::make_unique<TensorBoardWriter>(log_dir);
  progress_ = std::make_unique<ProgressLine>(progress_line);
}

void Reporter::started(const std::string& model, int64_t parameters, const std::string& dataset, int world,
                       int64_t batch, int64_t micro, int64_t steps_per_epoch, int64_t total_steps,
                       size_t buckets, size_t first_bucket_params, const std::string& backend, bool overlap,
                       const std::string& grad_dtype, const std::string& log_dir) {
  if (!is_root_) return;
  spdlog::info(
      "training {} ({} parameters) on {} | {} ranks x batch {} x {} micro-batches = {} images/step | {} "
      "steps/epoch, {} steps",
      model, parameters, dataset, world, batch, micro, batch * micro * world, steps_per_epoch, total_steps);
  spdlog::info("gradient buckets: {} (first {} params), backend {}, overlap {}, gradients in {}", buckets,
               first_bucket_params, backend, overlap ? "on" : "off", grad_dtype);
  if (tensorboard_)
    spdlog::info("TensorBoard events: {} (tensorboard --logdir {})", tensorboard_->path(), log_dir);
}

void Reporter::nothing_to_train(int64_t step, int64_t epoch) {
  if (!is_root_) return;
  spdlog::info(
      "nothing to train: the resumed run has done its {} steps ({} epochs); raise train.epochs (or "
      "train.max_steps) to train on",
      step, epoch);
}

void Reporter::overflow_skipped(int64_t step, double loss_scale) {
  if (!is_root_) return;
  spdlog::info("step {}: fp16 gradient overflow; step skipped, loss scale now {}", step, loss_scale);
}

void Reporter::bad_step_skipped(int64_t step, int64_t in_row, int64_t in_all, int64_t limit) {
  if (!is_root_) return;
  spdlog::warn(
      "step {}: non-finite loss or gradient (agreed by all ranks); step skipped ({} in a row, {} in all, "
      "limit train.max_bad_steps={})",
      step, in_row, in_all, limit);
}

void Reporter::interval(const IntervalReport& r) {
  if (!is_root_) return;
  // Every step of the interval skipped (fp16 overflow or non-finite; agreed, so the same on all
  // ranks): there is no loss to report, and 0 would be a lie.
  if (!r.applied) {
    if (!progress_->enabled()) {
      spdlog::info(
          "epoch {} step {}/{} | no step applied since the last log line (all {} skipped) | lr {:.4g}",
          r.epoch, r.step, r.total_steps, r.steps, r.lr);
    }
    return;
  }
  last_loss_ = r.loss;
  if (!progress_->enabled()) {
    const double eta = r.ms_per_step * static_cast<double>(r.total_steps - r.step) / 1000.0;
    spdlog::info("epoch {} step {}/{} | loss {:.4f} | lr {:.4g} | {:.1f} ms/step | {:.0f} img/s | eta {}",
                 r.epoch, r.step, r.total_steps, r.loss, r.lr, r.ms_per_step, r.images_per_s, fmt_eta(eta));
  }
  metrics_->train(r.step, r.epoch, r.loss, r.lr, r.images_per_s);
  if (tensorboard_) {
    tensorboard_->add_scalar("train_loss", r.loss, r.step);
    tensorboard_->add_scalar("lr", r.lr, r.step);
    tensorboard_->add_scalar("images_per_s", r.images_per_s, r.step);
  }
}

void Reporter::progress(int64_t epoch, int64_t step, int64_t total_steps, int64_t epoch_steps,
                        int64_t images_per_step, std::chrono::steady_clock::time_point epoch_start,
                        bool force) {
  if (!is_root_ || !progress_->enabled()) return;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
  const int64_t done = std::max<int64_t>(1, epoch_steps);
  const double images_per_s = static_cast<double>(done * images_per_step) / std::max(secs, 1e-9);
  const double eta_s = secs / static_cast<double>(done) * static_cast<double>(total_steps - step);
  progress_->update(format_progress(epoch, step, total_steps, last_loss_, images_per_s, eta_s), force);
}

void Reporter::epoch_ended() { progress_->finish(); }

void Reporter::stopping(int64_t step) {
  progress_->finish();
  if (!is_root_) return;
  spdlog::warn("stop requested by signal: all ranks stop after step {}; saving a checkpoint", step);
}

void Reporter::eval(int64_t epoch, int64_t step, const EvalResult& r) {
  if (!is_root_) return;
  spdlog::info("epoch {} eval | test loss {:.4f} | test accuracy {:.4f} ({} images)", epoch, r.loss,
               r.accuracy, r.count);
  metrics_->eval(epoch, step, r.loss, r.accuracy);
  // The seed's tags and step axis (its total_test_step: the epoch number, from 1); the loss is the
  // mean per test image (the seed summed per-batch means, which depends on the batch).
  if (tensorboard_) {
    tensorboard_->add_scalar("total_test_loss", r.loss, epoch);
    tensorboard_->add_scalar("total_test_accuracy", r.accuracy, epoch);
  }
}

void Reporter::checkpoint_saved(const std::string& path) {
  if (is_root_) spdlog::info("saved checkpoint {}", path);
}

void Reporter::finished(const TrainSummary& s, bool loss_scaling) {
  if (!is_root_) return;
  std::string skipped;
  if (s.bad_steps) skipped += ", " + std::to_string(s.bad_steps) + " skipped as non-finite";
  if (loss_scaling) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), ", %lld skipped for fp16 overflow, loss scale %g",
                  static_cast<long long>(s.overflow_steps), s.loss_scale);
    skipped += buf;
  }
  spdlog::info("total wall time {:.2f} s ({} steps{})", s.wall_s, s.steps, skipped);
}

}  // namespace ddp
