#include "app/bench_comm.h"

#include <ATen/ATen.h>
#include <mpi.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "ddp/core/check.h"
#include "ddp/dist/gradient_synchronizer.h"
#include "ddp/dist/mpi_check.h"
#include "ddp/train/models.h"

namespace ddp {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t parse_bytes(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? end : "";
  if (unit == "K" || unit == "k")
    v *= 1 << 10;
  else if (unit == "M" || unit == "m")
    v *= 1 << 20;
  else if (unit == "G" || unit == "g")
    v *= 1 << 30;
  else if (!unit.empty() || end == text.c_str())
    throw InputError(flag + ": expected a size like 8K, 4M, 1G; got " + text);
  if (v < 4) throw InputError(flag + " must be at least 4 bytes");
  return static_cast<int64_t>(v);
}

void message_sizes(Communicator& comm, const BenchCommOptions& o, const at::Device& device) {
  const int n = comm.size();
  const double bus = n > 1 ? 2.0 * (n - 1) / n : 1.0;
  if (comm.rank() == 0) {
    std::printf("\nall-reduce, float32 sum, %d ranks, backend %s, device %s (median of %d)\n", n,
                comm.backend().c_str(), device.str().c_str(), o.iters);
    std::printf("  compared against: raw blocking MPI_Allreduce of the same bytes (CPU buffer)\n");
    std::printf("%12s %10s | %10s %9s %9s | %10s %9s %9s\n", "size (B)", "count", "ddp (us)", "algbw",
                "busbw", "MPI (us)", "algbw", "busbw");
  }
  for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 4) {
    const int64_t count = bytes / 4;
    at::Tensor t = at::ones({count}, at::TensorOptions().dtype(at::kFloat).device(device));
    at::Tensor host = at::ones({count}, at::kFloat);
    std::vector<double> ours, raw;
    for (int i = 0; i < o.warmup + o.iters; ++i) {
      comm.barrier();
      auto start = Clock::now();
      comm.all_reduce(t, ReduceOp::kSum);
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      comm.barrier();
      start = Clock::now();
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                              MPI_COMM_WORLD));
      const double raw_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      if (i >= o.warmup) ours.push_back(us), raw.push_back(raw_us);
    }
    const double a = root_value(comm, median(ours)), b = root_value(comm, median(raw));
    if (comm.rank() == 0) {
      const double alg_a = static_cast<double>(bytes) / a / 1e3, alg_b = static_cast<double>(bytes) / b / 1e3;
      std::printf("%12lld %10lld | %10.1f %9.3f %9.3f | %10.1f %9.3f %9.3f\n", static_cast<long long>(bytes),
                  static_cast<long long>(count), a, alg_a, alg_a * bus, b, alg_b, alg_b * bus);
    }
  }
  if (comm.rank() == 0) std::printf("  algbw, busbw in GB/s; busbw = algbw x 2(n-1)/n\n");
}

// Milliseconds per training step (median) in one synchronisation mode.
double step_ms(Communicator& comm, const BenchCommOptions& o, const at::Device& device,
               const std::string& mode) {
  torch::manual_seed(0);
  auto model = make_model(o.model);
  model->to(device);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  SyncOptions so;
  so.cap_bytes = static_cast<int64_t>(o.bucket_mb * (1 << 20));
  so.overlap = mode == "overlap";
  std::unique_ptr<GradientSynchronizer> sync;
  if (mode != "none") sync = std::make_unique<GradientSynchronizer>(comm, model->parameters(), so);
  at::Tensor x = at::randn({o.batch, 3, 32, 32}, at::TensorOptions().device(device));
  at::Tensor y = at::randint(10, {o.batch}, at::TensorOptions().dtype(at::kLong).device(device));
  std::vector<double> times;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    comm.barrier();
    const auto start = Clock::now();
    if (sync) sync->prepare();
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    if (sync) sync->finalize();
    opt.step();
    if (device.is_cuda()) model->parameters()[0].sum().item<float>();  // wait for the device
    if (i >= o.warmup)
      times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return root_value(comm, median(times));
}

}  // namespace

BenchCommOptions parse_bench_comm_args(const std::vector<std::string>& args) {
  BenchCommOptions o;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) throw InputError("bench-comm: " + a + " needs a value; see ddptrain --help");
    const std::string& v = args[++i];
    size_t used = 0;  // Characters the number took: all of them, or "3x" would pass as 3.
    auto whole = [&](const std::string& flag, const std::string& text, auto parse) {
      auto value = parse();
      if (used != text.size()) throw InputError("bench-comm: bad value '" + text + "' for " + flag);
      return value;
    };
    try {
      if (a == "--min-bytes")
        o.min_bytes = parse_bytes(a, v);
      else if (a == "--max-bytes")
        o.max_bytes = parse_bytes(a, v);
      else if (a == "--iters")
        o.iters = whole(a, v, [&] { return std::stoi(v, &used); });
      else if (a == "--model")
        o.model = v;
      else if (a == "--batch")
        o.batch = whole(a, v, [&] { return std::stoll(v, &used); });
      else if (a == "--steps")
        o.steps = whole(a, v, [&] { return std::stoi(v, &used); });
      else if (a == "--bucket-mb")
        o.bucket_mb = whole(a, v, [&] { return std::stod(v, &used); });
      else
        throw InputError("bench-comm: unknown argument '" + a + "'; see ddptrain --help");
    } catch (const std::logic_error&) {
      throw InputError("bench-comm: bad value '" + v + "' for " + a);
    }
  }
  if (o.iters < 1 || o.steps < 1 || o.batch < 1)
    throw InputError("bench-comm: --iters, --steps and --batch must be >= 1");
  if (!(o.bucket_mb >= 0.001)) throw InputError("bench-comm: --bucket-mb must be >= 0.001");
  make_model(o.model);  // validates the name
  return o;
}

void run_bench_comm(Communicator& comm, const BenchCommOptions& o) {
  const at::Device device(o.device);
  message_sizes(comm, o, device);
  const double none = step_ms(comm, o, device, "none");
  const double after = step_ms(comm, o, device, "after");
  const double overlap = step_ms(comm, o, device, "overlap");
  if (comm.rank() == 0) {
    std::printf("\n%s, batch %lld per rank, %d ranks, device %s: ms per step (median of %d)\n",
                o.model.c_str(), static_cast<long long>(o.batch), comm.size(), device.str().c_str(), o.steps);
    std::printf("  compared against: the same step with no gradient sync (compute floor)\n");
    std::printf("%12s %14s %12s %16s\n", "no sync", "sync after bwd", "overlap", "comm hidden");
    const double exposed = after - none;
    const double hidden = exposed > 0 ? (after - overlap) / exposed : 0.0;
    std::printf("%12.2f %14.2f %12.2f %15.0f%%\n", none, after, overlap, 100.0 * hidden);
  }
}

}  // namespace ddp
