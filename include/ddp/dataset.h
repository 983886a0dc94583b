// An image classification dataset held in memory as uint8, and the choice of dataset by name.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace ddp {

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
};

// The train or test split of config.data.dataset, cut to data.limit_train / data.limit_test.
ImageDataset load_dataset(const Config& config, bool train);

// A learnable CIFAR-shaped dataset generated from `seed`: each class has its own colour and
// stripe pattern, plus noise. For smoke runs and tests where the real data is not at hand.
ImageDataset make_synthetic_dataset(int64_t size, uint64_t seed);

}  // namespace ddp
