#include "ddp/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "ddp/batcher.h"
#include "ddp/check.h"
#include "ddp/checkpoint.h"
#include "ddp/files.h"
#include "ddp/distributed_sampler.h"
#include "ddp/gradient_synchronizer.h"
#include "ddp/logging.h"
#include "ddp/lr_schedule.h"

namespace ddp {
using Clock = std::chrono::steady_clock;

struct Trainer::State {
  Config config;
  Communicator& comm;
  c10::Device device;
  ImageDataset train_data;
  ImageDataset test_data;
  std::shared_ptr<Classifier> model;
  std::unique_ptr<torch::optim::SGD> optimizer;
  std::unique_ptr<GradientSynchronizer> sync;
  std::unique_ptr<Batcher> train_batches;
  std::unique_ptr<Batcher> test_batches;
  std::vector<at::Tensor> buffers;
  std::unique_ptr<MetricsWriter> metrics;  // Rank 0 only.
  bool is_root() const { return comm.rank() == 0; }

  State(Config c, Communicator& cm, const c10::Device& d, ImageDataset tr, ImageDataset te)
      : config(std::move(c)), comm(cm), device(d), train_data(std::move(tr)), test_data(std::move(te)) {}
};

namespace {

// Rank 0 runs `fn` (file-system set-up); every rank learns whether it failed and throws the
// same InputError, so a bad directory ends the job cleanly on all ranks.
void root_prepares(Communicator& comm, const std::function<void()>& fn) {
  std::string error;
  if (comm.rank() == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  at::Tensor failed = at::tensor({static_cast<int32_t>(!error.empty())}, at::kInt);
  comm.broadcast(failed, 0);
  if (failed.item<int32_t>() != 0) {
    throw InputError(comm.rank() == 0 ? error : "rank 0 failed to prepare its output directories (see its message)");
  }
}

void ensure_writable_dir(const std::string& dir, const std::string& key) {
  const std::string why = files::make_directories(dir);
  if (!why.empty()) throw InputError("cannot create " + key + " '" + dir + "' (" + why + "); set " + key + " to a writable folder");
  const std::string probe = files::join(dir, ".ddptrain_write_test");
  FILE* f = std::fopen(probe.c_str(), "w");
  if (!f) throw InputError(key + " '" + dir + "' is not writable: " + std::strerror(errno) + "; set " + key + " to a writable folder");
  std::fclose(f);
  std::remove(probe.c_str());
}

// Host pipeline (data.pipeline=host): starts cutting the batch of this epoch's samples
// [lo, lo + n) on the background thread, to overlap with the step about to run. A wrong guess
// costs only the overlap: Batcher::get() recomputes a batch it was not asked to prefetch.
void prefetch_next(Batcher& batcher, const DistributedSampler& sampler, const std::vector<int64_t>& indices,
                   int64_t lo, int64_t n, const Config& c, int64_t epoch) {
  if (batcher.pipeline() != InputPipeline::kHost || lo >= sampler.num_samples()) return;
  const int64_t hi = std::min(lo + n, sampler.num_samples());
  std::vector<int64_t> idx(indices.begin() + lo, indices.begin() + hi), pos(hi - lo);
  for (int64_t i = lo; i < hi; ++i) pos[i - lo] = sampler.global_position(i);
  batcher.prefetch(idx, pos, c.data.augment, static_cast<uint64_t>(c.train.seed), epoch);
}

std::string fmt_eta(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  return buf;
}

}  // namespace

Trainer::Trainer(Config config, Communicator& comm, const c10::Device& device, ImageDataset train,
                 ImageDataset test)
    : s_(std::make_unique<State>(std::move(config), comm, device, std::move(train), std::move(test))) {
  const Config& c = s_->config;
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  s_->model = make_model(c.model.name, s_->train_data.channels(), s_->train_data.num_classes);
  s_->model->to(device);
  std::vector<at::Tensor> params = s_->model->parameters();
  for (const auto& b : s_->model->buffers()) {
    if (b.is_floating_point()) s_->buffers.push_back(b);
  }
  // The model check comes first so that a mismatch is an error, not a broadcast of wrong sizes.
  s_->sync = std::make_unique<GradientSynchronizer>(
      comm, params, static_cast<int64_t>(c.dist.bucket_mb * (1 << 20)),
      static_cast<int64_t>(c.dist.first_bucket_mb * (1 << 20)));
  std::vector<at::Tensor> state = params;
  for (const auto& b : s_->model->buffers()) state.push_back(b);
  broadcast_tensors(comm, state, 0);

  s_->optimizer = std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(c.train.lr)
                  .momentum(c.train.momentum)
                  .nesterov(c.train.nesterov)
                  .weight_decay(c.train.weight_decay));
  DDP_CHECK(!c.train.nesterov || c.train.momentum > 0,
            "train.nesterov=true needs train.momentum > 0");
  const InputPipeline pipeline = input_pipeline_from_name(c.data.pipeline);
  s_->train_batches = std::make_unique<Batcher>(s_->train_data, device, pipeline);
  s_->test_batches = std::make_unique<Batcher>(s_->test_data, device, pipeline);

