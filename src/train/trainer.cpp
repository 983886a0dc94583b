#include "ddp/train/trainer.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <utility>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/core/signals.h"
#include "ddp/data/batcher.h"
#include "ddp/dist/distributed_sampler.h"
#include "ddp/dist/gradient_synchronizer.h"
#include "ddp/observe/logging.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/fault_injection.h"
#include "ddp/train/lr_schedule.h"
#include "ddp/train/mixed_precision.h"
#include "ddp/train/reporter.h"
#include "ddp/train/resume.h"
#include "ddp/train/step_agreement.h"

namespace ddp {
using Clock = std::chrono::steady_clock;

struct Trainer::State {
  Config config;
  Communicator& comm;
  c10::Device device;
  ImageDataset train_data;
  ImageDataset test_data;
  FaultInjector faults;
  Reporter reporter;
  std::shared_ptr<Classifier> model;
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::SGD> optimizer;
  std::unique_ptr<GradientSynchronizer> sync;
  std::unique_ptr<Batcher> train_batches;
  std::unique_ptr<Batcher> test_batches;
  std::vector<at::Tensor> buffers;  // Floating-point buffers (BatchNorm statistics), broadcast from rank 0.
  bool is_root() const { return comm.rank() == 0; }

  State(Config c, Communicator& cm, const c10::Device& d, ImageDataset tr, ImageDataset te, FaultInjection f)
      : config(std::move(c)),
        comm(cm),
        device(d),
        train_data(std::move(tr)),
        test_data(std::move(te)),
        faults(f, cm.rank()),
        reporter(cm.rank() == 0) {}
};

namespace {

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
  error = root_value(comm, error);
  if (!error.empty()) throw InputError(error);
}

void ensure_writable_dir(const std::string& dir, const std::string& key) {
  const std::string why = files::make_directories(dir);
  if (!why.empty())
    throw InputError("cannot create " + key + " '" + dir + "' (" + why + "); set " + key +
                     " to a writable folder");
  const std::string probe = files::join(dir, ".ddptrain_write_test");
  FILE* f = std::fopen(probe.c_str(), "w");
  if (!f)
    throw InputError(key + " '" + dir + "' is not writable: " + std::strerror(errno) + "; set " + key +
                     " to a writable folder");
  std::fclose(f);
  std::remove(probe.c_str());
}

// Saves are named by epoch and step, and pruning keeps the newest: a fresh run, or a resume from
// an earlier checkpoint, into a folder holding later checkpoints would overwrite and prune those
// (another run, or the branch that was abandoned). Rank 0 only.
void refuse_to_overwrite(const Config& c, const ResumePoint& at) {
  if (auto later = newest_checkpoint_after(c.checkpoint.dir, at.progress)) {
    throw InputError(
        "checkpoint.dir '" + c.checkpoint.dir + "' holds " + *later + ", " +
        (at.checkpoint.empty() ? "written by another run" : "later than the resumed checkpoint") +
        ": this run would overwrite or prune it. Continue that run with resume=auto, or give this "
        "run an empty checkpoint.dir (or move those checkpoints away)");
  }
}

// This rank's samples [lo, hi) of the epoch: dataset indices and the global positions that key
// their augmentation.
struct SampleSlice {
  std::vector<int64_t> indices, positions;
};
SampleSlice slice_of(const DistributedSampler& sampler, const std::vector<int64_t>& indices, int64_t lo,
                     int64_t hi) {
  SampleSlice s{std::vector<int64_t>(indices.begin() + lo, indices.begin() + hi),
                std::vector<int64_t>(hi - lo)};
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

// Host-clock phase timing of the steady-state steps (TrainSummary::timing): a few clock reads.
class PhaseTimer {
 public:
  explicit PhaseTimer(StepTimes* times) : times_(times), start_(Clock::now()), mark_(start_) {}
  // Adds the time since the last lap to `slot` (nothing when the step is not timed).
  void lap(double StepTimes::*slot) {
    const auto now = Clock::now();
    if (times_) times_->*slot += std::chrono::duration<double>(now - mark_).count();
    mark_ = now;
  }
  void finish() {
    if (!times_) return;
    times_->total_s += std::chrono::duration<double>(Clock::now() - start_).count();
    ++times_->steps;
  }

 private:
  StepTimes* times_;
  Clock::time_point start_, mark_;
};

// The training loss between two log steps; its global mean costs one all-reduce on a log step.
class LossInterval {
 public:
  explicit LossInterval(const c10::Device& device)
      : sum_(at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device))), start_(Clock::now()) {}
  void step_done(const at::Tensor* applied_loss) {
    if (applied_loss) sum_ += *applied_loss, ++applied_;
    ++steps_;
  }
  // Every rank: the interval's report (one all-reduce), then a new interval begins.
  IntervalReport close(Communicator& comm, int64_t epoch, int64_t step, const RunGeometry& g, double lr) {
    at::Tensor mean = (sum_ / static_cast<double>(std::max<int64_t>(1, applied_))).cpu().reshape({1});
    comm.all_reduce(mean, ReduceOp::kAvg);
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    IntervalReport r;
    r.epoch = epoch;
    r.step = step;
    r.total_steps = g.total_steps;
    r.steps = steps_;
    r.applied = applied_ > 0;
    r.loss = mean.item<float>();
    r.lr = lr;
    r.ms_per_step = 1000.0 * secs / static_cast<double>(std::max<int64_t>(1, steps_));
    r.images_per_s = static_cast<double>(steps_ * g.global_per_step) / std::max(secs, 1e-9);
    sum_.zero_();
    applied_ = steps_ = 0;
    start_ = Clock::now();
    return r;
  }

