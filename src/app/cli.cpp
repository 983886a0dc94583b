#include "app/cli.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "app/bench_comm.h"
#include "app/environment.h"
#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/core/signals.h"
#include "ddp/core/version.h"
#include "ddp/data/batcher.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/dist/nccl_communicator.h"
#include "ddp/observe/cuda_driver_probe.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/mixed_precision.h"
#include "ddp/train/model_export.h"
#include "ddp/train/models.h"
#include "ddp/train/trainer.h"

namespace ddp {
namespace {

// Bounds the start-up agreement (Note [agreed start-up errors]); dist.timeout_s is not known yet.
constexpr std::chrono::milliseconds kStartupTimeout{std::chrono::minutes(10)};

struct TrainArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string checkpoint;  // eval, export
  std::string out;         // export
  std::string example;     // export
};

// Parses the options of args[0]; `allowed` lists the flags that command takes (besides --set
// with --config).
TrainArgs parse_command_args(const std::vector<std::string>& args, const std::vector<std::string>& allowed) {
  TrainArgs t;
  const std::string& command = args[0];
  auto takes = [&](const std::string& flag) {
    return std::find(allowed.begin(), allowed.end(), flag) != allowed.end();
  };
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i], inline_value;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      inline_value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_inline = true;
    }
    if (a == "-c") a = "--config";
    auto value = [&]() -> std::string {
      if (has_inline) return inline_value;
      if (i + 1 >= args.size()) throw InputError(a + " needs a value; see ddptrain --help");
      return args[++i];
    };
    if (!takes(a))
      throw InputError("unknown argument '" + args[i] + "' for '" + command + "'; see ddptrain --help");
    if (a == "--config") {
      t.config_path = value();
    } else if (a == "--set") {
      t.overrides.push_back(value());
    } else if (a == "--checkpoint") {
      t.checkpoint = value();
    } else if (a == "--out") {
      t.out = value();
    } else if (a == "--example") {
      t.example = value();
    }
  }
  return t;
}

TrainArgs parse_train_args(const std::vector<std::string>& args) {
  TrainArgs t = parse_command_args(args, {"--config", "--set"});
  if (t.config_path.empty()) throw InputError(args[0] + " needs --config FILE (see configs/)");
  return t;
}

// Sets this rank's intra-op threads: `configured` (train.threads), or for 0 the rank's share of
// its CPUs. Rank 0 warns when asked for more threads than it has CPUs.
int setup_threads(int64_t configured, const ProcessInfo& p) {
  const int threads = choose_threads(static_cast<int>(configured), p.cpus, p.cpu_sharers);
  at::set_num_threads(threads);
  if (p.rank == 0 && threads > p.cpus) {
    spdlog::warn(
        "train.threads={} but rank 0 may run on only {} CPU(s): its threads will time-slice. mpirun binds "
        "ranks to cores by default; launch with --bind-to none (launch/local.sh does) or --map-by "
        "slot:PE={}, or leave train.threads=0",
        threads, p.cpus, threads);
  }
  return threads;
}

// Intra-op threads and device for this rank, from the config and the machine.
std::string setup_device(const Config& config, const ProcessInfo& p, int* threads_out) {
  const int threads = setup_threads(config.train.threads, p);
  if (threads_out) *threads_out = threads;
  const bool cuda = torch::cuda::is_available();
  const int gpus = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  std::string device = choose_device(to_string(config.dist.device), cuda, gpus, p.local_rank, p.local_size);
  const std::string backend =
      choose_backend(to_string(config.dist.backend), device, nccl_built());  // Throws inside agreed().
  if (device != "cpu") {
    const int index = static_cast<int>(c10::Device(device).index());
    for (const GpuInfo& gpu : probe_cuda_driver().gpus) {
      if (gpu.index != index) continue;
      const std::string problem = precision_gpu_problem(config.train.precision, gpu.cc_major, gpu.cc_minor,
                                                        device + " (" + gpu.name + ")");
      if (!problem.empty()) throw InputError(problem);
    }
    if (backend == "mpi" && p.rank == 0) {
      spdlog::warn("{}: gradients go through MPI via host memory{}; NCCL is much faster on GPUs", device,
                   nccl_built() ? " (dist.backend=mpi)"
                                : " (this ddptrain was built without NCCL: no CUDA toolkit at "
                                  "build time)");
    }
  }
  return device;
}

