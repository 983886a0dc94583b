// Input pipeline throughput on its own (no model): images/s that Batcher delivers per dataset
// shape, device vs host pipeline, augmentation off/on, at the trainer's batch of 64, as the
// trainer drives it (shuffled indices, the host pipeline prefetching one batch ahead).
// For comparison it also measures the seed CNN's training step (forward, backward, SGD) at the
// same batch and thread count: the pipeline is not the bottleneck while its rate is well above that.
// Prints a table; asserts nothing about time.
//
// Each cell is the median of 3 runs (the machines this was written on are shared and noisy).
//
// usage: bench_input [threads=1] [batches=300]
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ddp/data/batcher.h"
#include "ddp/data/dataset.h"
#include "ddp/train/models.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBatch = 64;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ddp::ImageDataset random_set(const std::string& name, int64_t n, int64_t channels, int64_t classes) {
  ddp::ImageDataset d;
  d.name = name;
  d.images = torch::randint(0, 256, {n, channels, 32, 32}, torch::kByte);
  d.labels = torch::randint(0, classes, {n}, torch::kLong);
  d.num_classes = classes;
  return d;
}

double pipeline_rate(const ddp::ImageDataset& d, ddp::InputPipeline pipeline, bool augment, int64_t batches) {
  ddp::Batcher batcher(d, torch::kCPU, pipeline);
  const std::vector<int64_t> perm = [&] {
    at::Tensor p = torch::randperm(d.size(), torch::kLong);
    return std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
  }();
  auto slice = [&](int64_t k, std::vector<int64_t>* idx, std::vector<int64_t>* pos) {
    const int64_t lo = (k * kBatch) % (d.size() - kBatch);
    idx->assign(perm.begin() + lo, perm.begin() + lo + kBatch);
    pos->resize(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) (*pos)[i] = lo + i;
  };
  std::vector<int64_t> idx, pos;
  double sink = 0;
  const auto start = Clock::now();
  for (int64_t k = 0; k < batches; ++k) {
    slice(k, &idx, &pos);
    ddp::Batch b = batcher.get(idx, pos, augment, 1, 0);
    if (k + 1 < batches) {
      slice(k + 1, &idx, &pos);
      batcher.prefetch(idx, pos, augment, 1, 0);
    }
    sink += b.images[0][0][0][0].item<float>();  // Use the batch (forces any lazy work).
  }
  const double secs = seconds_since(start);
  if (sink == 12345.678) std::printf(" ");
  return static_cast<double>(batches * kBatch) / secs;
}

double seed_cnn_rate(int64_t channels, int64_t classes, int64_t steps) {
  torch::manual_seed(0);
  auto model = ddp::make_model("seed_cnn", channels, classes);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01));
  at::Tensor x = torch::randn({kBatch, channels, 32, 32});
  at::Tensor y = torch::randint(0, classes, {kBatch}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    opt.step();
  };
  for (int i = 0; i < 5; ++i) step();  // Warm-up.
  const auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  return static_cast<double>(steps * kBatch) / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t batches = argc > 2 ? std::atoll(argv[2]) : 300;
  at::set_num_threads(threads);
  std::printf(
      "bench_input: batch %ld, %ld batches per run, median of 3 runs, %d intra-op thread(s), CPU device\n",
      static_cast<long>(kBatch), static_cast<long>(batches), threads);
  struct Set {
    std::string label;
    ddp::ImageDataset data;
  };
  std::vector<Set> sets;
  sets.push_back({"cifar10 (synthetic, 50000x3x32x32)", ddp::make_synthetic_dataset(50000, 1)});
  sets.push_back({"fashion_mnist (60000x1x32x32)", random_set("fashion_mnist", 60000, 1, 10)});
  sets.push_back({"cifar100 (50000x3x32x32)", random_set("cifar100", 50000, 3, 100)});
  std::printf("\n| dataset | pipeline | augment | images/s |\n| --- | --- | --- | ---: |\n");
  for (const Set& s : sets) {
    for (auto pipeline : {ddp::InputPipeline::kDevice, ddp::InputPipeline::kHost}) {
      for (bool augment : {false, true}) {
        std::vector<double> rates;
        for (int rep = 0; rep < 3; ++rep) rates.push_back(pipeline_rate(s.data, pipeline, augment, batches));
        std::sort(rates.begin(), rates.end());
        const double rate = rates[1];
        std::printf("| %s | %s | %s | %.0f |\n", s.label.c_str(),
                    pipeline == ddp::InputPipeline::kDevice ? "device" : "host", augment ? "on" : "off",
                    rate);
        std::fflush(stdout);
      }
    }
  }
  std::printf(
      "\ncompared with: the seed CNN's training step (forward + backward + SGD, batch %ld, %d thread(s)):\n",
      static_cast<long>(kBatch), threads);
  std::printf("| model input | images/s |\n| --- | ---: |\n");
  std::printf("| 3x32x32, 10 classes | %.0f |\n", seed_cnn_rate(3, 10, 100));
  std::printf("| 1x32x32, 10 classes | %.0f |\n", seed_cnn_rate(1, 10, 100));
  std::printf("| 3x32x32, 100 classes | %.0f |\n", seed_cnn_rate(3, 100, 100));
  return 0;
}
