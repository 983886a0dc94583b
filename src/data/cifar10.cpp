#include "ddp/data/cifar10.h"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "ddp/core/check.h"

namespace ddp {
namespace {

bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

at::Tensor read_cifar_records(const std::string& path, int64_t record_bytes, const std::string& dataset,
                              const std::string& format, const std::string& folder) {
  if (is_dir(path)) {
    throw InputError(dataset + " file " + path + " is a directory; check data.root (it must hold " + folder +
                     ")");
  }
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    throw InputError("cannot read " + dataset + " file " + path + ": " + std::strerror(errno) +
                     "; check data.root (it must hold " + folder + ")");
  }
  const int64_t bytes = in.tellg();
  if (bytes <= 0 || bytes % record_bytes != 0) {
    const int64_t whole = bytes / record_bytes;
    throw InputError(dataset + " file " + path + " is truncated or not " + format + ": " +
                     std::to_string(bytes) + " bytes is not a whole number of " +
                     std::to_string(record_bytes) + "-byte records (record " + std::to_string(whole) +
                     " at offset " + std::to_string(whole * record_bytes) +
                     " is incomplete); download the dataset again");
  }
  const int64_t n = bytes / record_bytes;
  at::Tensor raw = at::empty({n, record_bytes}, at::kByte);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(raw.data_ptr<uint8_t>()), bytes);
  if (!in) throw InputError("error reading " + dataset + " file " + path + ": " + std::strerror(errno));
  return raw;
}

void read_cifar10_file(const std::string& path, at::Tensor* images, at::Tensor* labels, int64_t num_classes) {
  at::Tensor raw = read_cifar_records(path, kCifarRecordBytes, "CIFAR-10", "a CIFAR binary batch",
                                      "cifar-10-batches-bin/");
  const int64_t n = raw.size(0);
  const uint8_t* p = raw.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int label = p[i * kCifarRecordBytes];
    if (label >= num_classes) {
      throw InputError("CIFAR-10 file " + path + ": label " + std::to_string(label) + " of record " +
                       std::to_string(i) + " at offset " + std::to_string(i * kCifarRecordBytes) +
                       " is out of range [0, " + std::to_string(num_classes) +
                       "); the file is corrupt, download the dataset again");
    }
  }
  *labels = raw.select(1, 0).to(at::kLong);
  *images = raw.narrow(1, 1, int64_t{3} * 32 * 32).reshape({n, 3, 32, 32}).clone();
}

ImageDataset load_cifar10(const std::string& root, bool train) {
  std::string dir = root + "/cifar-10-batches-bin";
  if (!is_dir(dir)) dir = root;
  const std::string probe = dir + (train ? "/data_batch_1.bin" : "/test_batch.bin");
  struct stat st {};
  if (stat(probe.c_str(), &st) != 0) {
    throw InputError("CIFAR-10 not found: " + probe +
                     " does not exist. Put the binary version "
                     "(cifar-10-binary.tar.gz, extracted) under data.root=" +
                     root + " so that " + root +
                     "/cifar-10-batches-bin/ exists, set data.root, or set data.download=true");
  }
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back(dir + "/test_batch.bin");
  }
  std::vector<at::Tensor> images, labels;
  for (const auto& f : files) {
    at::Tensor im, lb;
    read_cifar10_file(f, &im, &lb);
    images.push_back(im);
    labels.push_back(lb);
  }
  ImageDataset d;
  d.name = "cifar10";
  d.images = images.size() == 1 ? images[0] : at::cat(images);
  d.labels = labels.size() == 1 ? labels[0] : at::cat(labels);
  d.num_classes = 10;
  d.mean = {0.4914f, 0.4822f, 0.4465f};
  d.std = {0.2470f, 0.2435f, 0.2616f};
  return d;
}

}  // namespace ddp