// The config of a checkpoint command: --config FILE when given, else the resolved config the
// checkpoint stores; --set overrides apply to either.
Config checkpoint_config(const TrainArgs& t, const CheckpointState& info) {
  if (!t.config_path.empty()) return load_config(t.config_path, t.overrides);
  return parse_config(info.config_yaml, t.checkpoint + " (its stored config)", t.overrides);
}

// The config of a train-like command (--config FILE plus --set), agreed by every rank: read
// inside agreed(), then checked to be the same everywhere before anything depends on it.
// `faults` takes the test-only fault.* keys (the train command); without it they are refused.
Config agreed_config(Communicator& startup, const std::vector<std::string>& args, std::string* path = nullptr,
                     FaultInjection* faults = nullptr) {
  Config c = agreed(startup, [&] {
    TrainArgs t = parse_train_args(args);
    if (path) *path = t.config_path;
    return load_config(t.config_path, t.overrides, faults);
  });
  check_same_config(startup, c);
  return c;
}

// The train and test sets, agreed (a dataset missing on one node is one error for the job).
std::pair<ImageDataset, ImageDataset> load_datasets(Communicator& comm, const Config& c) {
  return agreed(comm, [&] {
    return std::make_pair(load_dataset(c, /*train=*/true), load_dataset(c, /*train=*/false));
  });
}

// Rank 0: the config keys that differ from the defaults (the whole resolved config is the run
// folder's config.yaml, written when the trainer has made log.dir), and any fault injection.
void log_config(const Config& config, const std::string& path, const FaultInjection& faults) {
  std::string changes;
  for (const std::string& kv : config_changes(config)) changes += (changes.empty() ? "" : " ") + kv;
  spdlog::info("config {}: {} (other keys at their defaults; all in {})", path,
               changes.empty() ? "defaults" : changes, files::join(config.log.dir, "config.yaml"));
  if (const std::string f = faults.describe(); !f.empty()) spdlog::warn("test-only fault injection: {}", f);
}

// A scratch folder of rank 0 ("" elsewhere) for runs whose logs and checkpoints are not kept,
// removed with everything in it however the command ends.
class ScratchDir {
 public:
  explicit ScratchDir(bool is_root) : path_(is_root ? files::make_temp_directory("ddptrain_bench_") : "") {}
  ~ScratchDir() {
    if (!path_.empty()) files::remove_tree(path_);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  // A folder inside it (on rank 0; a relative one elsewhere, which those ranks never write).
  std::string sub(const std::string& name) const { return files::join(path_, name); }

 private:
  std::string path_;
};

// A config for a short measured run: logs and checkpoints in `scratch`, no TensorBoard, no
// progress line, no resume.
Config measured_run(Config c, const ScratchDir& scratch, const std::string& name) {
  c.log.dir = scratch.sub(name + "logs");
  c.checkpoint.dir = scratch.sub(name + "checkpoints");
  c.log.tensorboard = false;
  c.log.progress = ProgressMode::kOff;
  c.resume.clear();
  return c;
}

// Picks the communicator backend once, from the config and what the machine has.
std::unique_ptr<Communicator> make_communicator(const Config& c, const std::string& device) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.dist.timeout_s * 1000));
  if (choose_backend(to_string(c.dist.backend), device, nccl_built()) == "nccl") {
    return make_nccl_communicator(MPI_COMM_WORLD, c10::Device(device).index(), timeout);
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, timeout);
}

int train(const std::vector<std::string>& args, const ProcessInfo& p) {
  // Start-up that can fail on some ranks only is agreed (Note [agreed start-up errors]).
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  std::string config_path;
  FaultInjection faults;
  const Config config = agreed_config(startup, args, &config_path, &faults);
  int threads = 1;
  const std::string device = agreed(startup, [&] { return setup_device(config, p, &threads); });
  auto comm = make_communicator(config, device);
  if (p.rank == 0) {
    spdlog::info("{}", version_string());
    spdlog::info("world size {} | rank 0 on {} | device {} | {} intra-op threads per rank | backend {}",
                 p.world_size, p.hostname, device, threads, comm->backend());
    log_config(config, config_path, faults);
  }
  prepare_dataset(config, *comm, p.local_rank);  // Collective; only with data.download=true.
  auto [train_set, test_set] = load_datasets(*comm, config);
  if (p.rank == 0) {
    spdlog::info("data {}: {} training images, {} test images", train_set.name, train_set.size(),
                 test_set.size());
  }
  Trainer trainer(config, *comm, c10::Device(device), std::move(train_set), std::move(test_set), faults);
  const TrainSummary summary = trainer.run();
  return summary.stopped_by_signal ? kExitStoppedBySignal : 0;
}

