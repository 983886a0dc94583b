// The run configuration: YAML files in configs/ plus `--set key=value` overrides.
//
// Keys are dotted paths ("train.lr"); a YAML file nests them as maps. Every key has a type, a
// default and a valid range or set of values. An unknown key, a value of the wrong type or out of
// range is an InputError naming the key, where it came from and what is allowed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddp {

struct Config {
  struct Model {
    std::string name = "seed_cnn";
  } model;
  struct Data {
    std::string dataset = "cifar10";
    std::string root = "data";
    bool shuffle = true;
    bool augment = false;
    int64_t limit_train = 0;  // Use only the first N training images (0 = all).
    int64_t limit_test = 0;   // Use only the first N test images (0 = all).
    int64_t synthetic_train = 5000;  // Sizes of the "synthetic" dataset.
    int64_t synthetic_test = 1000;
    bool download = false;  // Fetch the dataset into root when it is not there (cifar10, cifar100).
    std::string url;        // Archive URL; empty = the dataset's official one.
    std::string md5;        // Its MD5; empty = the official archive's.
    std::string pipeline = "device";  // "device": whole set on the device; "host": CPU + prefetch.
  } data;
  struct Train {
    int64_t epochs = 10;
    int64_t max_steps = 0;  // 0 = no cap.
    int64_t batch_size = 64;  // Per rank.
    double lr = 0.01;
    double momentum = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
    std::string lr_schedule = "constant";
    double warmup_epochs = 0.0;
    double lr_step_epochs = 30.0;
    double lr_gamma = 0.1;
    double min_lr = 0.0;
    double label_smoothing = 0.0;
    int64_t seed = 0;
    int64_t threads = 0;  // Intra-op threads per rank; 0 = cores / local ranks.
  } train;
  struct Dist {
    std::string backend = "auto";
    std::string device = "auto";
    double bucket_mb = 25.0;
    double first_bucket_mb = 1.0;
    double timeout_s = 600.0;
    bool broadcast_buffers = true;
  } dist;
  struct Log {
    std::string dir = "logs";
    int64_t every_steps = 100;
  } log;
  struct Checkpoint {
    std::string dir = "checkpoints";
    int64_t keep = 3;
  } checkpoint;
  struct Eval {
    int64_t batch_size = 500;
  } eval;
  std::string resume;  // Path of a checkpoint to continue from; empty = start fresh.

  // The resolved configuration as YAML, every key included.
  std::string to_yaml() const;
};

// Parses YAML text (`source` names it in errors) and applies "key=value" overrides in order.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// Reads the file and parses it; a missing or unreadable file is an InputError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Every known key, in file order.
std::vector<std::string> config_keys();

}  // namespace ddp
