// Checkpoints: model parameters and buffers, optimizer state, progress and the config.
//
// A checkpoint is written to "<path>.tmp", flushed to disk and renamed over <path>, so a crash
// or a full disk never leaves a half-written file under a checkpoint's name and never damages
// the previous checkpoint. Loading checks that the file is a ddptrain checkpoint of the same
// model and names the file and the fix when it is not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace ddp {

struct CheckpointState {
  int64_t epoch = 0;  // Epochs completed.
  int64_t step = 0;   // Optimizer steps completed.
  std::string model_name;
  std::string config_yaml;
};

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, const CheckpointState& state);

// Restores model and optimizer in place; throws InputError for a missing, corrupt or foreign file.
CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer,
                                const std::string& expected_model);

// Reads a checkpoint's progress, model name and config without loading tensors (InputError for a
// missing, corrupt or foreign file).
CheckpointState read_checkpoint_info(const std::string& path);

// Restores only the model's parameters and buffers (evaluation, export); throws like
// load_checkpoint.
CheckpointState load_checkpoint_model(const std::string& path, torch::nn::Module& model,
                                      const std::string& expected_model);

// "<dir>/epoch_0003_step_00002346.pt"
std::string checkpoint_path(const std::string& dir, int64_t epoch, int64_t step);

// Deletes all but the newest `keep` checkpoints in `dir` (by name order).
void prune_checkpoints(const std::string& dir, int64_t keep);

// Lists checkpoint files in `dir`, oldest first.
std::vector<std::string> list_checkpoints(const std::string& dir);

}  // namespace ddp
