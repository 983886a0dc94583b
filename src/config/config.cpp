#include "ddp/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "ddp/core/check.h"
#include "ddp/core/files.h"

namespace ddp {
namespace {

// One configurable key of a `Target` (Config, or FaultInjection for the fault.* keys): how to set
// it from text, how to print it, and what it means (for the reference).
template <typename Target>
struct Field {
  std::string key;
  std::string allowed;  // For error messages: "integer >= 1", "one of: a, b".
  std::function<bool(Target&, const std::string&)> set;  // False: value not allowed.
  std::function<std::string(const Target&)> get;
  std::string doc;
};

bool parse_int(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_double(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || v != v) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& text, bool* out) {
  static const std::map<std::string, bool> kWords = {{"true", true}, {"false", false}, {"yes", true},
                                                     {"no", false},  {"on", true},     {"off", false},
                                                     {"1", true},    {"0", false}};
  auto it = kWords.find(text);
  if (it == kWords.end()) return false;
  *out = it->second;
  return true;
}

std::string format_double(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

template <typename Target, typename Ref>
Field<Target> int_field(std::string key, Ref ref, int64_t lo, int64_t hi, std::string doc) {
  std::string allowed = "an integer >= " + std::to_string(lo);
  if (hi != INT64_MAX) allowed = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return {std::move(key), allowed,
          [ref, lo, hi](Target& c, const std::string& t) {
            int64_t v;
            if (!parse_int(t, &v) || v < lo || v > hi) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Target& c) { return std::to_string(ref(const_cast<Target&>(c))); }, std::move(doc)};
}

template <typename Target, typename Ref>
Field<Target> double_field(std::string key, Ref ref, double lo, double hi, bool lo_open, std::string doc) {
  std::string allowed = std::string("a number in ") + (lo_open ? "(" : "[") + format_double(lo) + ", " +
                        format_double(hi) + "]";
  return {std::move(key), allowed,
          [ref, lo, hi, lo_open](Target& c, const std::string& t) {
            double v;
            if (!parse_double(t, &v) || v > hi || v < lo || (lo_open && v == lo)) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Target& c) { return format_double(ref(const_cast<Target&>(c))); }, std::move(doc)};
}

template <typename Target, typename Ref>
Field<Target> bool_field(std::string key, Ref ref, std::string doc) {
  return {std::move(key), "true or false",
          [ref](Target& c, const std::string& t) {
            bool v;
            if (!parse_bool(t, &v)) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Target& c) { return std::string(ref(const_cast<Target&>(c)) ? "true" : "false"); },
          std::move(doc)};
}

// A free-form string (keys with a fixed set of values are enum_field()s).
template <typename Target, typename Ref>
Field<Target> string_field(std::string key, Ref ref, std::string doc) {
  return {std::move(key), "a string",
          [ref](Target& c, const std::string& t) {
            ref(c) = t;
            return true;
          },
          [ref](const Target& c) { return ref(const_cast<Target&>(c)); }, std::move(doc)};
}

// The names of an enum's values, in the enum's order (see kDatasetNames, ...).
template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, const char*>, N>;

constexpr EnumNames<ModelKind, 2> kModelNames = {
    {{ModelKind::kSeedCnn, "seed_cnn"}, {ModelKind::kResNet9, "resnet9"}}};
constexpr EnumNames<BackendChoice, 3> kBackendNames = {
    {{BackendChoice::kAuto, "auto"}, {BackendChoice::kMpi, "mpi"}, {BackendChoice::kNccl, "nccl"}}};
constexpr EnumNames<DeviceChoice, 3> kDeviceNames = {
    {{DeviceChoice::kAuto, "auto"}, {DeviceChoice::kCpu, "cpu"}, {DeviceChoice::kCuda, "cuda"}}};
constexpr EnumNames<ProgressMode, 3> kProgressNames = {
    {{ProgressMode::kAuto, "auto"}, {ProgressMode::kOn, "on"}, {ProgressMode::kOff, "off"}}};
constexpr EnumNames<DatasetKind, 5> kDatasetNames = {{{DatasetKind::kCifar10, "cifar10"},
                                                      {DatasetKind::kCifar100, "cifar100"},
                                                      {DatasetKind::kMnist, "mnist"},
                                                      {DatasetKind::kFashionMnist, "fashion_mnist"},
                                                      {DatasetKind::kSynthetic, "synthetic"}}};
constexpr EnumNames<InputPipeline, 2> kPipelineNames = {
    {{InputPipeline::kDevice, "device"}, {InputPipeline::kHost, "host"}}};
constexpr EnumNames<LrScheduleKind, 4> kScheduleNames = {{{LrScheduleKind::kConstant, "constant"},
                                                          {LrScheduleKind::kStep, "step"},
                                                          {LrScheduleKind::kCosine, "cosine"},
                                                          {LrScheduleKind::kOneCycle, "onecycle"}}};
constexpr EnumNames<ConvAlgorithm, 2> kConvNames = {
    {{ConvAlgorithm::kAuto, "auto"}, {ConvAlgorithm::kDirect, "direct"}}};
constexpr EnumNames<Precision, 3> kPrecisionNames = {
    {{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}}};

template <typename E, size_t N>
std::string name_in(const EnumNames<E, N>& names, E v) {
  for (const auto& [value, name] : names) {
    if (value == v) return name;
  }
  return "?";
}

// A key whose text is one of `names`, parsed into its enum once.
template <typename Target, typename Ref, typename E, size_t N>
Field<Target> enum_field(std::string key, Ref ref, const EnumNames<E, N>& names, std::string doc) {
  std::string allowed = "one of:";
  for (const auto& entry : names) allowed += std::string(" ") + entry.second;
  return {std::move(key), allowed,
          [ref, &names](Target& c, const std::string& t) {
            for (const auto& [value, name] : names) {
              if (t == name) {
                ref(c) = value;
                return true;
              }
            }
            return false;
          },
          [ref, &names](const Target& c) { return name_in(names, ref(const_cast<Target&>(c))); },
          std::move(doc)};
}

// A member access cannot be parenthesised, as bugprone-macro-parentheses would have it.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define DDP_REF(member) \
  [](Config & c) -> auto& { return c.member; }
#define DDP_FAULT(member) \
  [](FaultInjection & f) -> auto& { return f.member; }
// NOLINTEND(bugprone-macro-parentheses)
constexpr int64_t kNoMax = INT64_MAX;
using C = Config;

// Note [config table]: the one list of keys. Parsing, the resolved YAML, config_changes(), the
// cross-rank config check and the reference in docs/configuration.md (ctest config_reference_doc)
// all read it, so a key, a default or a range cannot drift between them.
const std::vector<Field<Config>>& fields() {
  static const std::vector<Field<Config>> kFields = {
      enum_field<C>(
          "model.name", DDP_REF(model.name), kModelNames,
          "The network: seed_cnn (the seed's small CNN) or resnet9 (the fast CIFAR recipe's ResNet-9)."),
      enum_field<C>("data.dataset", DDP_REF(data.dataset), kDatasetNames,
                    "The training set; synthetic is generated CIFAR-shaped data needing no files."),
      string_field<C>("data.root", DDP_REF(data.root), "Folder holding (or receiving) the dataset's files."),
      bool_field<C>("data.shuffle", DDP_REF(data.shuffle),
                    "Reshuffle the training set every epoch (seeded)."),
      bool_field<C>("data.augment", DDP_REF(data.augment),
                    "Random crop (pad 4) and horizontal flip, a pure function of seed, epoch and sample."),
      int_field<C>("data.cutout", DDP_REF(data.cutout), 0, 1024,
                   "Side of the square cut out of each augmented image (0 = none; needs data.augment)."),
      int_field<C>("data.limit_train", DDP_REF(data.limit_train), 0, kNoMax,
                   "Use only the first N training images (0 = all)."),
      int_field<C>("data.limit_test", DDP_REF(data.limit_test), 0, kNoMax,
                   "Use only the first N test images (0 = all)."),
      int_field<C>("data.synthetic_train", DDP_REF(data.synthetic_train), 1, kNoMax,
                   "Training images of data.dataset=synthetic."),
      int_field<C>("data.synthetic_test", DDP_REF(data.synthetic_test), 1, kNoMax,
                   "Test images of data.dataset=synthetic."),
      bool_field<C>("data.download", DDP_REF(data.download),
                    "Fetch CIFAR-10/100 into data.root when it is not there (rank 0 fetches, checks the MD5, "
                    "extracts; the others wait)."),
      string_field<C>("data.url", DDP_REF(data.url),
                      "Archive URL to fetch; empty = the dataset's official one."),
      string_field<C>("data.md5", DDP_REF(data.md5), "The archive's MD5; empty = the official archive's."),
      enum_field<C>("data.pipeline", DDP_REF(data.pipeline), kPipelineNames,
                    "device: the whole set on the device, batches cut there; host: CPU batches, prefetched."),
      int_field<C>("train.epochs", DDP_REF(train.epochs), 1, 1000000, "Passes over the training set."),
      int_field<C>("train.max_steps", DDP_REF(train.max_steps), 0, kNoMax,
                   "Stop after this many optimizer steps (0 = no cap)."),
      int_field<C>("train.batch_size", DDP_REF(train.batch_size), 1, 1 << 20,
                   "Images per rank per micro-batch; a step takes world x batch x accumulate_steps images."),
      double_field<C>("train.lr", DDP_REF(train.lr), 0.0, 1e3, true, "Base learning rate (SGD)."),
      double_field<C>("train.momentum", DDP_REF(train.momentum), 0.0, 0.9999, false, "SGD momentum."),
      double_field<C>("train.weight_decay", DDP_REF(train.weight_decay), 0.0, 1.0, false,
                      "SGD weight decay (L2)."),
      bool_field<C>("train.nesterov", DDP_REF(train.nesterov),
                    "Nesterov momentum (needs train.momentum > 0)."),
      enum_field<C>("train.lr_schedule", DDP_REF(train.lr_schedule), kScheduleNames,
                    "Learning-rate schedule over the run's steps (see include/ddp/train/lr_schedule.h)."),
      double_field<C>("train.warmup_epochs", DDP_REF(train.warmup_epochs), 0.0, 1e6, false,
                      "Linear warm-up, in epochs (any schedule)."),
      double_field<C>("train.lr_step_epochs", DDP_REF(train.lr_step_epochs), 0.0, 1e6, true,
                      "step schedule: epochs between decays."),
      double_field<C>("train.lr_gamma", DDP_REF(train.lr_gamma), 0.0, 1.0, true,
                      "step schedule: decay factor."),
      double_field<C>("train.min_lr", DDP_REF(train.min_lr), 0.0, 1e3, false,
                      "cosine and onecycle: the learning rate at the last step."),
      double_field<C>("train.label_smoothing", DDP_REF(train.label_smoothing), 0.0, 0.999, false,
                      "Label smoothing of the cross-entropy loss."),
      int_field<C>("train.seed", DDP_REF(train.seed), 0, kNoMax,
                   "Seed of the initial weights, the data order and the augmentation."),
      int_field<C>(
          "train.threads", DDP_REF(train.threads), 0, 1024,
          "Intra-op threads per rank; 0 = the rank's CPUs divided among the local ranks sharing them."),
      int_field<C>("train.accumulate_steps", DDP_REF(train.accumulate_steps), 1, 1 << 16,
                   "Micro-batches per optimizer step (one gradient all-reduce per step)."),
      int_field<C>("train.max_bad_steps", DDP_REF(train.max_bad_steps), 0, kNoMax,
                   "Non-finite steps in a row that are skipped before the run stops as diverged."),
      bool_field<C>("train.channels_last", DDP_REF(train.channels_last),
                    "NHWC memory format for 4-d weights and input batches (faster with oneDNN and cuDNN)."),
      enum_field<C>(
          "train.conv_algorithm", DDP_REF(train.conv_algorithm), kConvNames,
          "auto: ResNet-9's 3x3 convolutions in fp32 on the CPU as Winograd F(4x4,3x3); direct: never."),
      enum_field<C>(
          "train.precision", DDP_REF(train.precision), kPrecisionNames,
          "bf16: autocast (CPU or CUDA); fp16: autocast with dynamic loss scaling, meant for CUDA."),
      double_field<C>("train.loss_scale", DDP_REF(train.loss_scale), 1.0, 1e30, false,
                      "fp16: the initial dynamic loss scale."),
      int_field<C>("train.loss_scale_growth_steps", DDP_REF(train.loss_scale_growth_steps), 1, kNoMax,
                   "fp16: good steps in a row before the loss scale doubles."),
      enum_field<C>("dist.backend", DDP_REF(dist.backend), kBackendNames,
                    "Gradient transport: auto = NCCL on GPUs when built, else MPI."),
      enum_field<C>("dist.device", DDP_REF(dist.device), kDeviceNames,
                    "auto = cuda:<local rank> when CUDA is usable, else the CPU."),
      double_field<C>("dist.bucket_mb", DDP_REF(dist.bucket_mb), 0.001, 4096.0, false,
                      "Gradient bucket size in MiB (one all-reduce per bucket)."),
      double_field<C>("dist.first_bucket_mb", DDP_REF(dist.first_bucket_mb), 0.001, 4096.0, false,
                      "Size of the first bucket (the last layers' gradients), small so it starts early."),
      double_field<C>("dist.timeout_s", DDP_REF(dist.timeout_s), 0.0, 86400.0 * 7, true,
                      "Deadline of every collective; on expiry the job ends naming the collective and rank."),
      bool_field<C>("dist.broadcast_buffers", DDP_REF(dist.broadcast_buffers),
                    "Broadcast rank 0's buffers (BatchNorm statistics) before every step."),
      bool_field<C>("dist.overlap", DDP_REF(dist.overlap), "All-reduce buckets during backward."),
      enum_field<C>("dist.grad_dtype", DDP_REF(dist.grad_dtype), kPrecisionNames,
                    "The dtype gradients travel in; the average is written back in fp32."),
      int_field<C>("dist.check_params_every", DDP_REF(dist.check_params_every), 0, kNoMax,
                   "Steps between replica checksum comparisons (0 = off)."),
      string_field<C>("log.dir", DDP_REF(log.dir),
                      "Rank 0's run folder: metrics.jsonl, TensorBoard events, config.yaml."),
      int_field<C>("log.every_steps", DDP_REF(log.every_steps), 1, kNoMax, "Steps between log lines."),
      bool_field<C>("log.tensorboard", DDP_REF(log.tensorboard),
                    "Rank 0 writes TensorBoard events to log.dir."),
      enum_field<C>("log.progress", DDP_REF(log.progress), kProgressNames,
                    "An in-place progress line instead of step lines: auto = on a terminal."),
      string_field<C>("checkpoint.dir", DDP_REF(checkpoint.dir), "Where rank 0 writes checkpoints."),
      int_field<C>("checkpoint.keep", DDP_REF(checkpoint.keep), 1, kNoMax,
                   "Newest checkpoints kept (plus the best test accuracy)."),
      int_field<C>("checkpoint.every_steps", DDP_REF(checkpoint.every_steps), 0, kNoMax,
                   "Also save mid-epoch every N steps (0 = only at epoch ends)."),
      int_field<C>("eval.batch_size", DDP_REF(eval.batch_size), 1, 1 << 20, "Images per evaluation batch."),
      string_field<C>("resume", DDP_REF(resume),
                      "Checkpoint to continue from: a path (.pt or .json), auto (the newest valid one in "
                      "checkpoint.dir, or a fresh start), or empty (fresh)."),
  };
  return kFields;
}

// The test-only fault.* keys (see FaultInjection).
const std::vector<Field<FaultInjection>>& fault_fields() {
  using F = FaultInjection;
  static const std::vector<Field<FaultInjection>> kFields = {
      int_field<F>("fault.nan_at_step", DDP_FAULT(nan_at_step), 0, kNoMax,
                   "Rank nan_rank's loss becomes NaN."),
      int_field<F>("fault.nan_rank", DDP_FAULT(nan_rank), 0, kNoMax, ""),
      int_field<F>("fault.stop_at_step", DDP_FAULT(stop_at_step), 0, kNoMax, "Rank 0 acts as if signalled."),
      int_field<F>("fault.hang_at_step", DDP_FAULT(hang_at_step), 0, kNoMax,
                   "Rank hang_rank stops participating."),
      int_field<F>("fault.hang_rank", DDP_FAULT(hang_rank), 0, kNoMax, ""),
      int_field<F>("fault.drift_at_step", DDP_FAULT(drift_at_step), 0, kNoMax,
                   "Rank drift_rank's weights drift."),
      int_field<F>("fault.drift_rank", DDP_FAULT(drift_rank), 0, kNoMax, ""),
  };
  return kFields;
}

#undef DDP_FAULT
#undef DDP_REF

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <typename Target>
bool set_in(const std::vector<Field<Target>>& table, Target& target, const std::string& key,
            const std::string& value, const std::string& source) {
  for (const auto& f : table) {
    if (f.key != key) continue;
    if (!f.set(target, value)) {
      throw InputError("config key " + key + " (" + source + "): '" + value + "' is not allowed; expected " +
                       f.allowed);
    }
    return true;
  }
  return false;
}

void set_key(Config& config, FaultInjection* faults, const std::string& key, const std::string& value,
             const std::string& source) {
  if (key.rfind("fault.", 0) == 0) {
    if (faults == nullptr) {
      throw InputError("config key " + key + " (" + source +
                       "): fault.* keys are test-only fault injection and are "
                       "taken only by the train command; remove it");
    }
    if (set_in(fault_fields(), *faults, key, value, source)) return;
  } else if (set_in(fields(), config, key, value, source)) {
    return;
  }
  std::string best;
  size_t best_d = 4;
  for (const auto& f : fields()) {
    size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = f.key;
  }
  for (const auto& f : fault_fields()) {
    size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = f.key;
  }
  std::string msg = "unknown config key '" + key + "' (" + source + ")";
  msg += best.empty() ? "." : "; did you mean '" + best + "'?";
  msg += " Run 'ddptrain --help' for the list of keys";
  throw InputError(msg);
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& source,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        throw InputError("config " + source + ": a key under '" +
                         (prefix.empty() ? "the top level" : prefix) +
                         "' is not a plain name; write keys as name: value");
      }
      const std::string key = kv.first.Scalar();
      const std::string full = prefix.empty() ? key : prefix + "." + key;
      // yaml-cpp keeps both entries of a repeated key and lookups see the first: refuse instead.
      if (!seen.insert(key).second) {
        throw InputError("config " + source + ": '" + full + "' appears twice; keep one");
      }
      flatten(kv.second, full, source, out);
    }
  } else if (node.IsScalar()) {
    out->emplace_back(prefix, node.Scalar());
  } else if (node.IsNull()) {
    out->emplace_back(prefix, "");
  } else {
    throw InputError("config key " + prefix + " (" + source +
                     "): lists are not supported; give a single value");
  }
}

}  // namespace

