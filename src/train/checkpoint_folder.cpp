#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>

#include "checkpoint_manifest.h"
#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/train/checkpoint.h"

// The folder policy of checkpoints: which files are checkpoints, in what order, which one a run
// resumes from or would overwrite, and which ones pruning keeps.
namespace ddp {
using checkpoint_files::ends_with;
using checkpoint_files::manifest_of;
using checkpoint_files::payload_of;
using checkpoint_files::stem;

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
  out.reserve(found.size());
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