 private:
  at::Tensor sum_;
  int64_t applied_ = 0, steps_ = 0;
  Clock::time_point start_;
};

double params_checksum(torch::nn::Module& m) {
  at::Tensor total = at::zeros({}, at::kDouble);
  for (const auto& p : m.parameters()) total += p.detach().to(at::kCPU, at::kDouble).abs().sum();
  return total.item<double>();
}

// Every rank: one all-gather of a parameter checksum; throws (the same on all ranks) when a
// replica drifted from rank 0's.
void check_replicas(Communicator& comm, torch::nn::Module& model, int64_t step) {
  at::Tensor all = comm.all_gather(at::tensor({params_checksum(model)}, at::kDouble));
  for (int r = 1; r < comm.size(); ++r) {
    if (all[r][0].item<double>() == all[0][0].item<double>()) continue;
    throw Error("replica check at step " + std::to_string(step) + ": the parameters of rank " +
                    std::to_string(r) + " drifted from rank 0's (checksum " +
                    std::to_string(all[r][0].item<double>()) + " vs " +
                    std::to_string(all[0][0].item<double>()) +
                    "); replicas must stay identical: check for "
                    "nondeterministic kernels or a faulty device on that rank",
                /*same_on_all_ranks=*/true);
  }
}

// Every rank: one optimizer step's forward and backward passes over its micro-batches (the last
// backward starts the bucket all-reduces, finalize() waits for them). Returns this rank's loss of
// the step (undefined when the rank had no samples).
at::Tensor forward_backward(Trainer::State& s, const DistributedSampler& sampler,
                            const std::vector<int64_t>& indices, const RunGeometry& g, int64_t batch_in_epoch,
                            int64_t step, int64_t epoch, double lr, double loss_scale, PhaseTimer& timer) {
  const Config& c = s.config;
  for (auto& group : s.optimizer->param_groups())
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  const int64_t lo = batch_in_epoch * g.per_step, hi = std::min(lo + g.per_step, sampler.num_samples());
  if (c.dist.broadcast_buffers && !s.buffers.empty()) broadcast_tensors(s.comm, s.buffers, 0);
  s.optimizer->zero_grad();
  timer.lap(&StepTimes::setup_s);
  const auto ce_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.train.label_smoothing);
  at::Tensor step_loss;
  // k micro-batches: gradients accumulate locally; the last backward is all-reduced. Each
  // micro-batch loss is weighted by its share of the step's images, so the accumulated gradient
  // is that of the mean loss over all of them.
  for (int64_t m = 0; m < g.micro; ++m) {
    const int64_t mlo = std::min(lo + m * g.batch, hi), mhi = std::min(mlo + g.batch, hi);
    const bool last = m == g.micro - 1;
    if (mhi == mlo && !last) continue;
    if (last) s.sync->prepare();
    if (mhi == mlo) continue;
    const SampleSlice slice = slice_of(sampler, indices, mlo, mhi);
    Batch data = s.train_batches->get(slice.indices, slice.positions, c.data.augment,
                                      static_cast<uint64_t>(c.train.seed), epoch);
    // Host pipeline: start cutting the next micro-batch while this one trains.
    if (step + 1 < g.total_steps || !last)
      prefetch_next(*s.train_batches, sampler, indices, mhi, g.batch, c, epoch);
    timer.lap(&StepTimes::data_s);
    at::Tensor logits;
    {
      AutocastGuard autocast(c.train.precision, s.device.type());
      logits = s.model->forward(c.train.channels_last ? data.images.contiguous(at::MemoryFormat::ChannelsLast)
                                                      : data.images);
    }
    // The loss (log-softmax and its reduction) runs in fp32 whatever the precision.
    at::Tensor loss = torch::nn::functional::cross_entropy(logits.to(at::kFloat), data.labels, ce_options);
    loss = s.faults.poison_loss(loss, step + 1);
    timer.lap(&StepTimes::forward_s);
    const double weight = static_cast<double>(mhi - mlo) / static_cast<double>(hi - lo);
    const double backward_factor = weight * loss_scale;
    (backward_factor == 1.0 ? loss : loss * backward_factor).backward();
    timer.lap(&StepTimes::backward_s);
    at::Tensor weighted = loss.detach() * weight;
    step_loss = step_loss.defined() ? step_loss + weighted : weighted;
  }
  s.sync->finalize();
  timer.lap(&StepTimes::comm_wait_s);
  return step_loss;
}

