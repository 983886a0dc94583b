#include "ddp/train/checkpoint.h"

#include <fcntl.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/version.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/core/hash.h"
#include "ddp/core/version.h"

namespace ddp {
namespace {

constexpr int64_t kFormatVersion = 2;

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string stem(int64_t epoch, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "epoch_%04lld_step_%08lld", static_cast<long long>(epoch),
                static_cast<long long>(step));
  return name;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string manifest_of(const std::string& path) {
  if (ends_with(path, ".json")) return path;
  if (ends_with(path, ".pt")) return path.substr(0, path.size() - 3) + ".json";
  return path + ".json";
}

std::string payload_of(const std::string& path) {
  if (ends_with(path, ".pt")) return path;
  if (ends_with(path, ".json")) return path.substr(0, path.size() - 5) + ".pt";
  return path;
}

std::string json_string(const std::string& s) {
  std::ostringstream o;
  o << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o << "\\\"";
        break;
      case '\\':
        o << "\\\\";
        break;
      case '\n':
        o << "\\n";
        break;
      case '\t':
        o << "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          o << buf;
        } else {
          o << c;
        }
    }
  }
  o << '"';
  return o.str();
}

// Writes `write(tmp)` to path.tmp, fsyncs it and renames it over `path`.
template <typename Write>
void commit_file(const std::string& path, const std::string& what, Write write) {
  const std::string tmp = path + ".tmp";
  try {
    write(tmp);
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    throw Error("saving " + what + " " + path + " failed (earlier checkpoints are untouched): " +
                std::string(e.what()).substr(0, 300) + "; check free space and checkpoint.dir");
  }
  fsync_path(tmp, false);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("renaming " + tmp + " to " + path + " failed: " + why);
  }
}

// Older manifests hashed from this truncated offset basis; they still verify.
constexpr uint64_t kLegacyOffsetBasis = 1469598103934665603ull;
}  // namespace

uint64_t file_checksum(const std::string& path) { return fnv1a64_of_file(path); }

CheckpointFiles save_checkpoint(const std::string& dir, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer, const CheckpointState& state) {
  CheckpointFiles f;
  const std::string name = stem(state.epoch, state.step);
  f.payload = files::join(dir, name + ".pt");
  f.manifest = files::join(dir, name + ".json");
  // A manifest left from an earlier run under the same name must not vouch for the new payload.
  std::remove(f.manifest.c_str());
  commit_file(f.payload, "checkpoint", [&](const std::string& tmp) {
    torch::serialize::OutputArchive archive, model_archive, optim_archive;
    model.save(model_archive);
    optimizer.save(optim_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optim_archive);
    archive.write("format_version", c10::IValue(kFormatVersion));
    archive.write("model_name", c10::IValue(state.model_name));
    // Through our own writer: LibTorch's file writer throws from a destructor when the disk
    // fills up, which terminates the process. This one reports every byte as written (so the
    // zip writer finishes normally), remembers the first error, and we raise it afterwards.
    FILE* out = std::fopen(tmp.c_str(), "wb");
    if (!out) throw std::runtime_error(std::strerror(errno));
    int write_error = 0;
    archive.save_to([&](const void* data, size_t n) -> size_t {
      if (write_error == 0 && n > 0 && std::fwrite(data, 1, n, out) != n) write_error = errno ? errno : EIO;
      return n;
    });
    if (std::fflush(out) != 0 && write_error == 0) write_error = errno;
    if (write_error == 0 && ::fsync(fileno(out)) != 0) write_error = errno;
    if (std::fclose(out) != 0 && write_error == 0) write_error = errno;
    if (write_error != 0) throw std::runtime_error(std::strerror(write_error));
  });
  const int64_t bytes = files::file_size(f.payload);
  const uint64_t checksum = file_checksum(f.payload);
  commit_file(f.manifest, "checkpoint manifest", [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\n  \"format_version\": " << kFormatVersion << ",\n  \"step\": " << state.step
        << ",\n  \"epoch\": " << state.epoch << ",\n  \"epoch_samples\": " << state.epoch_samples
        << ",\n  \"world_size\": " << state.world_size << ",\n  \"seed\": " << state.seed
        << ",\n  \"test_accuracy\": " << (state.test_accuracy >= 0 ? state.test_accuracy : -1.0)
        << ",\n  \"loss_scale\": " << std::setprecision(17) << state.loss_scale << std::setprecision(6)
        << ",\n  \"loss_scale_good_steps\": " << state.loss_scale_good_steps
        << ",\n  \"model\": " << json_string(state.model_name)
        << ",\n  \"payload\": " << json_string(name + ".pt") << ",\n  \"payload_bytes\": " << bytes
        << ",\n  \"payload_fnv1a64\": \"" << std::hex << checksum << std::dec << "\""
        << ",\n  \"ddptrain\": " << json_string(DDPTRAIN_VERSION " (git " DDPTRAIN_GIT_REVISION ")")
        << ",\n  \"libtorch\": " << json_string(TORCH_VERSION)
        << ",\n  \"config\": " << json_string(state.config_yaml) << "\n}\n";
    out.flush();
    if (!out) throw std::runtime_error(std::strerror(errno));
  });
  fsync_path(dir, true);
  return f;
}