int bench_comm(const std::vector<std::string>& args, const ProcessInfo& p) {
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  Config c;  // Defaults: threads from the rank's CPUs, device auto.
  BenchCommOptions o = agreed(startup, [&] {
    BenchCommOptions r = parse_bench_comm_args(args);
    r.device = setup_device(c, p, nullptr);
    return r;
  });
  auto comm = make_communicator(c, o.device);
  run_bench_comm(*comm, o);
  return 0;
}

// ddptrain env: the report is gathered from every rank and printed by rank 0.
int env(const std::vector<std::string>& args, const ProcessInfo& p) {
  parse_command_args(args, {});
  const int threads = setup_threads(0, p);
  MpiCommunicator comm(MPI_COMM_WORLD, std::chrono::seconds(60));
  const std::string report = environment_report(p, comm, threads);
  if (p.rank == 0) std::cout << report << std::flush;
  return 0;
}

// ddptrain eval: every rank loads the checkpoint and evaluates its exact shard of the test set.
int eval(const std::vector<std::string>& args, const ProcessInfo& p) {
  struct Setup {
    TrainArgs t;
    CheckpointState info;
    Config config;
    std::string device;
  };
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  const Setup s = agreed(startup, [&] {
    Setup r;
    r.t = parse_command_args(args, {"--checkpoint", "--config", "--set"});
    if (r.t.checkpoint.empty()) throw InputError("eval needs --checkpoint FILE");
    r.info = read_checkpoint_info(r.t.checkpoint);
    r.config = checkpoint_config(r.t, r.info);
    r.device = setup_device(r.config, p, nullptr);
    return r;
  });
  const TrainArgs& t = s.t;
  const CheckpointState& info = s.info;
  const Config& config = s.config;
  const std::string& device = s.device;
  check_same_config(startup, config);
  auto comm = make_communicator(config, device);
  auto [test_set, model] = agreed(*comm, [&] {
    ImageDataset test = load_dataset(config, /*train=*/false);
    auto m = make_model(config.model.name, test.channels(), test.num_classes, config.train.conv_algorithm);
    m->to(c10::Device(device));
    load_checkpoint_model(t.checkpoint, *m, to_string(config.model.name));
    return std::make_pair(std::move(test), m);
  });
  Batcher batches(test_set, c10::Device(device));
  const EvalResult r = evaluate_model(*model, batches, *comm, config.eval.batch_size, c10::Device(device));
  if (p.rank == 0) {
    spdlog::info(
        "eval {} (epoch {} step {}) on {} | {} ranks | test loss {:.4f} | test accuracy {:.4f} ({} images)",
        t.checkpoint, info.epoch, info.step, test_set.name, comm->size(), r.loss, r.accuracy, r.count);
  }
  return 0;
}

// An export must not replace a checkpoint (the one exported, or any other) or a directory.
void check_export_target(const std::string& path, const char* flag) {
  if (!files::exists(path)) return;
  if (!files::is_regular_file(path)) {
    throw InputError(std::string(flag) + " " + path + " is a directory (or not a file); give a file name");
  }
  bool is_checkpoint = false;
  try {
    read_checkpoint_info(path);
    is_checkpoint = true;
  } catch (const InputError&) {
  }
  if (is_checkpoint) {
    throw InputError(std::string(flag) + " " + path +
                     " is a checkpoint; exporting over it would destroy it: give "
                     "another file name");
  }
}

// ddptrain export: rank 0 writes the state dict (and optionally an example input/output pair).
int export_model(const std::vector<std::string>& args, const ProcessInfo& p) {
  TrainArgs t;
  Config config;
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  auto [shape, model] = agreed(startup, [&] {
    t = parse_command_args(args, {"--checkpoint", "--out", "--example", "--config", "--set"});
    if (t.checkpoint.empty() || t.out.empty())
      throw InputError("export needs --checkpoint FILE and --out FILE");
    config = checkpoint_config(t, read_checkpoint_info(t.checkpoint));
    check_export_target(t.out, "--out");
    if (!t.example.empty()) check_export_target(t.example, "--example");
    // Only the input shape is needed from the data: load the smallest test split.
    config.data.limit_test = 1;
    config.data.synthetic_test = 1;
    ImageDataset data = load_dataset(config, /*train=*/false);
    // LibTorch's own convolutions: the example output is the reference PyTorch must reproduce.
    auto m = make_model(config.model.name, data.channels(), data.num_classes, ConvAlgorithm::kDirect);
    load_checkpoint_model(t.checkpoint, *m, to_string(config.model.name));
    return std::make_pair(std::move(data), m);
  });
  if (p.rank == 0) {
    export_state_dict(*model, t.out);
    spdlog::info("exported {} ({} {} parameters + buffers) to {}", t.checkpoint, to_string(config.model.name),
                 parameter_count(*model), t.out);
    if (!t.example.empty()) {
      export_example(*model, shape.channels(), 4, 0, t.example);
      spdlog::info("example input and logits written to {}", t.example);
    }
  }
  return 0;
}

