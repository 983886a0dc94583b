// An image classification dataset held in memory as uint8, and the choice of dataset by name.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace ddp {

class Communicator;
struct Config;

struct ImageDataset {
  std::string name;
  at::Tensor images;  // uint8 [N, C, H, W]
  at::Tensor labels;  // int64 [N]
  int64_t num_classes = 10;
  std::array<float, 3> mean{0.f, 0.f, 0.f};  // Per-channel normalisation (of values in [0, 1]).
  std::array<float, 3> std{1.f, 1.f, 1.f};

  int64_t size() const { return images.size(0); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// The train or test split of config.data.dataset ("cifar10", "cifar100", "mnist", "fashion_mnist"
// or "synthetic"), cut to data.limit_train / data.limit_test.
ImageDataset load_dataset(const Config& config, bool train);

// With data.download=true, makes config.data.dataset present under data.root before any rank
// reads it (see download.h for what is fetched and when). Collective: every rank calls it.
// Local rank 0 of each node fetches; the other ranks wait in one all-gather (bounded by
// dist.timeout_s) that also carries each fetcher's error text, so every rank throws the same
// InputError (printed once, exit 2) when any node failed, and nobody waits forever.
// Nodes sharing data.root each fetch under unique temporary names and rename into place.
// Does nothing (and no collective) when data.download=false.
void prepare_dataset(const Config& config, Communicator& comm, int local_rank);

// A learnable CIFAR-shaped dataset generated from `seed`: each class has its own colour and
// stripe pattern, plus noise. For smoke runs and tests where the real data is not at hand.
ImageDataset make_synthetic_dataset(int64_t size, uint64_t seed);

}  // namespace ddp