CheckpointState verify_checkpoint(const std::string& path) {
  if (files::exists(path) && !files::is_regular_file(path)) {
    throw InputError("checkpoint " + path +
                     " is a directory; name a checkpoint file in it (its .pt or .json; to "
                     "resume training from the newest there: checkpoint.dir=" +
                     path + " and resume=auto)");
  }
  if (!ends_with(path, ".pt") && !ends_with(path, ".json")) {
    throw InputError("checkpoint " + path + ": name the checkpoint's .pt or .json file");
  }
  const std::string manifest = manifest_of(path), payload = payload_of(path);
  if (!files::exists(payload) && !files::exists(manifest)) {
    throw InputError("checkpoint " + path + " does not exist; check the resume= path (or use resume=auto)");
  }
  if (!files::is_regular_file(manifest)) {
    throw InputError("checkpoint " + payload + " has no manifest (" + manifest +
                     "): it was not completely written; resume from another checkpoint");
  }
  YAML::Node m;
  try {
    m = YAML::LoadFile(manifest);
  } catch (const std::exception& e) {
    throw InputError("checkpoint manifest " + manifest + " is corrupt (" + e.what() +
                     "); resume from another checkpoint");
  }
  CheckpointState s;
  std::string checksum;
  int64_t bytes = 0;
  try {
    if (m["format_version"].as<int64_t>() != kFormatVersion) {
      throw InputError("checkpoint " + manifest + " has format " + m["format_version"].as<std::string>() +
                       ", this ddptrain reads format " + std::to_string(kFormatVersion));
    }
    s.step = m["step"].as<int64_t>();
    s.epoch = m["epoch"].as<int64_t>();
    s.epoch_samples = m["epoch_samples"].as<int64_t>();
    s.world_size = m["world_size"].as<int64_t>();
    s.seed = m["seed"].as<int64_t>();
    s.test_accuracy = m["test_accuracy"].as<double>();
    s.model_name = m["model"].as<std::string>();
    s.config_yaml = m["config"].as<std::string>();
    if (m["loss_scale"]) s.loss_scale = m["loss_scale"].as<double>();
    if (m["loss_scale_good_steps"]) s.loss_scale_good_steps = m["loss_scale_good_steps"].as<int64_t>();
    bytes = m["payload_bytes"].as<int64_t>();
    checksum = m["payload_fnv1a64"].as<std::string>();
  } catch (const YAML::Exception& e) {
    throw InputError("checkpoint manifest " + manifest + " is missing fields (" + e.what() +
                     "); resume from another checkpoint");
  }
  const char* bad = s.step < 0                    ? "step"
                    : s.epoch < 0                 ? "epoch"
                    : s.epoch_samples < 0         ? "epoch_samples"
                    : s.world_size < 1            ? "world_size"
                    : bytes < 0                   ? "payload_bytes"
                    : !(s.loss_scale >= 0)        ? "loss_scale"
                    : s.loss_scale_good_steps < 0 ? "loss_scale_good_steps"
                                                  : nullptr;
  if (bad) {
    throw InputError("checkpoint manifest " + manifest + " is corrupt: its " + bad +
                     " is out of range; resume from "
                     "another checkpoint");
  }
  const int64_t actual = files::file_size(payload);
  if (actual != bytes) {
    throw InputError("checkpoint " + payload + " is truncated or missing: " + std::to_string(actual) +
                     " bytes where its manifest records " + std::to_string(bytes) +
                     "; resume from another checkpoint");
  }
  std::ostringstream hex, legacy;
  hex << std::hex << file_checksum(payload);
  if (hex.str() != checksum) legacy << std::hex << fnv1a64_of_file(payload, kLegacyOffsetBasis);
  if (hex.str() != checksum && legacy.str() != checksum) {
    throw InputError("checkpoint " + payload + " is corrupt: checksum " + hex.str() +
                     " does not match its manifest (" + checksum + "); resume from another checkpoint");
  }
  return s;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  // Only names this code writes (epoch_EEEE_step_SSSSSSSS.json); other files are not ours.
  struct Found {
    CheckpointProgress progress;
    std::string payload;
  };
  std::vector<Found> found;
  for (const std::string& name : files::list_directory(dir)) {
    long long epoch = -1, step = -1;
    int end = 0;
    if (std::sscanf(name.c_str(), "epoch_%lld_step_%lld.json%n", &epoch, &step, &end) != 2 ||
        end != static_cast<int>(name.size()) || epoch < 0 || step < 0 ||
        stem(epoch, step) + ".json" != name) {
      continue;
    }
    // Order by progress through the data, (epoch, samples of it done): step numbers restart
    // their count when a run resumes with another world size, so a 4-rank continuation of a
    // 2-rank run has lower steps than the checkpoint it came from.
    CheckpointProgress progress{epoch, 0, step};
    try {
      const YAML::Node m = YAML::LoadFile(files::join(dir, name));
      progress.epoch = m["epoch"].as<int64_t>();
      progress.epoch_samples = m["epoch_samples"].as<int64_t>();
    } catch (const std::exception&) {  // Unreadable: ordered by its name; verify() rejects it later.
    }
    found.push_back({progress, payload_of(files::join(dir, name))});
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Found& a, const Found& b) { return a.progress < b.progress; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.payload));
  return out;
}