// ddptrain bench-devices: the same short training on each device kind this machine has.
int bench_devices(const std::vector<std::string>& args, const ProcessInfo& p) {
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  const Config base = agreed_config(startup, args);
  // Both kinds on every rank (the loop holds collectives); one that some rank cannot use is
  // skipped by all, with the reason.
  const DeviceChoice kinds[] = {DeviceChoice::kCpu, DeviceChoice::kCuda};
  const ScratchDir scratch(p.rank == 0);  // The runs' logs and checkpoints, removed at the end.
  struct Row {
    std::string device;
    TrainSummary summary;
    double images_per_s;
  };
  std::vector<Row> rows;
  std::vector<std::string> skipped;  // Device kinds present but not usable by this job.
  for (const DeviceChoice choice : kinds) {
    const std::string kind = to_string(choice);
    Config c = measured_run(base, scratch, kind + "/");
    c.dist.device = choice;
    std::string device;
    try {  // Agreed: a kind that some rank cannot use is skipped by all.
      device = agreed(startup, [&] { return setup_device(c, p, nullptr); });
    } catch (const InputError& e) {
      skipped.push_back((kind + "      ").substr(0, 6) + " | skipped: " + e.what());
      continue;
    }
    auto comm = make_communicator(c, device);
    auto [train_set, test_set] = load_datasets(*comm, c);
    if (p.rank == 0) spdlog::info("bench-devices: training on {} ({} ranks)", device, comm->size());
    Trainer trainer(c, *comm, c10::Device(device), std::move(train_set), std::move(test_set));
    const TrainSummary s = trainer.run();
    const double images = static_cast<double>(s.steps * c.train.batch_size * comm->size());
    rows.push_back({kind, s, images / std::max(s.wall_s, 1e-9)});
  }
  if (p.rank == 0) {
    std::ostringstream table;
    table << "\n"
          << "device | ranks | steps | wall s (train + eval) | img/s | test accuracy\n"
          << "------ | ----- | ----- | --------------------- | ----- | -------------\n";
    for (const Row& r : rows) {
      char line[160];
      std::snprintf(line, sizeof(line), "%-6s | %5d | %5lld | %21.2f | %5.0f | %.4f\n", r.device.c_str(),
                    p.world_size, static_cast<long long>(r.summary.steps), r.summary.wall_s, r.images_per_s,
                    r.summary.eval.accuracy);
      table << line;
    }
    for (const std::string& line : skipped) table << line << "\n";
    std::cout << table.str() << std::flush;
  }
  return 0;
}

// ddptrain bench-train: a short training run (the config as given, e.g. synthetic data) that
// prints where the steady-state steps' time goes and their global images/s; start-up, evaluation
// and checkpoints are outside the timed steps. Logs and checkpoints go to a scratch folder.
int bench_train(const std::vector<std::string>& args, const ProcessInfo& p) {
  MpiCommunicator startup(MPI_COMM_WORLD, kStartupTimeout);
  const ScratchDir scratch(p.rank == 0);
  const Config c = measured_run(agreed_config(startup, args), scratch, "");
  int threads = 1;
  const std::string device = agreed(startup, [&] { return setup_device(c, p, &threads); });
  auto comm = make_communicator(c, device);
  auto [train_set, test_set] = load_datasets(*comm, c);
  Trainer trainer(c, *comm, c10::Device(device), std::move(train_set), std::move(test_set));
  const TrainSummary s = trainer.run();
  if (p.rank == 0) {
    const StepTimes& tm = s.timing;
    const double n = static_cast<double>(std::max<int64_t>(1, tm.steps));
    const double images =
        static_cast<double>(tm.steps * c.train.batch_size * c.train.accumulate_steps * comm->size());
    const double ips = images / std::max(tm.total_s, 1e-9);
    auto ms = [&](double secs) { return 1000.0 * secs / n; };
    const double other = tm.total_s - tm.setup_s - tm.data_s - tm.forward_s - tm.backward_s - tm.comm_wait_s -
                         tm.check_s - tm.optimizer_s;
    char line[512];
    std::snprintf(line, sizeof(line),
                  "\nmodel | precision | ranks | threads | batch | device | steps timed | img/s | ms/step | "
                  "setup | data | "
                  "forward | backward | comm wait | check+flags | optimizer | other (ms per step, rank 0)\n"
                  "%s | %s | %d | %d | %lld | %s | %lld | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | "
                  "%.2f | %.2f | %.2f\n"
                  "bench-train images_per_s %.1f\n",
                  to_string(c.model.name).c_str(), to_string(c.train.precision).c_str(), comm->size(),
                  threads, static_cast<long long>(c.train.batch_size), device.c_str(),
                  static_cast<long long>(tm.steps), ips, ms(tm.total_s), ms(tm.setup_s), ms(tm.data_s),
                  ms(tm.forward_s), ms(tm.backward_s), ms(tm.comm_wait_s), ms(tm.check_s), ms(tm.optimizer_s),
                  ms(other), ips);
    std::cout << line << std::flush;
  }
  return 0;
}

}  // namespace

