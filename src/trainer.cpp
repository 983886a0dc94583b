#include "ddp/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

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
#include "ddp/mixed_precision.h"
#include "ddp/signals.h"
#include "ddp/tensorboard_writer.h"

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
  std::unique_ptr<TensorBoardWriter> tensorboard;  // Rank 0 only, when log.tensorboard.
  Precision precision = Precision::kFp32;
  bool is_root() const { return comm.rank() == 0; }

  State(Config c, Communicator& cm, const c10::Device& d, ImageDataset tr, ImageDataset te)
      : config(std::move(c)), comm(cm), device(d), train_data(std::move(tr)), test_data(std::move(te)) {}
};

namespace {

// Rank 0's string, on every rank.
std::string broadcast_string(Communicator& comm, const std::string& mine) {
  at::Tensor len = at::tensor({static_cast<int64_t>(mine.size())}, at::kLong);
  comm.broadcast(len, 0);
  at::Tensor bytes = at::zeros({len.item<int64_t>() + 1}, at::kByte);
  if (comm.rank() == 0) std::memcpy(bytes.data_ptr(), mine.data(), mine.size());
  comm.broadcast(bytes, 0);
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(len.item<int64_t>()));
}

// Rank 0 runs `fn` (file-system work); every rank learns rank 0's error, if any, and throws it as
// the same InputError, so a bad directory or folder ends the job cleanly on all ranks.
void root_prepares(Communicator& comm, const std::function<void()>& fn) {
  std::string error;
  if (comm.rank() == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = broadcast_string(comm, error);
  if (!error.empty()) throw InputError(error);
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

// This rank's samples [lo, hi) of the epoch: dataset indices and the global positions that key
// their augmentation.
struct SampleSlice {
  std::vector<int64_t> indices, positions;
};
SampleSlice slice_of(const DistributedSampler& sampler, const std::vector<int64_t>& indices, int64_t lo, int64_t hi) {
  SampleSlice s{std::vector<int64_t>(indices.begin() + lo, indices.begin() + hi), std::vector<int64_t>(hi - lo)};
  for (int64_t i = lo; i < hi; ++i) s.positions[i - lo] = sampler.global_position(i);
  return s;
}

// Host pipeline (data.pipeline=host): starts cutting the batch of this epoch's samples
// [lo, lo + n) on the background thread, to overlap with the step about to run. A wrong guess
// costs only the overlap: Batcher::get() recomputes a batch it was not asked to prefetch.
void prefetch_next(Batcher& batcher, const DistributedSampler& sampler, const std::vector<int64_t>& indices,
                   int64_t lo, int64_t n, const Config& c, int64_t epoch) {
  if (batcher.pipeline() != InputPipeline::kHost || lo >= sampler.num_samples()) return;
  const int64_t hi = std::min(lo + n, sampler.num_samples());
  const SampleSlice next = slice_of(sampler, indices, lo, hi);
  batcher.prefetch(next.indices, next.positions, c.data.augment, static_cast<uint64_t>(c.train.seed), epoch);
}


// A debug.*_at_step trigger (1-based; 0 = off) firing at step `at`.
bool fires(int64_t trigger, int64_t at) { return trigger > 0 && trigger == at; }

std::string fmt_eta(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  return buf;
}

}  // namespace

// Every rank must train the same config: the collective order, the sampler's shards and the
// replicas all depend on it. A per-node difference (an edited copy of the file, another --set)
// would otherwise hang at the end of the shorter run or silently train different replicas.
// Paths that are only local may differ: data.root (a node's local disk), log.dir and
// checkpoint.dir (written by rank 0 only).
void check_same_config(Communicator& comm, const Config& c) {
  std::string mine;
  for (const auto& [key, value] : config_values(c)) {
    if (key != "data.root" && key != "log.dir" && key != "checkpoint.dir") mine += key + "=" + value + "\n";
  }
  const std::string root = broadcast_string(comm, mine);
  std::string error;
  if (mine != root) {
    std::istringstream a(mine), b(root);
    for (std::string x, y; std::getline(a, x) && std::getline(b, y);) {
      if (x == y) continue;
      error = "its config differs from rank 0's: " + x + " here, " + y.substr(y.find('=') + 1) + " on rank 0; give "
              "every rank the same config (only data.root, log.dir and checkpoint.dir may differ)";
      break;
    }
  }
  throw_if_any_rank_failed(comm, error, /*input_error=*/true);
}

Trainer::Trainer(Config config, Communicator& comm, const c10::Device& device, ImageDataset train,
                 ImageDataset test)
    : s_(std::make_unique<State>(std::move(config), comm, device, std::move(train), std::move(test))) {
  const Config& c = s_->config;
  check_same_config(comm, c);  // The first collective.
  s_->precision = precision_from_name(c.train.precision);
  if (const std::string w = precision_warning(s_->precision, device.type()); !w.empty() && s_->is_root()) {
    spdlog::warn("{}", w);
  }
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  s_->model = make_model(c.model.name, s_->train_data.channels(), s_->train_data.num_classes,
                         conv_algorithm_from_name(c.train.conv_algorithm));
  s_->model->to(device);
  if (c.train.channels_last) {
    // NHWC weights (and, in the step, NHWC batches): oneDNN/cuDNN then skip layout reorders.
    torch::NoGradGuard no_grad;
    for (auto& p : s_->model->parameters()) {
      if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  std::vector<at::Tensor> params = s_->model->parameters();
  for (const auto& b : s_->model->buffers()) {
    if (b.is_floating_point()) s_->buffers.push_back(b);
  }
  // The model check comes first so that a mismatch is an error, not a broadcast of wrong sizes.
  SyncOptions sync;
  sync.cap_bytes = static_cast<int64_t>(c.dist.bucket_mb * (1 << 20));
  sync.first_cap_bytes = static_cast<int64_t>(c.dist.first_bucket_mb * (1 << 20));
  sync.overlap = c.dist.overlap;
  if (c.dist.grad_dtype == "bf16") sync.comm_dtype = at::kBFloat16;
  if (c.dist.grad_dtype == "fp16") sync.comm_dtype = at::kHalf;
  s_->sync = std::make_unique<GradientSynchronizer>(comm, params, sync);
  std::vector<at::Tensor> state = params;
  for (const auto& b : s_->model->buffers()) state.push_back(b);
  broadcast_tensors(comm, state, 0);

  s_->optimizer = std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(c.train.lr)
                  .momentum(c.train.momentum)
                  .nesterov(c.train.nesterov)
                  .weight_decay(c.train.weight_decay));
  const InputPipeline pipeline = input_pipeline_from_name(c.data.pipeline);
  if (c.data.cutout > 0 && !c.data.augment) {
    throw InputError("data.cutout=" + std::to_string(c.data.cutout) + " is part of augmentation; set data.augment=true "
                     "or data.cutout=0");
  }
  s_->train_batches = std::make_unique<Batcher>(s_->train_data, device, pipeline, c.data.cutout);
  s_->test_batches = std::make_unique<Batcher>(s_->test_data, device, pipeline);

  // The metrics and event files are opened by run(), once it knows that it will train.
  root_prepares(comm, [&] {
    ensure_writable_dir(c.log.dir, "log.dir");
    ensure_writable_dir(c.checkpoint.dir, "checkpoint.dir");
  });
}

Trainer::~Trainer() = default;

Classifier& Trainer::model() { return *s_->model; }

int64_t Trainer::buckets_started_in_backward() const { return s_->sync->buckets_started_in_backward(); }

EvalResult Trainer::evaluate() {
  State& s = *s_;
  // Every rank evaluates with rank 0's BatchNorm statistics, and the replicas leave the
  // evaluation identical in buffers as well as parameters.
  if (!s.buffers.empty()) broadcast_tensors(s.comm, s.buffers, 0);
  return evaluate_model(*s.model, *s.test_batches, s.comm, s.config.eval.batch_size, s.device);
}

EvalResult evaluate_model(Classifier& model, const Batcher& test, Communicator& comm,
                          int64_t batch_size, const c10::Device& device) {
  torch::NoGradGuard no_grad;
  model.eval();
  // Contiguous exact shards: rank r evaluates [r*N/W, (r+1)*N/W); no image is counted twice.
  const int64_t n = test.size();
  const int64_t world = comm.size(), rank = comm.rank();
  const int64_t begin = n * rank / world, end = n * (rank + 1) / world;
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
  at::Tensor correct = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  for (int64_t i = begin; i < end; i += batch_size) {
    const int64_t len = std::min(batch_size, end - i);
    Batch b = test.range(i, len);
    at::Tensor logits = model.forward(b.images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, b.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(at::kDouble);
    correct += logits.argmax(1).eq(b.labels).sum();
  }
  at::Tensor totals = at::stack({loss_sum.cpu(), correct.cpu().to(at::kDouble),
                                 at::scalar_tensor(static_cast<double>(end - begin), at::kDouble)});
  comm.all_reduce(totals, ReduceOp::kSum);
  auto t = totals.accessor<double, 1>();
  EvalResult r;
  r.count = static_cast<int64_t>(t[2]);
  r.loss = t[0] / std::max<double>(1, t[2]);
  r.accuracy = t[1] / std::max<double>(1, t[2]);
  model.train();
  return r;
}

namespace {


double params_checksum(torch::nn::Module& m) {
  at::Tensor total = at::zeros({}, at::kDouble);
  for (const auto& p : m.parameters()) total += p.detach().to(at::kCPU, at::kDouble).abs().sum();
  return total.item<double>();
}

}  // namespace

// Resolves config.resume to a checkpoint path on every rank ("" = fresh start). For "auto", rank 0
// picks the newest valid checkpoint and every rank loads that one.
static std::string resolve_resume(Communicator& comm, const Config& c) {
  if (c.resume != "auto") return c.resume;
  std::string chosen;
  if (comm.rank() == 0) {
    std::vector<std::string> skipped;
    chosen = find_latest_checkpoint(c.checkpoint.dir, &skipped).value_or("");
    for (const auto& why : skipped) spdlog::warn("resume=auto: skipping {}", why);
    if (chosen.empty()) spdlog::info("resume=auto: no valid checkpoint in {}, starting fresh", c.checkpoint.dir);
  }
  return broadcast_string(comm, chosen);
}

TrainSummary Trainer::run() {
  State& s = *s_;
  const Config& c = s.config;
  const auto start = Clock::now();
  const int world = s.comm.size(), rank = s.comm.rank();
  DistributedSampler sampler(s.train_data.size(), rank, world, c.data.shuffle, static_cast<uint64_t>(c.train.seed));
  const int64_t batch = c.train.batch_size;
  const int64_t micro = c.train.accumulate_steps;
  const int64_t per_step = batch * micro;              // Images per rank per optimizer step.
  const int64_t global_per_step = per_step * world;    // Sample positions per optimizer step.
  const int64_t steps_per_epoch = (sampler.num_samples() + per_step - 1) / per_step;
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

  // See Note [loss scaling and bad steps].
  LossScaler scaler(s.precision == Precision::kFp16, c.train.loss_scale, c.train.loss_scale_growth_steps);

  // ---- every rank: resume (all read the same checkpoint) ----
  int64_t step = 0, epoch = 0, first_batch = 0;
  CheckpointProgress resumed;  // Before anything, for a fresh run.
  const std::string resume = resolve_resume(s.comm, c);
  if (!resume.empty()) {
    // Agreed: a checkpoint that one node cannot read (not on a shared file system) is one error.
    const CheckpointState st =
        agreed(s.comm, [&] { return load_checkpoint(resume, *s.model, *s.optimizer, c.model.name); });
    epoch = st.epoch;
    first_batch = st.epoch_samples / global_per_step;
    step = st.world_size == world ? st.step : epoch * steps_per_epoch + first_batch;
    resumed = {st.epoch, st.epoch_samples, st.step};
    if (st.loss_scale > 0) scaler.restore(st.loss_scale, st.loss_scale_good_steps);
    if (s.is_root()) {
      spdlog::info("resumed from {} at epoch {} step {} ({} samples of the epoch done)", resume, epoch + 1, step,
                   st.epoch_samples);
      if (st.world_size != world) {
        spdlog::warn("the checkpoint was written by {} ranks and this run has {}: the data order (a function of "
                     "seed, epoch and global position) continues unchanged; step numbers and the LR schedule "
                     "follow the new {} steps per epoch", st.world_size, world, steps_per_epoch);
      }
      if (st.epoch_samples % global_per_step != 0) {
        spdlog::warn("the checkpoint stopped {} samples into the epoch, not a multiple of this run's {} images per "
                     "step: resuming at sample {}", st.epoch_samples, global_per_step, first_batch * global_per_step);
      }
    }
  }

  // ---- every rank: agree that this run overwrites no other run's checkpoints (rank 0 looks) ----
  // Saves are named by epoch and step, and pruning keeps the newest: a fresh run, or a resume
  // from an earlier checkpoint, into a folder holding later checkpoints would overwrite and prune
  // those (another run, or the branch that was abandoned). Only then are the metrics and event
  // files opened, so that a refused run leaves no empty ones behind.
  root_prepares(s.comm, [&] {
    if (auto later = newest_checkpoint_after(c.checkpoint.dir, resumed)) {
      throw InputError("checkpoint.dir '" + c.checkpoint.dir + "' holds " + *later + ", " +
                       (resume.empty() ? "written by another run" : "later than the resumed checkpoint") +
                       ": this run would overwrite or prune it. Continue that run with resume=auto, or give this "
                       "run an empty checkpoint.dir (or move those checkpoints away)");
    }
    if (!s.metrics) s.metrics = std::make_unique<MetricsWriter>(files::join(c.log.dir, "metrics.jsonl"));
    if (c.log.tensorboard && !s.tensorboard) s.tensorboard = std::make_unique<TensorBoardWriter>(c.log.dir);
  });

  if (s.is_root()) {
    spdlog::info("training {} ({} parameters) on {} | {} ranks x batch {} x {} micro-batches = {} images/step | {} steps/epoch, {} steps",
                 c.model.name, parameter_count(*s.model), s.train_data.name, world, batch, micro, global_per_step,
                 steps_per_epoch, total_steps);
    spdlog::info("gradient buckets: {} (first {} params), backend {}, overlap {}, gradients in {}",
                 s.sync->plan().size(), s.sync->plan().front().params.size(), s.comm.backend(),
                 c.dist.overlap ? "on" : "off", c.dist.grad_dtype);
    if (s.tensorboard) spdlog::info("TensorBoard events: {} (tensorboard --logdir {})", s.tensorboard->path(), c.log.dir);
  }
  // Rank 0 on a terminal: one progress line per epoch, redrawn in place, instead of step lines.
  ProgressLine progress(s.is_root() && progress_line_wanted(c.log.progress, stdout_is_interactive()));
  double last_loss = std::numeric_limits<double>::quiet_NaN();  // Global mean at the last log step.

  TrainSummary summary;
  bool have_first = false;
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(s.device));
  int64_t loss_count = 0, interval_steps = 0, bad_in_row = 0;
  auto interval_start = Clock::now();
  const auto ce_options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.train.label_smoothing);

  // Rank 0 only: writes a checkpoint. Contains no collective.
  auto save = [&](int64_t ep, int64_t epoch_samples, double accuracy) {
    CheckpointState st;
    st.epoch = ep;
    st.step = step;
    st.epoch_samples = epoch_samples;
    st.world_size = world;
    st.seed = c.train.seed;
    st.test_accuracy = accuracy;
    st.model_name = c.model.name;
    st.config_yaml = c.to_yaml();
    if (scaler.enabled()) st.loss_scale = scaler.scale(), st.loss_scale_good_steps = scaler.good_steps();
    CheckpointFiles f = save_checkpoint(c.checkpoint.dir, *s.model, *s.optimizer, st);
    prune_checkpoints(c.checkpoint.dir, c.checkpoint.keep);
    spdlog::info("saved checkpoint {}", f.payload);
  };

  // Where the run ended, for the summary (a stop by signal returns early).
  auto close_summary = [&] {
    summary.steps = step;
    summary.epochs = epoch;
    summary.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    summary.loss_scale = scaler.enabled() ? scaler.scale() : 0.0;
  };

  const int64_t run_first_step = step;
  if (s.is_root() && (epoch >= c.train.epochs || step >= total_steps)) {
    spdlog::info("nothing to train: the resumed run has done its {} steps ({} epochs); raise train.epochs (or "
                 "train.max_steps) to train on", step, epoch);
  }
  for (; epoch < c.train.epochs && step < total_steps; ++epoch) {
    sampler.set_epoch(epoch);
    const std::vector<int64_t> indices = sampler.indices();
    bool cut_short = false;
    int64_t b = first_batch;
    first_batch = 0;
    const auto epoch_start = Clock::now();
    const int64_t epoch_first_step = step;
    for (; b < steps_per_epoch; ++b) {
      if (step >= total_steps) {
        cut_short = true;
        break;
      }
      if (fires(c.debug.hang_at_step, step + 1) && rank == c.debug.hang_rank) {
        spdlog::warn("debug.hang_at_step: rank {} stops participating at step {}", rank, step + 1);
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      // ---- every rank: one training step ----
      // Host-clock phase timing of steady-state steps (summary.timing); costs a few clock reads.
      const bool timed = step - run_first_step >= kTimingWarmupSteps;
      const auto step_start = Clock::now();
      auto mark = step_start;
      auto lap = [&](double& slot) {
        const auto now = Clock::now();
        if (timed) slot += std::chrono::duration<double>(now - mark).count();
        mark = now;
      };
      StepTimes& tm = summary.timing;
      const double lr = lr_at(schedule, step);
      for (auto& group : s.optimizer->param_groups()) {
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      }
      const int64_t lo = b * per_step, hi = std::min(lo + per_step, sampler.num_samples());
      if (c.dist.broadcast_buffers && !s.buffers.empty()) broadcast_tensors(s.comm, s.buffers, 0);
      s.optimizer->zero_grad();
      at::Tensor step_loss;
      const double step_scale = scaler.scale();  // 1 unless fp16.
      lap(tm.setup_s);
      // k micro-batches: gradients accumulate locally; the last backward is all-reduced. Each
      // micro-batch loss is weighted by its share of the step's images, so the accumulated
      // gradient is that of the mean loss over all of them.
      for (int64_t m = 0; m < micro; ++m) {
        const int64_t mlo = std::min(lo + m * batch, hi), mhi = std::min(mlo + batch, hi);
        const bool last = m == micro - 1;
        if (mhi == mlo && !last) continue;
        const SampleSlice slice = slice_of(sampler, indices, mlo, mhi);
        if (last) s.sync->prepare();
        if (mhi > mlo) {
          Batch data = s.train_batches->get(slice.indices, slice.positions, c.data.augment, static_cast<uint64_t>(c.train.seed), epoch);
          // Host pipeline: start cutting the next micro-batch while this one trains.
          if (step + 1 < total_steps || !last) prefetch_next(*s.train_batches, sampler, indices, mhi, batch, c, epoch);
          lap(tm.data_s);
          at::Tensor logits;
          {
            AutocastGuard autocast(s.precision, s.device.type());
            logits = s.model->forward(c.train.channels_last ? data.images.contiguous(at::MemoryFormat::ChannelsLast)
                                                            : data.images);
          }
          // The loss (log-softmax and its reduction) runs in fp32 whatever the precision.
          at::Tensor loss = torch::nn::functional::cross_entropy(logits.to(at::kFloat), data.labels, ce_options);
          if (fires(c.debug.nan_at_step, step + 1) && rank == c.debug.nan_rank) loss = loss * std::nan("");
          lap(tm.forward_s);
          const double weight = static_cast<double>(mhi - mlo) / static_cast<double>(hi - lo);
          const double backward_factor = weight * step_scale;
          (backward_factor == 1.0 ? loss : loss * backward_factor).backward();
          lap(tm.backward_s);
          at::Tensor weighted = loss.detach() * weight;
          step_loss = step_loss.defined() ? step_loss + weighted : weighted;
        }
      }
      s.sync->finalize();
      lap(tm.comm_wait_s);

      // ---- every rank: one tiny all-reduce agrees on stopping and on non-finite values ----
      // The averaged gradients are identical on all ranks, so a NaN anywhere is seen everywhere;
      // the flag also covers a non-finite loss on one rank.
      at::Tensor loss_total = step_loss.defined() ? step_loss.to(at::kDouble) : at::zeros({}, at::kDouble);
      at::Tensor grad_total = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(s.device));
      for (const auto& p : s.model->parameters()) {
        if (p.grad().defined()) grad_total = grad_total + p.grad().sum().to(at::kDouble);
      }
      const bool stop_here = stop_signal_received() != 0 || (fires(c.debug.stop_at_step, step + 1) && rank == 0);
      at::Tensor flags = at::stack({at::scalar_tensor(stop_here ? 1.0 : 0.0, at::kDouble),
                                    at::isfinite(loss_total.cpu()).logical_not().to(at::kDouble),
                                    at::isfinite(grad_total.cpu()).logical_not().to(at::kDouble)});
      s.comm.all_reduce(flags, ReduceOp::kSum);
      auto agreed = flags.accessor<double, 1>();
      const bool stop_agreed = agreed[0] > 0;
      const bool loss_nonfinite = agreed[1] > 0, grad_nonfinite = agreed[2] > 0;
      // fp16: an overflow of the scaled gradients (with a finite loss) lowers the scale and skips
      // the step without counting as a bad step, on every rank alike.
      const bool scale_overflow = scaler.enabled() && grad_nonfinite && !loss_nonfinite && !scaler.at_minimum();
      if (scaler.enabled()) scaler.update(grad_nonfinite);
      const bool nonfinite = (loss_nonfinite || grad_nonfinite) && !scale_overflow;
      lap(tm.check_s);
      if (scale_overflow) {
        ++summary.overflow_steps;
        if (s.is_root()) spdlog::info("step {}: fp16 gradient overflow; step skipped, loss scale now {}", step + 1, scaler.scale());
      } else if (nonfinite) {
        ++summary.bad_steps;
        ++bad_in_row;
        if (s.is_root()) {
          spdlog::warn("step {}: non-finite loss or gradient (agreed by all ranks); step skipped ({} in a row, {} in "
                       "all, limit train.max_bad_steps={})", step + 1, bad_in_row, summary.bad_steps, c.train.max_bad_steps);
        }
        if (bad_in_row > c.train.max_bad_steps) {
          throw Error("training diverged: " + std::to_string(bad_in_row) + " steps in a row with non-finite loss or "
                      "gradients (last at step " + std::to_string(step + 1) + "); lower train.lr, check the data, or "
                      "resume from an earlier checkpoint", /*same_on_all_ranks=*/true);
        }
      } else {
        if (scaler.enabled()) {
          // Unscale with the scale the backward used (update() above may already have grown it).
          c10::NoGradGuard no_grad;
          for (const auto& p : s.model->parameters()) {
            if (p.grad().defined()) p.grad().mul_(1.0 / step_scale);
          }
        }
        s.optimizer->step();
        lap(tm.optimizer_s);
        bad_in_row = 0;
        loss_sum += step_loss;
        ++loss_count;
      }
      ++step;
      ++interval_steps;
      if (fires(c.debug.drift_at_step, step) && rank == c.debug.drift_rank) {
        c10::NoGradGuard no_grad;
        s.model->parameters()[0].add_(1e-3);
      }

      // ---- every rank: log-step loss all-reduce; then rank 0 logs ----
      if (step % c.log.every_steps == 0 || step == total_steps) {
        at::Tensor mean = (loss_sum / static_cast<double>(std::max<int64_t>(1, loss_count))).cpu().reshape({1});
        s.comm.all_reduce(mean, ReduceOp::kAvg);
        const double loss_value = mean.item<float>();
        const double secs = std::chrono::duration<double>(Clock::now() - interval_start).count();
        const double ms_per_step = 1000.0 * secs / std::max<int64_t>(1, interval_steps);
        const double ips = static_cast<double>(interval_steps * global_per_step) / std::max(secs, 1e-9);
        // Every step of the interval skipped (fp16 overflow or non-finite; agreed, so the same on
        // all ranks): there is no loss to report, and 0 would be a lie.
        const bool applied = loss_count > 0;
        if (applied) {
          if (!have_first) summary.first_loss = loss_value, have_first = true;
          summary.last_loss = loss_value;
          last_loss = loss_value;
        }
        // ---- rank 0 only: log line (or progress line), metrics, TensorBoard ----
        if (s.is_root() && !applied && !progress.enabled()) {
          spdlog::info("epoch {} step {}/{} | no step applied since the last log line (all {} skipped) | lr {:.4g}",
                       epoch + 1, step, total_steps, interval_steps, lr);
        }
        if (s.is_root() && applied) {
          const double eta = ms_per_step * static_cast<double>(total_steps - step) / 1000.0;
          if (!progress.enabled()) {
            spdlog::info("epoch {} step {}/{} | loss {:.4f} | lr {:.4g} | {:.1f} ms/step | {:.0f} img/s | eta {}",
                         epoch + 1, step, total_steps, loss_value, lr, ms_per_step, ips, fmt_eta(eta));
          }
          s.metrics->train(step, epoch + 1, loss_value, lr, ips);
          if (s.tensorboard) {
            s.tensorboard->add_scalar("train_loss", loss_value, step);
            s.tensorboard->add_scalar("lr", lr, step);
            s.tensorboard->add_scalar("images_per_s", ips, step);
          }
        }
        loss_sum.zero_();
        loss_count = 0;
        interval_steps = 0;
        interval_start = Clock::now();
      }
      if (timed) {
        tm.total_s += std::chrono::duration<double>(Clock::now() - step_start).count();
        ++tm.steps;
      }

      // ---- rank 0 only: redraw the progress line (no collective; rank 0's own timing) ----
      if (progress.enabled()) {
        const double secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        const int64_t done = std::max<int64_t>(1, step - epoch_first_step);
        const double ips = static_cast<double>(done * global_per_step) / std::max(secs, 1e-9);
        const double eta = secs / static_cast<double>(done) * static_cast<double>(total_steps - step);
        progress.update(format_progress(epoch + 1, step, total_steps, last_loss, ips, eta),
                        /*force=*/b + 1 == steps_per_epoch || step == total_steps);
      }

      // ---- every rank: optional replica check (one all-gather) ----
      if (c.dist.check_params_every > 0 && step % c.dist.check_params_every == 0) {
        at::Tensor all = s.comm.all_gather(at::tensor({params_checksum(*s.model)}, at::kDouble));
        for (int r = 1; r < world; ++r) {
          if (all[r][0].item<double>() != all[0][0].item<double>()) {
            throw Error("replica check at step " + std::to_string(step) + ": the parameters of rank " + std::to_string(r) +
                        " drifted from rank 0's (checksum " + std::to_string(all[r][0].item<double>()) + " vs " +
                        std::to_string(all[0][0].item<double>()) + "); replicas must stay identical: check for "
                        "nondeterministic kernels or a faulty device on that rank", /*same_on_all_ranks=*/true);
          }
        }
      }

      // ---- rank 0 only: mid-epoch checkpoint (no collectives) ----
      const bool epoch_end = b + 1 == steps_per_epoch;
      if (stop_agreed) {
        progress.finish();
        if (s.is_root()) {
          spdlog::warn("stop requested by signal: all ranks stop after step {}; saving a checkpoint", step);
          epoch_end ? save(epoch + 1, 0, -1) : save(epoch, (b + 1) * global_per_step, -1);
        }
        summary.stopped_by_signal = true;
        close_summary();
        return summary;
      }
      if (c.checkpoint.every_steps > 0 && step % c.checkpoint.every_steps == 0 && !epoch_end && s.is_root()) {
        save(epoch, (b + 1) * global_per_step, -1);
      }
    }
    progress.finish();
    // ---- every rank: evaluation (buffer broadcast + one all-reduce) ----
    summary.eval = evaluate();
    // ---- rank 0 only: report and checkpoint (no collectives) ----
    if (s.is_root()) {
      spdlog::info("epoch {} eval | test loss {:.4f} | test accuracy {:.4f} ({} images)", epoch + 1,
                   summary.eval.loss, summary.eval.accuracy, summary.eval.count);
      s.metrics->eval(epoch + 1, step, summary.eval.loss, summary.eval.accuracy);
      // The seed's tags and step axis (its total_test_step: the epoch number, from 1); the loss
      // is the mean per test image (the seed summed per-batch means, which depends on the batch).
      if (s.tensorboard) {
        s.tensorboard->add_scalar("total_test_loss", summary.eval.loss, epoch + 1);
        s.tensorboard->add_scalar("total_test_accuracy", summary.eval.accuracy, epoch + 1);
      }
      cut_short ? save(epoch, b * global_per_step, summary.eval.accuracy) : save(epoch + 1, 0, summary.eval.accuracy);
    }
    if (cut_short) break;
  }
  close_summary();
  if (s.is_root()) {
    std::string skipped;
    if (summary.bad_steps) skipped += ", " + std::to_string(summary.bad_steps) + " skipped as non-finite";
    if (scaler.enabled()) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), ", %lld skipped for fp16 overflow, loss scale %g",
                    static_cast<long long>(summary.overflow_steps), scaler.scale());
      skipped += buf;
    }
    spdlog::info("total wall time {:.2f} s ({} steps{})", summary.wall_s, step, skipped);
  }
  return summary;
}

}  // namespace ddp