std::optional<std::string> newest_checkpoint_after(const std::string& dir,
                                                   const CheckpointProgress& progress) {
  const auto all = list_checkpoints(dir);  // Oldest first.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      const CheckpointState st = verify_checkpoint(*it);
      if (CheckpointProgress{st.epoch, st.epoch_samples, st.step} > progress) return *it;
      break;                  // The rest are older still: nothing past `progress`, and no need to hash them.
    } catch (const Error&) {  // Corrupt, half-written or unreadable: nothing to protect.
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_latest_checkpoint(const std::string& dir, std::vector<std::string>* skipped) {
  auto all = list_checkpoints(dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verify_checkpoint(*it);
      return *it;
    } catch (const InputError& e) {
      if (skipped) skipped->push_back(e.what());
    }
  }
  // Payloads without any manifest (a save interrupted before its manifest) are reported too.
  for (const std::string& name : files::list_directory(dir)) {
    const std::string p = files::join(dir, name);
    if (name.rfind("epoch_", 0) == 0 && ends_with(name, ".pt") && !files::exists(manifest_of(p)) && skipped) {
      skipped->push_back("checkpoint " + p + " has no manifest (incompletely written); ignored");
    }
  }
  return std::nullopt;
}

namespace {

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < sizes.size(); ++i) o << (i ? ", " : "") << sizes[i];
  return o.str() + "]";
}

void check_shape(const std::string& payload, const std::pair<std::string, std::vector<int64_t>>& want,
                 const at::Tensor& got) {
  if (got.sizes() == at::IntArrayRef(want.second)) return;
  throw InputError(
      "checkpoint " + payload + " holds '" + want.first + "' of shape " + shape_text(got.sizes()) +
      " where this model has " + shape_text(want.second) +
      ": it was trained on other data (number of "
      "classes or image channels); use a checkpoint trained on this data.dataset, or start fresh");
}

// Verifies `path`, checks it holds `expected_model`, and restores the model (and the optimizer
// when given) from its payload.
CheckpointState restore(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                        const std::string& expected_model) {
  CheckpointState state = verify_checkpoint(path);
  const std::string payload = payload_of(path);
  if (state.model_name != expected_model) {
    throw InputError("checkpoint " + payload + " holds model '" + state.model_name +
                     "' but the config asks for '" + expected_model +
                     "'; set model.name=" + state.model_name + " or use a matching checkpoint");
  }
  try {
    torch::serialize::InputArchive archive, model_archive, optim_archive;
    // Every tensor onto the model's device, whatever device wrote it: without this a checkpoint
    // saved by rank 0 on cuda:0 would move every rank's parameters to cuda:0 (and could not be
    // read at all on a machine without CUDA).
    auto tensors = model.parameters();
    for (const auto& b : model.buffers()) tensors.push_back(b);
    archive.load_from(payload, tensors.empty() ? c10::Device(c10::kCPU) : tensors.front().device());
    archive.read("model", model_archive);
    // Module::load replaces tensors whatever their shape: a checkpoint of the same model trained
    // on other data (classes, channels) would load and fail later, deep inside a forward pass.
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& p : model.named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
    for (const auto& b : model.named_buffers()) shapes.emplace_back(b.key(), b.value().sizes().vec());
    model.load(model_archive);
    size_t i = 0;
    for (const auto& p : model.named_parameters()) check_shape(payload, shapes[i++], p.value());
    for (const auto& b : model.named_buffers()) check_shape(payload, shapes[i++], b.value());
    if (optimizer) {
      archive.read("optimizer", optim_archive);
      optimizer->load(optim_archive);
    }
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError("checkpoint " + payload + " does not fit this model" + (optimizer ? "/optimizer" : "") +
                     ": " + std::string(e.what()).substr(0, 300));
  }
  return state;
}

}  // namespace

CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer, const std::string& expected_model) {
  return restore(path, model, &optimizer, expected_model);
}

CheckpointState read_checkpoint_info(const std::string& path) { return verify_checkpoint(path); }

CheckpointState load_checkpoint_model(const std::string& path, torch::nn::Module& model,
                                      const std::string& expected_model) {
  return restore(path, model, nullptr, expected_model);
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  auto all = list_checkpoints(dir);
  if (static_cast<int64_t>(all.size()) <= keep) return;
  std::string best;
  double best_acc = -1;
  for (const auto& p : all) {
    try {
      YAML::Node m = YAML::LoadFile(manifest_of(p));
      const double acc = m["test_accuracy"].as<double>();
      if (acc > best_acc) best_acc = acc, best = p;
    } catch (const std::exception&) {
    }
  }
  for (size_t i = 0; i + keep < all.size(); ++i) {
    if (all[i] == best) continue;
    std::remove(manifest_of(all[i]).c_str());  // The manifest goes first: never one without payload.
    std::remove(all[i].c_str());
  }
}

}  // namespace ddp
