#include "ddp/cifar100.h"

#include <ATen/ATen.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "ddp/check.h"
#include "ddp/cifar10.h"
#include "ddp/files.h"

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
  *images = raw.narrow(1, 2, 3 * 32 * 32).reshape({n, 3, 32, 32}).clone();
}

void write_cifar100_file(const std::string& path, const at::Tensor& images, const at::Tensor& coarse_labels,
                         const at::Tensor& fine_labels) {
  DDP_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == 32 && images.size(3) == 32,
            "CIFAR images must be [N,3,32,32], got " << images.sizes());
  const int64_t n = images.size(0);
  DDP_CHECK(coarse_labels.numel() == n && fine_labels.numel() == n, "labels and images differ in count");
  at::Tensor raw = at::empty({n, kCifar100RecordBytes}, at::kByte);
  raw.select(1, 0).copy_(coarse_labels.to(at::kByte));
  raw.select(1, 1).copy_(fine_labels.to(at::kByte));
  raw.narrow(1, 2, 3 * 32 * 32).copy_(images.to(at::kByte).reshape({n, 3 * 32 * 32}));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  DDP_CHECK(static_cast<bool>(out), "cannot write " << path << ": " << std::strerror(errno));
  out.write(reinterpret_cast<const char*>(raw.data_ptr<uint8_t>()), raw.numel());
  DDP_CHECK(static_cast<bool>(out), "error writing " << path << ": " << std::strerror(errno));
}

ImageDataset load_cifar100(const std::string& root, bool train) {
  std::string dir = files::join(root, "cifar-100-binary");
  if (!files::is_directory(dir)) dir = root;
  const std::string path = files::join(dir, train ? "train.bin" : "test.bin");
  if (!files::exists(path)) {
    throw InputError("CIFAR-100 not found: " + path + " does not exist. Put the binary version "
                     "(cifar-100-binary.tar.gz, extracted) under data.root=" + root + " so that " +
                     files::join(root, "cifar-100-binary/") + " exists, set data.root, or set data.download=true");
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