std::string to_string(ModelKind v) { return name_in(kModelNames, v); }
std::string to_string(DatasetKind v) { return name_in(kDatasetNames, v); }
std::string to_string(InputPipeline v) { return name_in(kPipelineNames, v); }
std::string to_string(LrScheduleKind v) { return name_in(kScheduleNames, v); }
std::string to_string(ConvAlgorithm v) { return name_in(kConvNames, v); }
std::string to_string(Precision v) { return name_in(kPrecisionNames, v); }
std::string to_string(BackendChoice v) { return name_in(kBackendNames, v); }
std::string to_string(DeviceChoice v) { return name_in(kDeviceNames, v); }
std::string to_string(ProgressMode v) { return name_in(kProgressNames, v); }

ModelKind model_kind(const std::string& name) {
  for (const auto& [value, text] : kModelNames) {
    if (name == text) return value;
  }
  throw InputError("unknown model '" + name + "'; choose seed_cnn or resnet9");
}

std::string FaultInjection::describe() const {
  const FaultInjection none;
  std::string out;
  for (const auto& f : fault_fields()) {
    if (f.get(*this) == f.get(none)) continue;
    out += (out.empty() ? "" : ", ") + f.key + "=" + f.get(*this);
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& f : fields()) keys.push_back(f.key);
  return keys;
}

