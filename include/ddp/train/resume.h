// Where a run starts: the run's geometry (images per step, steps per epoch and in all), its LR
// schedule, and the position a checkpoint continues from (every rank loads the same checkpoint).
//
// Note [resume at another world size]: the data order is a function of seed, epoch and global
// sample position, so a checkpoint records how far the epoch got in samples. A run with another
// world size continues at the same sample (rounded down to its own images per step); its step
// numbers and LR schedule follow its own steps per epoch.
#pragma once

#include <cstdint>
#include <string>

#include "ddp/config/config.h"
#include "ddp/dist/communicator.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/lr_schedule.h"
#include "ddp/train/mixed_precision.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace ddp {

struct RunGeometry {
  int64_t batch = 0;            // Images per rank per micro-batch.
  int64_t micro = 1;            // Micro-batches per optimizer step.
  int64_t per_step = 0;         // Images per rank per optimizer step.
  int64_t global_per_step = 0;  // Sample positions per optimizer step, all ranks.
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;  // Of the whole run (train.epochs, capped by train.max_steps).
};

// A pure function of the config, the samples per rank per epoch and the world size.
RunGeometry plan_run(const Config& config, int64_t samples_per_rank, int world);

// The config's LR schedule over the run's steps.
LrSchedule make_lr_schedule(const Config& config, const RunGeometry& geometry);

struct ResumePoint {
  int64_t step = 0;             // Optimizer steps done.
  int64_t epoch = 0;            // Epoch in progress (0-based).
  int64_t first_batch = 0;      // Step of that epoch to start at.
  std::string checkpoint;       // What was loaded; "" for a fresh start.
  CheckpointProgress progress;  // The loaded checkpoint's; before anything for a fresh start.
};

// Every rank: resolves config.resume ("auto": rank 0 picks the newest valid checkpoint in
// checkpoint.dir and every rank loads that one), loads it into `model`, `optimizer` and `scaler`
// (agreed: a checkpoint one node cannot read is one error for the job), and returns where the
// run continues. Rank 0 logs what it resumed and what changed with the world size.
ResumePoint resume_run(Communicator& comm, const Config& config, torch::nn::Module& model,
                       torch::optim::Optimizer& optimizer, LossScaler& scaler, const RunGeometry& geometry);

}  // namespace ddp
