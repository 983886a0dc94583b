#include "ddp/data/cifar100.h"

#include <ATen/ATen.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "ddp/data/cifar10.h"

namespace ddp {

void read_cifar100_file(const std::string& path, at::Tensor* images, at::Tensor* fine_labels) {
  at::Tensor raw = read_cifar_records(path, kCifar100RecordBytes, "CIFAR-100", "a CIFAR-100 binary file",
                                      "cifar-100-binary/");
  const int64_t n = raw.size(0);
  const uint8_t* p = raw.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int coarse = p[i * kCifar100RecordBytes], fine = p[i * kCifar100RecordBytes + 1];
    if (coarse >= 20 || fine >= 100) {
      throw InputError("CIFAR-100 file " + path + ": labels (coarse " + std::to_string(coarse) + ", fine " +
                       std::to_string(fine) + ") of record " + std::to_string(i) + " at offset " +
                       std::to_string(i * kCifar100RecordBytes) +
                       " are out of range (coarse < 20, fine < 100); the file is corrupt or not CIFAR-100 "
                       "(a CIFAR-10 file has 3073-byte records), download the dataset again");
    }
  }
  *fine_labels = raw.select(1, 1).to(at::kLong);
  *images = raw.narrow(1, 2, int64_t{3} * 32 * 32).reshape({n, 3, 32, 32}).clone();
}

ImageDataset load_cifar100(const std::string& root, bool train) {
  std::string dir = files::join(root, "cifar-100-binary");
  if (!files::is_directory(dir)) dir = root;
  const std::string path = files::join(dir, train ? "train.bin" : "test.bin");
  if (!files::exists(path)) {
    throw InputError("CIFAR-100 not found: " + path +
                     " does not exist. Put the binary version "
                     "(cifar-100-binary.tar.gz, extracted) under data.root=" +
                     root + " so that " + files::join(root, "cifar-100-binary/") +
                     " exists, set data.root, or set data.download=true");
  }
  ImageDataset d;
  read_cifar100_file(path, &d.images, &d.labels);
  d.name = "cifar100";
  d.num_classes = 100;
  d.mean = {0.5071f, 0.4865f, 0.4409f};
  d.std = {0.2673f, 0.2564f, 0.2762f};
  return d;
}

}  // namespace ddp
