#include "ddp/dataset.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "ddp/check.h"
#include "ddp/cifar10.h"
#include "ddp/config.h"

namespace ddp {

ImageDataset make_synthetic_dataset(int64_t size, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t classes = 10;
  at::Tensor labels = at::randint(classes, {size}, gen, at::kLong);
  // Class k: a base colour and horizontal stripes with period 2 + k % 5, direction by k / 5.
  at::Tensor k = labels.to(at::kFloat).view({size, 1, 1, 1});
  at::Tensor channel = at::arange(3, at::kFloat).view({1, 3, 1, 1});
  at::Tensor row = at::arange(32, at::kFloat).view({1, 1, 32, 1});
  at::Tensor col = at::arange(32, at::kFloat).view({1, 1, 1, 32});
  at::Tensor colour = 0.5 + 0.12 * at::sin(k * 0.9 + channel * 2.1);
  at::Tensor period = 2.0 + at::fmod(k, 5.0);
  at::Tensor coord = at::where(k < 5, row, col);
  at::Tensor stripes = 0.12 * at::sin(coord * (2.0 * M_PI) / period);
  at::Tensor noise = 0.35 * at::randn({size, 3, 32, 32}, gen);
  at::Tensor image = (colour + stripes + noise).clamp(0.0, 1.0);
  ImageDataset d;
  d.name = "synthetic";
  d.images = (image * 255.0).round().to(at::kByte).contiguous();
  d.labels = labels;
  d.num_classes = classes;
  d.mean = {0.5f, 0.5f, 0.5f};
  d.std = {0.25f, 0.25f, 0.25f};
  return d;
}

ImageDataset load_dataset(const Config& config, bool train) {
  ImageDataset d;
  if (config.data.dataset == "cifar10") {
    d = load_cifar10(config.data.root, train);
  } else if (config.data.dataset == "synthetic") {
    // Train and test come from different seeds so that test accuracy measures generalisation.
    d = make_synthetic_dataset(train ? config.data.synthetic_train : config.data.synthetic_test,
                               static_cast<uint64_t>(config.train.seed) * 2 + (train ? 1 : 2));
  } else {
    throw InputError("unknown data.dataset '" + config.data.dataset + "'");
  }
  const int64_t limit = train ? config.data.limit_train : config.data.limit_test;
  if (limit > 0 && limit < d.size()) {
    d.images = d.images.narrow(0, 0, limit).contiguous();
    d.labels = d.labels.narrow(0, 0, limit).contiguous();
  }
  return d;
}

}  // namespace ddp
