#include "ddp/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "ddp/check.h"
#include "ddp/files.h"

namespace ddp {
namespace {

// One configurable key: how to set it from text and how to print it.
struct Field {
  std::string key;
  std::string allowed;  // For error messages: "integer >= 1", "one of: a, b".
  std::function<bool(Config&, const std::string&)> set;  // False: value not allowed.
  std::function<std::string(const Config&)> get;
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
  static const std::map<std::string, bool> kWords = {
      {"true", true}, {"false", false}, {"yes", true}, {"no", false},
      {"on", true},   {"off", false},   {"1", true},   {"0", false}};
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

template <typename Ref>
Field int_field(std::string key, Ref ref, int64_t lo, int64_t hi = INT64_MAX) {
  std::string allowed = "an integer >= " + std::to_string(lo);
  if (hi != INT64_MAX) allowed = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return {std::move(key), allowed,
          [ref, lo, hi](Config& c, const std::string& t) {
            int64_t v;
            if (!parse_int(t, &v) || v < lo || v > hi) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Config& c) { return std::to_string(ref(const_cast<Config&>(c))); }};
}

template <typename Ref>
Field double_field(std::string key, Ref ref, double lo, double hi, bool lo_open = false) {
  std::string allowed = std::string("a number in ") + (lo_open ? "(" : "[") + format_double(lo) +
                        ", " + format_double(hi) + "]";
  return {std::move(key), allowed,
          [ref, lo, hi, lo_open](Config& c, const std::string& t) {
            double v;
            if (!parse_double(t, &v) || v > hi || v < lo || (lo_open && v == lo)) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Config& c) { return format_double(ref(const_cast<Config&>(c))); }};
}

template <typename Ref>
Field bool_field(std::string key, Ref ref) {
  return {std::move(key), "true or false",
          [ref](Config& c, const std::string& t) {
            bool v;
            if (!parse_bool(t, &v)) return false;
            ref(c) = v;
            return true;
          },
          [ref](const Config& c) { return std::string(ref(const_cast<Config&>(c)) ? "true" : "false"); }};
}

template <typename Ref>
Field string_field(std::string key, Ref ref, std::vector<std::string> choices = {}) {
  std::string allowed = "a string";
  if (!choices.empty()) {
    allowed = "one of:";
    for (auto& ch : choices) allowed += " " + ch;
  }
  return {std::move(key), allowed,
          [ref, choices](Config& c, const std::string& t) {
            if (!choices.empty() && std::find(choices.begin(), choices.end(), t) == choices.end()) return false;
            ref(c) = t;
            return true;
          },
          [ref](const Config& c) { return ref(const_cast<Config&>(c)); }};
}

#define DDP_REF(member) [](Config& c) -> auto& { return c.member; }

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      string_field("model.name", DDP_REF(model.name), {"seed_cnn", "resnet9"}),
      string_field("data.dataset", DDP_REF(data.dataset), {"cifar10", "cifar100", "mnist", "fashion_mnist", "synthetic"}),
      string_field("data.root", DDP_REF(data.root)),
      bool_field("data.shuffle", DDP_REF(data.shuffle)),
      bool_field("data.augment", DDP_REF(data.augment)),
      int_field("data.cutout", DDP_REF(data.cutout), 0, 1024),
      int_field("data.limit_train", DDP_REF(data.limit_train), 0),
      int_field("data.limit_test", DDP_REF(data.limit_test), 0),
      int_field("data.synthetic_train", DDP_REF(data.synthetic_train), 1),
      int_field("data.synthetic_test", DDP_REF(data.synthetic_test), 1),
      bool_field("data.download", DDP_REF(data.download)),
      string_field("data.url", DDP_REF(data.url)),
      string_field("data.md5", DDP_REF(data.md5)),
      string_field("data.pipeline", DDP_REF(data.pipeline), {"device", "host"}),
      int_field("train.epochs", DDP_REF(train.epochs), 1, 1000000),
      int_field("train.max_steps", DDP_REF(train.max_steps), 0),
      int_field("train.batch_size", DDP_REF(train.batch_size), 1, 1 << 20),
      double_field("train.lr", DDP_REF(train.lr), 0.0, 1e3, true),
      double_field("train.momentum", DDP_REF(train.momentum), 0.0, 0.9999),
      double_field("train.weight_decay", DDP_REF(train.weight_decay), 0.0, 1.0),
      bool_field("train.nesterov", DDP_REF(train.nesterov)),
      string_field("train.lr_schedule", DDP_REF(train.lr_schedule), {"constant", "step", "cosine", "onecycle"}),
      double_field("train.warmup_epochs", DDP_REF(train.warmup_epochs), 0.0, 1e6),
      double_field("train.lr_step_epochs", DDP_REF(train.lr_step_epochs), 0.0, 1e6, true),
      double_field("train.lr_gamma", DDP_REF(train.lr_gamma), 0.0, 1.0, true),
      double_field("train.min_lr", DDP_REF(train.min_lr), 0.0, 1e3),
      double_field("train.label_smoothing", DDP_REF(train.label_smoothing), 0.0, 0.999),
      int_field("train.seed", DDP_REF(train.seed), 0),
      int_field("train.threads", DDP_REF(train.threads), 0, 1024),
      int_field("train.accumulate_steps", DDP_REF(train.accumulate_steps), 1, 1 << 16),
      int_field("train.max_bad_steps", DDP_REF(train.max_bad_steps), 0),
      bool_field("train.channels_last", DDP_REF(train.channels_last)),
      string_field("train.conv_algorithm", DDP_REF(train.conv_algorithm), {"auto", "direct"}),
      string_field("train.precision", DDP_REF(train.precision), {"fp32", "bf16", "fp16"}),
      double_field("train.loss_scale", DDP_REF(train.loss_scale), 1.0, 1e30),
      int_field("train.loss_scale_growth_steps", DDP_REF(train.loss_scale_growth_steps), 1),
      string_field("dist.backend", DDP_REF(dist.backend), {"auto", "mpi", "nccl"}),
      string_field("dist.device", DDP_REF(dist.device), {"auto", "cpu", "cuda"}),
      double_field("dist.bucket_mb", DDP_REF(dist.bucket_mb), 0.001, 4096.0),
      double_field("dist.first_bucket_mb", DDP_REF(dist.first_bucket_mb), 0.001, 4096.0),
      double_field("dist.timeout_s", DDP_REF(dist.timeout_s), 0.0, 86400.0 * 7, true),
      bool_field("dist.broadcast_buffers", DDP_REF(dist.broadcast_buffers)),
      bool_field("dist.overlap", DDP_REF(dist.overlap)),
      string_field("dist.grad_dtype", DDP_REF(dist.grad_dtype), {"fp32", "bf16", "fp16"}),
      int_field("dist.check_params_every", DDP_REF(dist.check_params_every), 0),
      string_field("log.dir", DDP_REF(log.dir)),
      int_field("log.every_steps", DDP_REF(log.every_steps), 1),
      bool_field("log.tensorboard", DDP_REF(log.tensorboard)),
      string_field("log.progress", DDP_REF(log.progress), {"auto", "on", "off"}),
      string_field("checkpoint.dir", DDP_REF(checkpoint.dir)),
      int_field("checkpoint.keep", DDP_REF(checkpoint.keep), 1),
      int_field("checkpoint.every_steps", DDP_REF(checkpoint.every_steps), 0),
      int_field("eval.batch_size", DDP_REF(eval.batch_size), 1, 1 << 20),
      int_field("debug.nan_at_step", DDP_REF(debug.nan_at_step), 0),
      int_field("debug.nan_rank", DDP_REF(debug.nan_rank), 0),
      int_field("debug.stop_at_step", DDP_REF(debug.stop_at_step), 0),
      int_field("debug.hang_at_step", DDP_REF(debug.hang_at_step), 0),
      int_field("debug.hang_rank", DDP_REF(debug.hang_rank), 0),
      int_field("debug.drift_at_step", DDP_REF(debug.drift_at_step), 0),
      int_field("debug.drift_rank", DDP_REF(debug.drift_rank), 0),
      string_field("resume", DDP_REF(resume)),
  };
  return kFields;
}

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

void set_key(Config& config, const std::string& key, const std::string& value,
             const std::string& source) {
  for (const Field& f : fields()) {
    if (f.key != key) continue;
    if (!f.set(config, value)) {
      throw InputError("config key " + key + " (" + source + "): '" + value + "' is not allowed; expected " + f.allowed);
    }
    return;
  }
  std::string best;
  size_t best_d = 4;
  for (const Field& f : fields()) {
    size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = f.key;
  }
  std::string msg = "unknown config key '" + key + "' (" + source + ")";
  if (!best.empty()) msg += "; did you mean '" + best + "'?";
  msg += " Run 'ddptrain --help' for the list of keys";
  throw InputError(msg);
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& source,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        throw InputError("config " + source + ": a key under '" + (prefix.empty() ? "the top level" : prefix) +
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
    throw InputError("config key " + prefix + " (" + source + "): lists are not supported; give a single value");
  }
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const Field& f : fields()) keys.push_back(f.key);
  return keys;
}