// Every rank: the optimizer step, on gradients unscaled by the scale the backward used (fp16).
void optimizer_step(Trainer::State& s, double loss_scale) {
  if (loss_scale != 1.0) {
    c10::NoGradGuard no_grad;
    for (const auto& p : s.params) {
      if (p.grad().defined()) p.grad().mul_(1.0 / loss_scale);
    }
  }
  s.optimizer->step();
}

// Rank 0 only: writes a checkpoint of the run at `step` and prunes old ones. Contains no collective.
void save_run(Trainer::State& s, int64_t step, int64_t epoch, int64_t epoch_samples, double accuracy,
              const LossScaler& scaler) {
  const Config& c = s.config;
  CheckpointState st;
  st.epoch = epoch;
  st.step = step;
  st.epoch_samples = epoch_samples;
  st.world_size = s.comm.size();
  st.seed = c.train.seed;
  st.test_accuracy = accuracy;
  st.model_name = to_string(c.model.name);
  st.config_yaml = c.to_yaml();
  if (scaler.enabled()) st.loss_scale = scaler.scale(), st.loss_scale_good_steps = scaler.good_steps();
  CheckpointFiles f = save_checkpoint(c.checkpoint.dir, *s.model, *s.optimizer, st);
  prune_checkpoints(c.checkpoint.dir, c.checkpoint.keep);
  s.reporter.checkpoint_saved(f.payload);
}

// Every rank: applies the step as agreed (the optimizer steps on gradients unscaled by
// `backward_scale`) or skips it; rank 0 reports a skip; too many bad steps in a row throw.
void apply_or_skip(Trainer::State& s, const StepVerdict& v, const StepAgreement& agreement, double new_scale,
                   double backward_scale, int64_t step, TrainSummary& summary, PhaseTimer& timer) {
  if (v.outcome == StepOutcome::kSkipOverflow) {
    ++summary.overflow_steps;
    s.reporter.overflow_skipped(step, new_scale);
  } else if (v.outcome == StepOutcome::kSkipBad) {
    s.reporter.bad_step_skipped(step, v.bad_in_row, ++summary.bad_steps, s.config.train.max_bad_steps);
    agreement.throw_if_diverged(v, step);
  } else {
    optimizer_step(s, backward_scale);
    timer.lap(&StepTimes::optimizer_s);
  }
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
  const std::string root = root_value(comm, mine);
  std::string error;
  if (mine != root) {
    std::istringstream a(mine), b(root);
    for (std::string x, y; std::getline(a, x) && std::getline(b, y);) {
      if (x == y) continue;
      error = "its config differs from rank 0's: " + x + " here, " + y.substr(y.find('=') + 1) +
              " on rank 0; give "
              "every rank the same config (only data.root, log.dir and checkpoint.dir may differ)";
      break;
    }
  }
  throw_if_any_rank_failed(comm, error, /*input_error=*/true);
}