  root_prepares(comm, [&] {
    ensure_writable_dir(c.log.dir, "log.dir");
    ensure_writable_dir(c.checkpoint.dir, "checkpoint.dir");
    s_->metrics = std::make_unique<MetricsWriter>(files::join(c.log.dir, "metrics.jsonl"));
  });
}

Trainer::~Trainer() = default;

Classifier& Trainer::model() { return *s_->model; }

EvalResult Trainer::evaluate() {
  State& s = *s_;
  // Every rank evaluates with rank 0's BatchNorm statistics, and the replicas leave the
  // evaluation identical in buffers as well as parameters.
  if (!s.buffers.empty()) broadcast_tensors(s.comm, s.buffers, 0);
  torch::NoGradGuard no_grad;
  s.model->eval();
  // Contiguous exact shards: rank r evaluates [r*N/W, (r+1)*N/W); no image is counted twice.
  const int64_t n = s.test_batches->size();
  const int64_t world = s.comm.size(), rank = s.comm.rank();
  const int64_t begin = n * rank / world, end = n * (rank + 1) / world;
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(s.device));
  at::Tensor correct = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(s.device));
  for (int64_t i = begin; i < end; i += s.config.eval.batch_size) {
    const int64_t len = std::min(s.config.eval.batch_size, end - i);
    Batch b = s.test_batches->range(i, len);
    at::Tensor logits = s.model->forward(b.images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, b.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(at::kDouble);
    correct += logits.argmax(1).eq(b.labels).sum();
  }
  at::Tensor totals = at::stack({loss_sum.cpu(), correct.cpu().to(at::kDouble),
                                 at::scalar_tensor(static_cast<double>(end - begin), at::kDouble)});
  s.comm.all_reduce(totals, ReduceOp::kSum);
  auto t = totals.accessor<double, 1>();
  EvalResult r;
  r.count = static_cast<int64_t>(t[2]);
  r.loss = t[0] / std::max<double>(1, t[2]);
  r.accuracy = t[1] / std::max<double>(1, t[2]);
  s.model->train();
  return r;
}