std::vector<std::pair<std::string, std::string>> config_values(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : fields()) out.emplace_back(f.key, f.get(config));
  return out;
}

std::vector<std::string> config_changes(const Config& config) {
  const Config defaults;
  std::vector<std::string> out;
  for (const auto& f : fields()) {
    const std::string value = f.get(config);
    if (value != f.get(defaults)) out.push_back(f.key + "=" + value);
  }
  return out;
}

std::string config_reference_markdown() {
  const Config defaults;
  std::ostringstream out;
  out << "| key | default | allowed | meaning |\n|---|---|---|---|\n";
  for (const auto& f : fields()) {
    const std::string value = f.get(defaults);
    out << "| `" << f.key << "` | " << (value.empty() ? "(empty)" : "`" + value + "`") << " | " << f.allowed
        << " | " << f.doc << " |\n";
  }
  return out.str();
}

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides, FaultInjection* faults) {
  Config config;
  YAML::Node root;
  try {
    std::vector<YAML::Node> documents;
    for (const YAML::Node& d : YAML::LoadAll(yaml_text)) {
      if (d && !d.IsNull()) documents.push_back(d);  // An empty document (a trailing ---) is nothing.
    }
    if (documents.size() > 1) {
      throw InputError("config " + source + " holds " + std::to_string(documents.size()) +
                       " YAML documents (separated by ---); put the whole config in one");
    }
    if (!documents.empty()) root = documents.front();
  } catch (const YAML::Exception& e) {
    throw InputError("config " + source + " is not valid YAML: " + e.what());
  }
  if (root && !root.IsNull()) {
    if (!root.IsMap())
      throw InputError("config " + source + " must be a YAML map of sections (model:, data:, train:, ...)");
    std::vector<std::pair<std::string, std::string>> values;
    flatten(root, "", source, &values);
    std::set<std::string> seen;  // Also across forms: "train.lr:" at the top and "train: {lr:}".
    for (const auto& [key, value] : values) {
      if (!seen.insert(key).second)
        throw InputError("config " + source + ": '" + key + "' appears twice; keep one");
      set_key(config, faults, key, value, source);
    }
  }
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError("--set " + o + ": expected key=value, e.g. --set train.lr=0.1");
    }
    set_key(config, faults, o.substr(0, eq), o.substr(eq + 1), "--set");
  }
  // Rules between keys.
  if (config.train.nesterov && !(config.train.momentum > 0)) {
    throw InputError("config " + source +
                     ": train.nesterov=true needs train.momentum > 0; set train.momentum "
                     "(e.g. 0.9) or train.nesterov=false");
  }
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides,
                   FaultInjection* faults) {
  if (files::exists(path) && !files::is_regular_file(path)) {
    throw InputError("config file '" + path +
                     "' is not a file (a directory?); pass a YAML file to --config (see configs/)");
  }
  std::ifstream in(path);
  if (!in)
    throw InputError("cannot read config file '" + path + "': " + std::strerror(errno) +
                     "; pass an existing file to --config (see configs/)");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides, faults);
}

std::string Config::to_yaml() const {
  std::ostringstream out;
  std::string section;
  for (const auto& f : fields()) {
    const auto dot = f.key.find('.');
    std::string value = f.get(*this);
    const bool quote = value.empty() || value.find_first_of(":#{}[],&*!|>'\"%@` ") != std::string::npos;
    if (quote) value = "\"" + value + "\"";
    if (dot == std::string::npos) {
      out << f.key << ": " << value << "\n";
      section.clear();
      continue;
    }
    const std::string s = f.key.substr(0, dot);
    if (s != section) out << s << ":\n";
    section = s;
    out << "  " << f.key.substr(dot + 1) << ": " << value << "\n";
  }
  return out.str();
}

}  // namespace ddp
