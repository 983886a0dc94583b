#include "ddp/train/checkpoint.h"

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "checkpoint_manifest.h"
#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/core/hash.h"

// Saving and restoring one checkpoint: the payload (LibTorch archive), then its manifest
// (checkpoint_manifest.cpp); checkpoint_folder.cpp holds the folder policy.
namespace ddp {
using checkpoint_files::ends_with;
using checkpoint_files::kFormatVersion;
using checkpoint_files::manifest_of;
using checkpoint_files::payload_of;
using checkpoint_files::read_manifest;
using checkpoint_files::stem;
using checkpoint_files::write_manifest;

namespace {
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
  files::commit_file(f.payload, "checkpoint", "earlier checkpoints are untouched",
                     "check free space and checkpoint.dir", [&](const std::string& tmp) {
                       torch::serialize::OutputArchive archive, model_archive, optim_archive;
                       model.save(model_archive);
                       optimizer.save(optim_archive);
                       archive.write("model", model_archive);
                       archive.write("optimizer", optim_archive);
                       archive.write("format_version", c10::IValue(kFormatVersion));
                       archive.write("model_name", c10::IValue(state.model_name));
                       // Through our own writer: LibTorch's file writer throws from a destructor when the
                       // disk fills up, which terminates the process. This one reports every byte as written
                       // (so the zip writer finishes normally), remembers the first error, and we raise it
                       // afterwards.
                       FILE* out = std::fopen(tmp.c_str(), "wb");
                       if (!out) throw std::runtime_error(std::strerror(errno));
                       int write_error = 0;
                       archive.save_to([&](const void* data, size_t n) -> size_t {
                         if (write_error == 0 && n > 0 && std::fwrite(data, 1, n, out) != n)
                           write_error = errno ? errno : EIO;
                         return n;
                       });
                       if (std::fflush(out) != 0 && write_error == 0) write_error = errno;
                       if (write_error == 0 && ::fsync(fileno(out)) != 0) write_error = errno;
                       if (std::fclose(out) != 0 && write_error == 0) write_error = errno;
                       if (write_error != 0) throw std::runtime_error(std::strerror(write_error));
                     });
  const int64_t bytes = files::file_size(f.payload);
  const uint64_t checksum = file_checksum(f.payload);
  write_manifest(f.manifest, state, name + ".pt", bytes, checksum);
  files::fsync_directory(dir);
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
  int64_t bytes = 0;
  std::string checksum;
  CheckpointState s = read_manifest(manifest, &bytes, &checksum);
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

}  // namespace ddp