Trainer::Trainer(Config config, Communicator& comm, const c10::Device& device, ImageDataset train,
                 ImageDataset test, FaultInjection faults)
    : s_(std::make_unique<State>(std::move(config), comm, device, std::move(train), std::move(test),
                                 faults)) {
  const Config& c = s_->config;
  if (const std::string w = precision_warning(c.train.precision, device.type());
      !w.empty() && s_->is_root()) {
    spdlog::warn("{}", w);
  }
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  s_->model =
      make_model(c.model.name, s_->train_data.channels(), s_->train_data.num_classes, c.train.conv_algorithm);
  s_->model->to(device);
  if (c.train.channels_last) {
    // NHWC weights (and, in the step, NHWC batches): oneDNN/cuDNN then skip layout reorders.
    torch::NoGradGuard no_grad;
    for (auto& p : s_->model->parameters()) {
      if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  const std::vector<at::Tensor>& params = s_->params = s_->model->parameters();
  for (const auto& b : s_->model->buffers()) {
    if (b.is_floating_point()) s_->buffers.push_back(b);
  }
  // The model check comes first so that a mismatch is an error, not a broadcast of wrong sizes.
  SyncOptions sync;
  sync.cap_bytes = static_cast<int64_t>(c.dist.bucket_mb * (1 << 20));
  sync.first_cap_bytes = static_cast<int64_t>(c.dist.first_bucket_mb * (1 << 20));
  sync.overlap = c.dist.overlap;
  if (c.dist.grad_dtype == Precision::kBf16) sync.comm_dtype = at::kBFloat16;
  if (c.dist.grad_dtype == Precision::kFp16) sync.comm_dtype = at::kHalf;
  s_->sync = std::make_unique<GradientSynchronizer>(comm, params, sync);
  std::vector<at::Tensor> state = params;
  for (const auto& b : s_->model->buffers()) state.push_back(b);
  broadcast_tensors(comm, state, 0);

  s_->optimizer = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(c.train.lr)
                                                                  .momentum(c.train.momentum)
                                                                  .nesterov(c.train.nesterov)
                                                                  .weight_decay(c.train.weight_decay));
  if (c.data.cutout > 0 && !c.data.augment) {
    throw InputError("data.cutout=" + std::to_string(c.data.cutout) +
                     " is part of augmentation; set data.augment=true "
                     "or data.cutout=0");
  }
  s_->train_batches = std::make_unique<Batcher>(s_->train_data, device, c.data.pipeline, c.data.cutout);
  s_->test_batches = std::make_unique<Batcher>(s_->test_data, device, c.data.pipeline);

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

EvalResult evaluate_model(Classifier& model, const Batcher& test, Communicator& comm, int64_t batch_size,
                          const c10::Device& device) {
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

TrainSummary Trainer::run() {
  State& s = *s_;
  const Config& c = s.config;
  const auto start = Clock::now();
  DistributedSampler sampler(s.train_data.size(), s.comm.rank(), s.comm.size(), c.data.shuffle,
                             static_cast<uint64_t>(c.train.seed));
  const RunGeometry g = plan_run(c, sampler.num_samples(), s.comm.size());
  const LrSchedule schedule = make_lr_schedule(c, g);
  LossScaler scaler(c.train.precision == Precision::kFp16, c.train.loss_scale,
                    c.train.loss_scale_growth_steps);

  // ---- every rank: resume (all read the same checkpoint) ----
  const ResumePoint at = resume_run(s.comm, c, *s.model, *s.optimizer, scaler, g);
  int64_t step = at.step, epoch = at.epoch, first_batch = at.first_batch;
  // ---- every rank: agree that this run overwrites no other run's checkpoints (rank 0 looks) ----
  // Only then are the metrics and event files opened: a refused run leaves no empty ones behind.
  root_prepares(s.comm, [&] {
    refuse_to_overwrite(c, at);
    s.reporter.open(c.log.dir, c.to_yaml(), c.log.tensorboard,
                    progress_line_wanted(to_string(c.log.progress), stdout_is_interactive()));
  });
  s.reporter.started(to_string(c.model.name), parameter_count(*s.model), s.train_data.name, s.comm.size(),
                     g.batch, g.micro, g.steps_per_epoch, g.total_steps, s.sync->plan().size(),
                     s.sync->plan().front().params.size(), s.comm.backend(), c.dist.overlap,
                     to_string(c.dist.grad_dtype), c.log.dir);

  TrainSummary summary;
  StepAgreement agreement(s.comm, c.train.max_bad_steps);
  LossInterval interval(s.device);
  const int64_t run_first_step = step;
  auto close_summary = [&] {
    summary.steps = step;
    summary.epochs = epoch;
    summary.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    summary.loss_scale = scaler.enabled() ? scaler.scale() : 0.0;
    return summary;
  };
  // Rank 0 only: a checkpoint after `batches` steps of the current epoch (all of it: the next one's start).
  auto save_at = [&](int64_t batches, double accuracy) {
    if (!s.is_root()) return;
    const bool whole = batches == g.steps_per_epoch;
    save_run(s, step, whole ? epoch + 1 : epoch, whole ? 0 : batches * g.global_per_step, accuracy, scaler);
  };
  if (epoch >= c.train.epochs || step >= g.total_steps) s.reporter.nothing_to_train(step, epoch);
  for (; epoch < c.train.epochs && step < g.total_steps; ++epoch) {
    sampler.set_epoch(epoch);
    const std::vector<int64_t> indices = sampler.indices();
    const auto epoch_start = Clock::now();
    const int64_t epoch_first_step = step;
    bool cut_short = false;
    int64_t b = std::exchange(first_batch, 0);
    for (; b < g.steps_per_epoch; ++b) {
      if (step >= g.total_steps) {
        cut_short = true;
        break;
      }
      s.faults.hang_before(step + 1);
      // ---- every rank: one training step (the bucket all-reduces run inside backward) ----
      PhaseTimer timer(step - run_first_step >= kTimingWarmupSteps ? &summary.timing : nullptr);
      const double lr = lr_at(schedule, step), loss_scale = scaler.scale();  // loss_scale: 1 unless fp16.
      const at::Tensor step_loss =
          forward_backward(s, sampler, indices, g, b, step, epoch, lr, loss_scale, timer);
      // ---- every rank: one tiny all-reduce agrees on stopping and on non-finite values ----
      const bool stop_here = stop_signal_received() != 0 || s.faults.stop_requested(step + 1);
      const StepVerdict v = agreement.agree(step_loss, s.params, stop_here, scaler);
      timer.lap(&StepTimes::check_s);
      apply_or_skip(s, v, agreement, scaler.scale(), loss_scale, step + 1, summary, timer);
      interval.step_done(v.outcome == StepOutcome::kApply ? &step_loss : nullptr);
      ++step;
      s.faults.drift_after(*s.model, step);
      // ---- every rank: log-step loss all-reduce; then rank 0 logs ----
      if (step % c.log.every_steps == 0 || step == g.total_steps) {
        const IntervalReport r = interval.close(s.comm, epoch + 1, step, g, lr);
        if (r.applied && summary.first_loss == 0) summary.first_loss = r.loss;
        if (r.applied) summary.last_loss = r.loss;
        s.reporter.interval(r);
      }
      timer.finish();
      // ---- rank 0 only: redraw the progress line (no collective; rank 0's own timing) ----
      s.reporter.progress(epoch + 1, step, g.total_steps, step - epoch_first_step, g.global_per_step,
                          epoch_start,
                          /*force=*/b + 1 == g.steps_per_epoch || step == g.total_steps);
      // ---- every rank: optional replica check (one all-gather) ----
      if (c.dist.check_params_every > 0 && step % c.dist.check_params_every == 0)
        check_replicas(s.comm, *s.model, step);
      // ---- rank 0 only: stop or mid-epoch checkpoint (no collectives) ----
      if (v.stop) {
        s.reporter.stopping(step);
        save_at(b + 1, -1);
        summary.stopped_by_signal = true;
        return close_summary();
      }
      const bool mid_epoch = b + 1 < g.steps_per_epoch;
      if (c.checkpoint.every_steps > 0 && step % c.checkpoint.every_steps == 0 && mid_epoch)
        save_at(b + 1, -1);
    }
    s.reporter.epoch_ended();
    // ---- every rank: evaluation (buffer broadcast + one all-reduce) ----
    summary.eval = evaluate();
    // ---- rank 0 only: report and checkpoint (no collectives) ----
    s.reporter.eval(epoch + 1, step, summary.eval);
    save_at(b, summary.eval.accuracy);
    if (cut_short) break;
  }
  s.reporter.finished(close_summary(), scaler.enabled());
  return summary;
}

}  // namespace ddp