TrainSummary Trainer::run() {
  State& s = *s_;
  const Config& c = s.config;
  const auto start = Clock::now();
  DistributedSampler sampler(s.train_data.size(), s.comm.rank(), s.comm.size(), c.data.shuffle,
                             static_cast<uint64_t>(c.train.seed));
  const int64_t batch = c.train.batch_size;
  const int64_t steps_per_epoch = (sampler.num_samples() + batch - 1) / batch;
  int64_t total_steps = c.train.epochs * steps_per_epoch;
  if (c.train.max_steps > 0) total_steps = std::min(total_steps, c.train.max_steps);

  LrSchedule schedule;
  schedule.kind = c.train.lr_schedule;
  schedule.base_lr = c.train.lr;
  schedule.min_lr = c.train.min_lr;
  schedule.warmup_steps = static_cast<int64_t>(std::llround(c.train.warmup_epochs * steps_per_epoch));
  schedule.step_steps = std::max<int64_t>(1, std::llround(c.train.lr_step_epochs * steps_per_epoch));
  schedule.gamma = c.train.lr_gamma;
  schedule.total_steps = total_steps;

  int64_t step = 0, first_epoch = 0;
  if (!c.resume.empty()) {
    CheckpointState st = load_checkpoint(c.resume, *s.model, *s.optimizer, c.model.name);
    step = st.step;
    first_epoch = st.epoch;
    if (s.is_root()) spdlog::info("resumed from {} at epoch {} step {}", c.resume, st.epoch, st.step);
  }

  if (s.is_root()) {
    spdlog::info("training {} ({} parameters) on {} | {} ranks x batch {} = {} images/step | {} steps/epoch, {} steps",
                 c.model.name, parameter_count(*s.model), s.train_data.name, s.comm.size(), batch,
                 batch * s.comm.size(), steps_per_epoch, total_steps);
    spdlog::info("gradient buckets: {} (first {} params), backend {}", s.sync->plan().size(),
                 s.sync->plan().front().params.size(), s.comm.backend());
  }

  TrainSummary summary;
  bool have_first = false;
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(s.device));
  int64_t loss_count = 0;
  auto interval_start = Clock::now();
  int64_t interval_steps = 0;
  const auto ce_options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.train.label_smoothing);
  int64_t epoch = first_epoch;
  bool cut_short = false;

  for (; epoch < c.train.epochs && step < total_steps; ++epoch) {
    sampler.set_epoch(epoch);
    const std::vector<int64_t> indices = sampler.indices();
    const int64_t skip = step - epoch * steps_per_epoch;  // Steps of this epoch already done.
    for (int64_t b = std::max<int64_t>(0, skip); b < steps_per_epoch; ++b) {
      if (step >= total_steps) {
        cut_short = true;
        break;
      }
      // ---- every rank: one training step ----
      const double lr = lr_at(schedule, step);
      for (auto& group : s.optimizer->param_groups()) {
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      }
      const int64_t lo = b * batch, hi = std::min(lo + batch, sampler.num_samples());
      std::vector<int64_t> idx(indices.begin() + lo, indices.begin() + hi), pos(hi - lo);
      for (int64_t i = lo; i < hi; ++i) pos[i - lo] = sampler.global_position(i);
      Batch data = s.train_batches->get(idx, pos, c.data.augment, static_cast<uint64_t>(c.train.seed), epoch);
      if (step + 1 < total_steps) prefetch_next(*s.train_batches, sampler, indices, hi, batch, c, epoch);
      if (c.dist.broadcast_buffers && !s.buffers.empty()) broadcast_tensors(s.comm, s.buffers, 0);
      at::Tensor logits = s.model->forward(data.images);
      at::Tensor loss = torch::nn::functional::cross_entropy(logits, data.labels, ce_options);
      s.optimizer->zero_grad();
      loss.backward();
      s.sync->synchronize();
      s.optimizer->step();
      ++step;
      ++interval_steps;
      loss_sum += loss.detach();
      ++loss_count;

      // ---- every rank: log-step loss all-reduce; then rank 0 logs ----
      if (step % c.log.every_steps == 0 || step == total_steps) {
        at::Tensor mean = (loss_sum / static_cast<double>(loss_count)).cpu().reshape({1});
        s.comm.all_reduce(mean, ReduceOp::kAvg);
        const double loss_value = mean.item<float>();
        const double secs = std::chrono::duration<double>(Clock::now() - interval_start).count();
        const double ms_per_step = 1000.0 * secs / std::max<int64_t>(1, interval_steps);
        const double ips = static_cast<double>(interval_steps * batch * s.comm.size()) / std::max(secs, 1e-9);
        if (!have_first) summary.first_loss = loss_value, have_first = true;
        summary.last_loss = loss_value;
        if (s.is_root()) {
          const double eta = ms_per_step * static_cast<double>(total_steps - step) / 1000.0;
          spdlog::info("epoch {} step {}/{} | loss {:.4f} | lr {:.4g} | {:.1f} ms/step | {:.0f} img/s | eta {}",
                       epoch + 1, step, total_steps, loss_value, lr, ms_per_step, ips, fmt_eta(eta));
          s.metrics->train(step, epoch + 1, loss_value, lr, ips);
        }
        loss_sum.zero_();
        loss_count = 0;
        interval_steps = 0;
        interval_start = Clock::now();
      }
    }
    const bool epoch_done = !cut_short;
    // ---- every rank: evaluation (one all-reduce) ----
    summary.eval = evaluate();
    // ---- rank 0 only: report and checkpoint (no collectives) ----
    if (s.is_root()) {
      spdlog::info("epoch {} eval | test loss {:.4f} | test accuracy {:.4f} ({} images)", epoch + 1,
                   summary.eval.loss, summary.eval.accuracy, summary.eval.count);
      s.metrics->eval(epoch + 1, step, summary.eval.loss, summary.eval.accuracy);
      CheckpointState st;
      st.epoch = epoch_done ? epoch + 1 : epoch;
      st.step = step;
      st.model_name = c.model.name;
      st.config_yaml = c.to_yaml();
      const std::string path = checkpoint_path(c.checkpoint.dir, epoch + 1, step);
      save_checkpoint(path, *s.model, *s.optimizer, st);
      prune_checkpoints(c.checkpoint.dir, c.checkpoint.keep);
      spdlog::info("saved checkpoint {}", path);
    }
    if (cut_short) break;
  }
  summary.steps = step;
  summary.epochs = epoch;
  summary.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (s.is_root()) spdlog::info("total wall time {:.2f} s ({} steps)", summary.wall_s, step);
  return summary;
}

}  // namespace ddp