std::string version_string() {
  std::ostringstream s;
  s << "ddptrain " << DDPTRAIN_VERSION << " (git " << DDPTRAIN_GIT_REVISION << ") | LibTorch "
    << TORCH_VERSION << " | NCCL " << nccl_version();
  return s.str();
}

std::string usage() {
  std::ostringstream s;
  s << "usage: ddptrain <command> [options]\n\n"
       "commands:\n"
       "  train --config FILE [--set key=value ...]   train data-parallel (run under mpirun for\n"
       "                                              several ranks; alone for one)\n"
       "  bench-comm [--min-bytes 8K] [--max-bytes 64M] [--iters 20] [--model seed_cnn]\n"
       "             [--batch 64] [--steps 20] [--bucket-mb 25]\n"
       "                                              all-reduce bandwidth table against raw\n"
       "                                              MPI_Allreduce, and ms/step with no sync,\n"
       "                                              sync after backward, and overlap\n"
       "  eval --checkpoint FILE [--config FILE] [--set key=value ...]\n"
       "                                              evaluate a checkpoint on the test set (exact\n"
       "                                              counts, in parallel under mpirun); the config\n"
       "                                              defaults to the one stored in the checkpoint\n"
       "  export --checkpoint FILE --out FILE [--example FILE]\n"
       "                                              write parameters and buffers as a dict for\n"
       "                                              Python torch.load / load_state_dict; --example\n"
       "                                              also writes a test input and its logits\n"
       "  env                                         versions, CUDA, GPUs, NCCL, MPI, ranks and\n"
       "                                              hosts, threads, backend choice\n"
       "  bench-devices --config FILE [--set ...]     the same short training on CPU and on GPU\n"
       "                                              (when there is one); prints a table of times\n"
       "  bench-train --config FILE [--set ...]       a short training; prints steady-state img/s\n"
       "                                              and ms per step by phase (data, forward,\n"
       "                                              backward, comm wait, check, optimizer)\n"
       "  config-reference                            every config key, its default, allowed values\n"
       "                                              and meaning, as a Markdown table\n"
       "  --help                                      this text\n"
       "  --version                                   version, git revision, LibTorch version\n\n"
       "config keys (YAML sections in FILE, or --set section.key=value):\n";
  for (const auto& k : config_keys()) s << "  " << k << "\n";
  s << "\nexample: mpirun -np 4 ddptrain train --config configs/resnet9.yaml --set train.lr=0.2\n";
  return s.str();
}

int run_cli(const std::vector<std::string>& args, const ProcessInfo& process) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (process.rank == 0) std::cout << usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    if (process.rank == 0) std::cout << version_string() << "\n";
    return 0;
  }
  if (args[0] == "train") return train(args, process);
  if (args[0] == "bench-comm") return bench_comm(args, process);
  if (args[0] == "eval") return eval(args, process);
  if (args[0] == "export") return export_model(args, process);
  if (args[0] == "env") return env(args, process);
  if (args[0] == "bench-devices") return bench_devices(args, process);
  if (args[0] == "bench-train") return bench_train(args, process);
  if (args[0] == "config-reference") {
    parse_command_args(args, {});
    if (process.rank == 0) std::cout << config_reference_markdown();
    return 0;
  }
  throw InputError("unknown command '" + args[0] + "'; see ddptrain --help");
}

}  // namespace ddp