std::vector<std::pair<std::string, std::string>> config_values(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Field& f : fields()) out.emplace_back(f.key, f.get(config));
  return out;
}

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
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
    if (!root.IsMap()) throw InputError("config " + source + " must be a YAML map of sections (model:, data:, train:, ...)");
    std::vector<std::pair<std::string, std::string>> values;
    flatten(root, "", source, &values);
    std::set<std::string> seen;  // Also across forms: "train.lr:" at the top and "train: {lr:}".
    for (const auto& [key, value] : values) {
      if (!seen.insert(key).second) throw InputError("config " + source + ": '" + key + "' appears twice; keep one");
      set_key(config, key, value, source);
    }
  }
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError("--set " + o + ": expected key=value, e.g. --set train.lr=0.1");
    }
    set_key(config, o.substr(0, eq), o.substr(eq + 1), "--set");
  }
  // Rules between keys.
  if (config.train.nesterov && !(config.train.momentum > 0)) {
    throw InputError("config " + source + ": train.nesterov=true needs train.momentum > 0; set train.momentum "
                     "(e.g. 0.9) or train.nesterov=false");
  }
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (files::exists(path) && !files::is_regular_file(path)) {
    throw InputError("config file '" + path + "' is not a file (a directory?); pass a YAML file to --config (see configs/)");
  }
  std::ifstream in(path);
  if (!in) throw InputError("cannot read config file '" + path + "': " + std::strerror(errno) + "; pass an existing file to --config (see configs/)");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

std::string Config::to_yaml() const {
  std::ostringstream out;
  std::string section;
  for (const Field& f : fields()) {
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
