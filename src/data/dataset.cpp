#include "ddp/data/dataset.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "ddp/data/cifar10.h"
#include "ddp/data/cifar100.h"
#include "ddp/data/download.h"
#include "ddp/data/mnist.h"
#include "ddp/dist/communicator.h"

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
  switch (config.data.dataset) {
    case DatasetKind::kCifar10:
      d = load_cifar10(config.data.root, train);
      break;
    case DatasetKind::kCifar100:
      d = load_cifar100(config.data.root, train);
      break;
    case DatasetKind::kMnist:
    case DatasetKind::kFashionMnist:
      d = load_mnist(config.data.root, train, to_string(config.data.dataset));
      break;
    case DatasetKind::kSynthetic:
      // Train and test come from different seeds so that test accuracy measures generalisation.
      d = make_synthetic_dataset(train ? config.data.synthetic_train : config.data.synthetic_test,
                                 static_cast<uint64_t>(config.train.seed) * 2 + (train ? 1 : 2));
      break;
  }
  if (d.size() == 0) {
    throw InputError("data.dataset=" + to_string(config.data.dataset) + " under data.root '" +
                     config.data.root + "' has no " + (train ? "training" : "test") +
                     " images; check the files there");
  }
  const int64_t limit = train ? config.data.limit_train : config.data.limit_test;
  if (limit > 0 && limit < d.size()) {
    d.images = d.images.narrow(0, 0, limit).contiguous();
    d.labels = d.labels.narrow(0, 0, limit).contiguous();
  }
  return d;
}

void prepare_dataset(const Config& config, Communicator& comm, int local_rank) {
  // data.download concerns the sets that can be fetched; the others are read from data.root.
  if (!config.data.download) return;
  ArchiveSpec spec;
  if (config.data.dataset == DatasetKind::kCifar10) {
    spec = {"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "c32a1d4ab5d03f1284b67883e8d87530",
            "cifar-10-binary.tar.gz",
            "cifar-10-batches-bin",
            {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
             "data_batch_5.bin", "test_batch.bin"}};
  } else if (config.data.dataset == DatasetKind::kCifar100) {
    spec = {"https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            "03b5dce01913d631647c71ecec9e9cb8",
            "cifar-100-binary.tar.gz",
            "cifar-100-binary",
            {"train.bin", "test.bin"}};
  } else {
    return;
  }
  if (!config.data.url.empty()) spec.url = config.data.url;
  if (!config.data.md5.empty()) spec.md5 = config.data.md5;
  for (char& ch : spec.md5) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));

  // ---- local rank 0 of each node: fetch; the others go straight to the all-gather ----
  std::string error;
  if (local_rank == 0) {
    try {
      fetch_archive(spec, config.data.root, ::isatty(STDERR_FILENO) != 0);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  if (!error.empty()) {
    error = "data.download: " + error +
            ". Without network: put the extracted files under data.root and set "
            "data.download=false (docs/datasets.md), or train offline on Debian's Fashion-MNIST: "
            "bash scripts/train.sh --config configs/fashion_mnist.yaml";
  }
  // ---- every rank: agree on the outcome (Note [agreed start-up errors]) ----
  throw_if_any_rank_failed(comm, error, /*input_error=*/true);
}

}  // namespace ddp
