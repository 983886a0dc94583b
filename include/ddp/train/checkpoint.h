// Checkpoints that are never half-used: a payload and a manifest committed after it.
//
//   <dir>/epoch_EEEE_step_SSSSSSSS.pt    model parameters and buffers, optimizer state, progress
//   <dir>/epoch_EEEE_step_SSSSSSSS.json  manifest: step, epoch, position in the epoch, world size,
//                                        seed, model, test accuracy, config, library versions,
//                                        payload size and FNV-1a 64 checksum
// Each file is written to "<name>.tmp", flushed (fsync) and renamed; the manifest comes last.
// A payload without a valid manifest, or whose size or checksum does not match it, is never
// loaded: a crash, a kill or a full disk during a save leaves the previous checkpoints usable.
// Pruning deletes a manifest before its payload for the same reason (Note [atomic commit] in
// core/files.h). The code: checkpoint.cpp saves and restores one checkpoint,
// checkpoint_manifest.cpp writes and reads its manifest, checkpoint_folder.cpp lists, picks
// and prunes the checkpoints of a folder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace ddp {

struct CheckpointState {
  int64_t epoch = 0;          // Epoch in progress (0-based); == epochs completed when epoch_samples is 0.
  int64_t step = 0;           // Optimizer steps completed.
  int64_t epoch_samples = 0;  // Global sample positions of `epoch` already consumed.
  int64_t world_size = 1;
  int64_t seed = 0;
  double test_accuracy = -1;  // Of the evaluation just before the save; -1 when none.
  std::string model_name;
  std::string config_yaml;
  // fp16 dynamic loss scale (see mixed_precision.h) and its count of good steps since the last
  // change; loss_scale 0 when the run does not scale the loss. Optional in manifests (0 when absent).
  double loss_scale = 0;
  int64_t loss_scale_good_steps = 0;
};

struct CheckpointFiles {
  std::string payload;   // .pt
  std::string manifest;  // .json
};

// Writes payload then manifest into `dir`; returns their paths. Throws ddp::Error (naming the
// file and the cause, e.g. no space left) after removing its temporary file.
CheckpointFiles save_checkpoint(const std::string& dir, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer, const CheckpointState& state);

// Checks a checkpoint given by its payload or manifest path: manifest present and parseable,
// payload present with the recorded size and checksum. Returns its state or throws InputError
// saying what is wrong.
CheckpointState verify_checkpoint(const std::string& path);

// The newest (highest step) checkpoint in `dir` that verifies; those skipped on the way are
// described in `skipped`. nullopt when there is none.
std::optional<std::string> find_latest_checkpoint(const std::string& dir, std::vector<std::string>* skipped);

// Verifies, then restores model and optimizer in place. InputError for a missing, truncated,
// corrupt or foreign checkpoint, naming the file and the fix.
CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer, const std::string& expected_model);

// Verifies a checkpoint and returns its progress, model name and config (no tensors loaded).
CheckpointState read_checkpoint_info(const std::string& path);

// Verifies, then restores only the model's parameters and buffers (evaluation, export); throws
// like load_checkpoint.
CheckpointState load_checkpoint_model(const std::string& path, torch::nn::Module& model,
                                      const std::string& expected_model);

// Payload paths of the checkpoints in `dir` that have a manifest, oldest first (by
// CheckpointProgress, read from the manifests; by the name where a manifest does not parse).
std::vector<std::string> list_checkpoints(const std::string& dir);

// How far a run has come through the data: ordered by epoch, then samples of it done (both
// independent of the world size), then step.
struct CheckpointProgress {
  int64_t epoch = -1;
  int64_t epoch_samples = -1;
  int64_t step = -1;
  auto key() const { return std::tie(epoch, epoch_samples, step); }
  bool operator<(const CheckpointProgress& o) const { return key() < o.key(); }
  bool operator>(const CheckpointProgress& o) const { return o < *this; }
};

// The newest checkpoint in `dir` that verifies and is past `progress` (what a run continuing from
// there would overwrite or prune), or nullopt. A fresh run passes the default (before anything).
std::optional<std::string> newest_checkpoint_after(const std::string& dir,
                                                   const CheckpointProgress& progress);

// Keeps the newest `keep` checkpoints plus the one with the best test accuracy.
void prune_checkpoints(const std::string& dir, int64_t keep);

// FNV-1a 64 of a file's bytes; throws when unreadable.
uint64_t file_checksum(const std::string& path);

}  // namespace ddp
