#include "checkpoint_manifest.h"

#include <torch/version.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/core/version.h"

namespace ddp::checkpoint_files {
namespace {

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

}  // namespace

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

void write_manifest(const std::string& path, const CheckpointState& state, const std::string& payload_name,
                    int64_t bytes, uint64_t checksum) {
  files::commit_file(
      path, "checkpoint manifest", "earlier checkpoints are untouched", "check free space and checkpoint.dir",
      [&](const std::string& tmp) {
        std::ofstream out(tmp, std::ios::trunc);
        out << "{\n  \"format_version\": " << kFormatVersion << ",\n  \"step\": " << state.step
            << ",\n  \"epoch\": " << state.epoch << ",\n  \"epoch_samples\": " << state.epoch_samples
            << ",\n  \"world_size\": " << state.world_size << ",\n  \"seed\": " << state.seed
            << ",\n  \"test_accuracy\": " << (state.test_accuracy >= 0 ? state.test_accuracy : -1.0)
            << ",\n  \"loss_scale\": " << std::setprecision(17) << state.loss_scale << std::setprecision(6)
            << ",\n  \"loss_scale_good_steps\": " << state.loss_scale_good_steps
            << ",\n  \"model\": " << json_string(state.model_name)
            << ",\n  \"payload\": " << json_string(payload_name) << ",\n  \"payload_bytes\": " << bytes
            << ",\n  \"payload_fnv1a64\": \"" << std::hex << checksum << std::dec << "\""
            << ",\n  \"ddptrain\": " << json_string(DDPTRAIN_VERSION " (git " DDPTRAIN_GIT_REVISION ")")
            << ",\n  \"libtorch\": " << json_string(TORCH_VERSION)
            << ",\n  \"config\": " << json_string(state.config_yaml) << "\n}\n";
        out.flush();
        if (!out) throw std::runtime_error(std::strerror(errno));
      });
}

CheckpointState read_manifest(const std::string& manifest, int64_t* payload_bytes,
                              std::string* payload_checksum) {
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
  *payload_bytes = bytes;
  *payload_checksum = checksum;
  return s;
}

}  // namespace ddp::checkpoint_files
