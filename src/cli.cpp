#include "ddp/cli.h"

#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "ddp/check.h"
#include "ddp/config.h"
#include "ddp/dataset.h"
#include "ddp/mpi_communicator.h"
#include "ddp/trainer.h"
#include "ddp/version.h"

namespace ddp {
namespace {

struct TrainArgs {
  std::string config_path;
  std::vector<std::string> overrides;
};

TrainArgs parse_train_args(const std::vector<std::string>& args) {
  TrainArgs t;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= args.size()) throw InputError(flag + " needs a value; see ddptrain --help");
      return args[++i];
    };
    if (a == "--config" || a == "-c") {
      t.config_path = value(a);
    } else if (a.rfind("--config=", 0) == 0) {
      t.config_path = a.substr(9);
    } else if (a == "--set") {
      t.overrides.push_back(value(a));
    } else if (a.rfind("--set=", 0) == 0) {
      t.overrides.push_back(a.substr(6));
    } else {
      throw InputError("unknown argument '" + a + "' for 'train'; see ddptrain --help");
    }
  }
  if (t.config_path.empty()) throw InputError("train needs --config FILE (see configs/)");
  return t;
}

// Picks the communicator backend once, from the config and what the machine has.
std::unique_ptr<Communicator> make_communicator(const Config& c, const std::string& device) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.dist.timeout_s * 1000));
  if (c.dist.backend == "nccl") {
    if (device == "cpu") {
      throw InputError("dist.backend=nccl needs CUDA GPUs, and none is usable here; use dist.backend=auto or mpi");
    }
    throw InputError("dist.backend=nccl is not built into this ddptrain yet; use dist.backend=auto or mpi");
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, timeout);
}

int train(const std::vector<std::string>& args, const ProcessInfo& p) {
  TrainArgs t = parse_train_args(args);
  Config config = load_config(t.config_path, t.overrides);
  const int threads = choose_threads(static_cast<int>(config.train.threads),
                                     static_cast<int>(std::thread::hardware_concurrency()), p.local_size);
  at::set_num_threads(threads);
  const bool cuda = torch::cuda::is_available();
  const int gpus = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  const std::string device = choose_device(config.dist.device, cuda, gpus, p.local_rank, p.local_size);
  auto comm = make_communicator(config, device);
  if (p.rank == 0) {
    spdlog::info("{}", version_string());
    spdlog::info("world size {} | rank 0 on {} | device {} | {} intra-op threads per rank | backend {}",
                 p.world_size, p.hostname, device, threads, comm->backend());
    std::istringstream yaml(config.to_yaml());
    spdlog::info("resolved config ({}):", t.config_path);
    for (std::string line; std::getline(yaml, line);) spdlog::info("  {}", line);
  }
  prepare_dataset(config, *comm, p.local_rank);  // Collective; only with data.download=true.
  ImageDataset train_set = load_dataset(config, /*train=*/true);
  ImageDataset test_set = load_dataset(config, /*train=*/false);
  if (p.rank == 0) {
    spdlog::info("data {}: {} training images, {} test images", train_set.name, train_set.size(), test_set.size());
  }
  Trainer trainer(config, *comm, c10::Device(device), std::move(train_set), std::move(test_set));
  trainer.run();
  return 0;
}

}  // namespace

std::string version_string() {
  std::ostringstream s;
  s << "ddptrain " << DDPTRAIN_VERSION << " (git " << DDPTRAIN_GIT_REVISION << ") | LibTorch "
    << TORCH_VERSION;
  return s.str();
}

std::string usage() {
  std::ostringstream s;
  s << "usage: ddptrain <command> [options]\n\n"
       "commands:\n"
       "  train --config FILE [--set key=value ...]   train data-parallel (run under mpirun for\n"
       "                                              several ranks; alone for one)\n"
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
  throw InputError("unknown command '" + args[0] + "'; see ddptrain --help");
}

}  // namespace ddp
