#include "ddp/train/resume.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace ddp {

RunGeometry plan_run(const Config& c, int64_t samples_per_rank, int world) {
  RunGeometry g;
  g.batch = c.train.batch_size;
  g.micro = c.train.accumulate_steps;
  g.per_step = g.batch * g.micro;
  g.global_per_step = g.per_step * world;
  g.steps_per_epoch = (samples_per_rank + g.per_step - 1) / g.per_step;
  g.total_steps = c.train.epochs * g.steps_per_epoch;
  if (c.train.max_steps > 0) g.total_steps = std::min(g.total_steps, c.train.max_steps);
  return g;
}

LrSchedule make_lr_schedule(const Config& c, const RunGeometry& g) {
  LrSchedule s;
  s.kind = c.train.lr_schedule;
  s.base_lr = c.train.lr;
  s.min_lr = c.train.min_lr;
  s.warmup_steps =
      static_cast<int64_t>(std::llround(c.train.warmup_epochs * static_cast<double>(g.steps_per_epoch)));
  s.step_steps =
      std::max<int64_t>(1, std::llround(c.train.lr_step_epochs * static_cast<double>(g.steps_per_epoch)));
  s.gamma = c.train.lr_gamma;
  s.total_steps = g.total_steps;
  return s;
}

namespace {

// config.resume as a checkpoint path on every rank ("" = fresh start).
std::string resolve_resume(Communicator& comm, const Config& c) {
  if (c.resume != "auto") return c.resume;
  std::string chosen;
  if (comm.rank() == 0) {
    std::vector<std::string> skipped;
    chosen = find_latest_checkpoint(c.checkpoint.dir, &skipped).value_or("");
    for (const auto& why : skipped) spdlog::warn("resume=auto: skipping {}", why);
    if (chosen.empty())
      spdlog::info("resume=auto: no valid checkpoint in {}, starting fresh", c.checkpoint.dir);
  }
  return root_value(comm, chosen);
}

}  // namespace

ResumePoint resume_run(Communicator& comm, const Config& c, torch::nn::Module& model,
                       torch::optim::Optimizer& optimizer, LossScaler& scaler, const RunGeometry& g) {
  ResumePoint at;
  at.checkpoint = resolve_resume(comm, c);
  if (at.checkpoint.empty()) return at;
  const CheckpointState st =
      agreed(comm, [&] { return load_checkpoint(at.checkpoint, model, optimizer, to_string(c.model.name)); });
  const int world = comm.size();
  at.epoch = st.epoch;
  at.first_batch = st.epoch_samples / g.global_per_step;
  at.step = st.world_size == world ? st.step : at.epoch * g.steps_per_epoch + at.first_batch;  // Note above.
  at.progress = {st.epoch, st.epoch_samples, st.step};
  if (st.loss_scale > 0) scaler.restore(st.loss_scale, st.loss_scale_good_steps);
  if (comm.rank() != 0) return at;
  spdlog::info("resumed from {} at epoch {} step {} ({} samples of the epoch done)", at.checkpoint,
               at.epoch + 1, at.step, st.epoch_samples);
  if (st.world_size != world) {
    spdlog::warn(
        "the checkpoint was written by {} ranks and this run has {}: the data order (a function of seed, "
        "epoch and global position) continues unchanged; step numbers and the LR schedule follow the new "
        "{} steps per epoch",
        st.world_size, world, g.steps_per_epoch);
  }
  if (st.epoch_samples % g.global_per_step != 0) {
    spdlog::warn(
        "the checkpoint stopped {} samples into the epoch, not a multiple of this run's {} images per step: "
        "resuming at sample {}",
        st.epoch_samples, g.global_per_step, at.first_batch * g.global_per_step);
  }
  return at;
}

}  // namespace ddp
