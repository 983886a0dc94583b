// The run configuration: YAML files in configs/ plus `--set key=value` overrides.
//
// Keys are dotted paths ("train.lr"); a YAML file nests them as maps. Every key has a type, a
// default and a valid range or set of values. An unknown key, a value of the wrong type or out of
// range is an InputError naming the key, where it came from and what is allowed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ddp {

// The keys with a fixed set of values are parsed once, here, into these enums; to_string() gives
// the name a config file uses ("cosine", "bf16").
enum class ModelKind { kSeedCnn, kResNet9 };
enum class DatasetKind { kCifar10, kCifar100, kMnist, kFashionMnist, kSynthetic };
enum class InputPipeline { kDevice, kHost };  // Whole set on the device, or CPU + prefetch.
enum class LrScheduleKind { kConstant, kStep, kCosine, kOneCycle };
enum class ConvAlgorithm { kAuto, kDirect };
enum class Precision { kFp32, kBf16, kFp16 };
enum class BackendChoice { kAuto, kMpi, kNccl };
enum class DeviceChoice { kAuto, kCpu, kCuda };
enum class ProgressMode { kAuto, kOn, kOff };

std::string to_string(ModelKind v);
std::string to_string(DatasetKind v);
std::string to_string(InputPipeline v);
std::string to_string(LrScheduleKind v);
std::string to_string(ConvAlgorithm v);
std::string to_string(Precision v);
std::string to_string(BackendChoice v);
std::string to_string(DeviceChoice v);
std::string to_string(ProgressMode v);
// The model a name stands for (as model.name takes it); InputError naming the choices otherwise.
ModelKind model_kind(const std::string& name);

struct Config {
  struct Model {
    ModelKind name = ModelKind::kSeedCnn;
  } model;
  struct Data {
    DatasetKind dataset = DatasetKind::kCifar10;
    std::string root = "data";
    bool shuffle = true;
    bool augment = false;
    int64_t cutout = 0;              // Side of the square cut out of each augmented image (0 = none).
    int64_t limit_train = 0;         // Use only the first N training images (0 = all).
    int64_t limit_test = 0;          // Use only the first N test images (0 = all).
    int64_t synthetic_train = 5000;  // Sizes of the "synthetic" dataset.
    int64_t synthetic_test = 1000;
    bool download = true;  // Fetch the dataset into root when it is not there (cifar10, cifar100).
    std::string url;       // Archive URL; empty = the dataset's official one.
    std::string md5;       // Its MD5; empty = the official archive's.
    InputPipeline pipeline = InputPipeline::kDevice;
  } data;
  struct Train {
    int64_t epochs = 10;
    int64_t max_steps = 0;    // 0 = no cap.
    int64_t batch_size = 64;  // Per rank.
    double lr = 0.01;
    double momentum = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
    LrScheduleKind lr_schedule = LrScheduleKind::kConstant;
    double warmup_epochs = 0.0;
    double lr_step_epochs = 30.0;
    double lr_gamma = 0.1;
    double min_lr = 0.0;
    double label_smoothing = 0.0;
    int64_t seed = 0;
    int64_t threads = 0;           // Intra-op threads per rank; 0 = cores / local ranks.
    int64_t accumulate_steps = 1;  // Micro-batches per optimizer step (one all-reduce each step).
    int64_t max_bad_steps = 10;    // Non-finite steps in a row that are skipped before stopping.
    // NHWC memory format for 4-d weights and input batches. On by default: on CPU (oneDNN) it was
    // 1.46x (seed_cnn) and 1.10x (resnet9) faster than NCHW at fp32 (README "Speed").
    bool channels_last = true;
    // 3x3 convolutions: "auto" runs ResNet-9's in fp32 on the CPU as Winograd F(4x4, 3x3), 1.7x
    // less time than oneDNN's direct convolution here (README "Speed"); "direct" never does.
    ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto;
    Precision precision =
        Precision::kFp32;         // bf16: autocast (CPU or CUDA); fp16: loss scaling, meant for CUDA.
    double loss_scale = 65536.0;  // fp16: the initial dynamic loss scale (torch.amp.GradScaler's).
    int64_t loss_scale_growth_steps = 2000;  // fp16: good steps in a row before the scale doubles.
  } train;
  struct Dist {
    BackendChoice backend = BackendChoice::kAuto;
    DeviceChoice device = DeviceChoice::kAuto;
    double bucket_mb = 25.0;
    double first_bucket_mb = 1.0;
    double timeout_s = 600.0;
    bool broadcast_buffers = true;
    bool overlap = true;                      // All-reduce buckets during backward.
    Precision grad_dtype = Precision::kFp32;  // The dtype gradients travel in.
    int64_t check_params_every = 0;           // Steps between replica checksum comparisons (0 = off).
  } dist;
  struct Log {
    std::string dir = "logs";
    int64_t every_steps = 100;
    bool tensorboard = true;                      // Rank 0 writes <dir>/events.out.tfevents.* too.
    ProgressMode progress = ProgressMode::kAuto;  // auto: an in-place line on a terminal.
  } log;
  struct Checkpoint {
    std::string dir = "checkpoints";
    int64_t keep = 3;
    int64_t every_steps = 0;  // Also save mid-epoch every N steps (0 = only at epoch ends).
  } checkpoint;
  struct Eval {
    int64_t batch_size = 500;
  } eval;
  // Checkpoint to continue from: a path (.pt or .json), "auto" (the newest valid checkpoint in
  // checkpoint.dir, or a fresh start when there is none), or empty (start fresh).
  std::string resume;

  // The resolved configuration as YAML, every key included.
  std::string to_yaml() const;
};

// Test-only fault injection, the `fault.*` keys: settable like any key (`--set fault.nan_at_step=3`)
// but kept out of Config, its resolved YAML, its checks and its reference. The tests use it to
// provoke the failures the trainer must survive. Steps are 1-based; 0 = off.
struct FaultInjection {
  int64_t nan_at_step = 0;  // Rank nan_rank's loss becomes NaN at this step.
  int64_t nan_rank = 0;
  int64_t stop_at_step = 0;  // Rank 0 behaves as if signalled after this step.
  int64_t hang_at_step = 0;  // Rank hang_rank stops participating at this step.
  int64_t hang_rank = 0;
  int64_t drift_at_step = 0;  // Rank drift_rank's parameters are nudged after this step.
  int64_t drift_rank = 0;
  // "fault.nan_at_step=3, fault.nan_rank=1" for the keys that are set; "" when none is.
  std::string describe() const;
};

// Parses YAML text (`source` names it in errors) and applies "key=value" overrides in order.
// `fault.*` keys go to `faults`; where it is null they are an InputError.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {}, FaultInjection* faults = nullptr);
// Reads the file and parses it; a missing or unreadable file is an InputError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                   FaultInjection* faults = nullptr);
// Every known key, in file order.
std::vector<std::string> config_keys();
// Every key with its value as the resolved YAML writes it, in file order.
std::vector<std::pair<std::string, std::string>> config_values(const Config& config);
// "key=value" for every key whose value differs from the default, in file order.
std::vector<std::string> config_changes(const Config& config);
// The reference of every key (key, default, allowed values, meaning) as a Markdown table:
// `ddptrain config-reference` prints it and docs/configuration.md holds it.
std::string config_reference_markdown();

}  // namespace ddp
