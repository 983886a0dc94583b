#include "ddp/checkpoint.h"

#include <fcntl.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>

#include "ddp/check.h"
#include "ddp/files.h"

namespace ddp {
namespace {
constexpr int64_t kFormatVersion = 1;

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t epoch, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "epoch_%04lld_step_%08lld.pt", static_cast<long long>(epoch),
                static_cast<long long>(step));
  return files::join(dir, name);
}

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, const CheckpointState& state) {
  const std::string tmp = path + ".tmp";
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive, optim_archive;
    model.save(model_archive);
    optimizer.save(optim_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optim_archive);
    archive.write("format_version", c10::IValue(kFormatVersion));
    archive.write("epoch", c10::IValue(state.epoch));
    archive.write("step", c10::IValue(state.step));
    archive.write("model_name", c10::IValue(state.model_name));
    archive.write("config", c10::IValue(state.config_yaml));
    archive.save_to(tmp);
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    throw Error("saving checkpoint " + path + " failed (the previous checkpoints are untouched): " +
                std::string(e.what()).substr(0, 300) + "; check free space and checkpoint.dir");
  }
  fsync_path(tmp, false);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("renaming " + tmp + " to " + path + " failed: " + why);
  }
  fsync_path(files::parent(path), true);
}

namespace {

// Opens a ddptrain checkpoint and reads its small fields; InputError when it is not one.
CheckpointState open_checkpoint(const std::string& path, torch::serialize::InputArchive& archive) {
  if (!files::is_regular_file(path)) {
    throw InputError("checkpoint " + path + " does not exist; check the path (resume= or --checkpoint)");
  }
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    throw InputError("checkpoint " + path + " is truncated or not a ddptrain checkpoint (" +
                     std::string(e.what()).substr(0, 200) + "); use another checkpoint");
  }
  CheckpointState state;
  c10::IValue v;
  if (!archive.try_read("format_version", v)) {
    throw InputError("checkpoint " + path + " is not a ddptrain checkpoint (no format_version)");
  }
  archive.read("model_name", v);
  state.model_name = v.toStringRef();
  archive.read("epoch", v);
  state.epoch = v.toInt();
  archive.read("step", v);
  state.step = v.toInt();
  archive.read("config", v);
  state.config_yaml = v.toStringRef();
  return state;
}

void check_model_name(const std::string& path, const CheckpointState& state, const std::string& expected_model) {
  if (state.model_name != expected_model) {
    throw InputError("checkpoint " + path + " holds model '" + state.model_name +
                     "' but the config asks for '" + expected_model +
                     "'; set model.name=" + state.model_name + " or use a matching checkpoint");
  }
}

}  // namespace

CheckpointState read_checkpoint_info(const std::string& path) {
  torch::serialize::InputArchive archive;
  return open_checkpoint(path, archive);
}

CheckpointState load_checkpoint_model(const std::string& path, torch::nn::Module& model,
                                      const std::string& expected_model) {
  torch::serialize::InputArchive archive;
  CheckpointState state = open_checkpoint(path, archive);
  check_model_name(path, state, expected_model);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model.load(model_archive);
  } catch (const std::exception& e) {
    throw InputError("checkpoint " + path + " does not fit this model: " + std::string(e.what()).substr(0, 300));
  }
  return state;
}

CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer,
                                const std::string& expected_model) {
  torch::serialize::InputArchive archive;
  CheckpointState state = open_checkpoint(path, archive);
  check_model_name(path, state, expected_model);
  try {
    torch::serialize::InputArchive model_archive, optim_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    model.load(model_archive);
    optimizer.load(optim_archive);
  } catch (const std::exception& e) {
    throw InputError("checkpoint " + path + " does not fit this model/optimizer: " +
                     std::string(e.what()).substr(0, 300));
  }
  return state;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& name : files::list_directory(dir)) {
    if (name.rfind("epoch_", 0) == 0 && name.size() > 3 && name.compare(name.size() - 3, 3, ".pt") == 0) {
      out.push_back(files::join(dir, name));
    }
  }
  return out;
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  auto files = list_checkpoints(dir);
  for (size_t i = 0; i + keep < files.size(); ++i) std::remove(files[i].c_str());
}

}  // namespace ddp
