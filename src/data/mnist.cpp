#include "ddp/data/mnist.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/core/files.h"

namespace ddp {
namespace {

constexpr int kPadTo = 32;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// The whole (decompressed) content; zlib reads plain files unchanged.
std::vector<uint8_t> read_all(const std::string& path) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f)
    throw InputError("cannot read IDX file " + path + ": " + std::strerror(errno) + "; check data.root");
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    const int n = gzread(f.get(), buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f.get(), &code);
      throw InputError("IDX file " + path + " is corrupt or truncated (" + (msg ? msg : "zlib error") +
                       "); download the dataset again");
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Checks the header of an IDX file of uint8 with `ndim` dimensions; returns the dimensions.
std::vector<int64_t> parse_header(const std::vector<uint8_t>& bytes, const std::string& path, int ndim,
                                  const char* what) {
  const uint32_t want = 0x800u | static_cast<uint32_t>(ndim);
  if (bytes.size() < 4 || be32(bytes.data()) != want) {
    char got[16] = "(none)";
    if (bytes.size() >= 4) std::snprintf(got, sizeof(got), "0x%08x", be32(bytes.data()));
    char expect[16];
    std::snprintf(expect, sizeof(expect), "0x%08x", want);
    throw InputError("IDX file " + path + ": magic number " + got + " is not " + expect + " (uint8 " + what +
                     " with " + std::to_string(ndim) + " dimension(s)); is it the right file?");
  }
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < header) {
    throw InputError("IDX file " + path + " is truncated: " + std::to_string(bytes.size()) +
                     " bytes, shorter than its " + std::to_string(header) + "-byte header");
  }
  std::vector<int64_t> dims(ndim);
  int64_t expected = 1;
  for (int i = 0; i < ndim; ++i)
    expected *= dims[i] = be32(bytes.data() + 4 + size_t{4} * static_cast<size_t>(i));
  if (static_cast<int64_t>(bytes.size() - header) != expected) {
    std::string shape;
    for (int64_t d : dims) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    throw InputError("IDX file " + path + " is truncated or corrupt: its header says " + shape + " = " +
                     std::to_string(expected) + " bytes of data but it holds " +
                     std::to_string(bytes.size() - header) + "; download the dataset again");
  }
  return dims;
}

// data.root/<name> or data.root/<subdir>/<name>, with or without ".gz".
std::string find_idx(const std::string& root, const std::string& subdir, const std::string& name,
                     const std::string& dataset) {
  for (const std::string& dir : {root, files::join(root, subdir)}) {
    for (const char* suffix : {"", ".gz"}) {
      std::string p = files::join(dir, name + suffix);
      if (files::is_regular_file(p)) return p;
    }
  }
  throw InputError(dataset + " not found: neither " + files::join(root, name) + "(.gz) nor " +
                   files::join(files::join(root, subdir), name) +
                   "(.gz) exists; set data.root to the folder "
                   "holding the IDX files" +
                   (dataset == "Fashion-MNIST" ? " (Debian's dataset-fashion-mnist package installs them in "
                                                 "/usr/share/datasets/fashion-mnist)"
                                               : ""));
}

}  // namespace

at::Tensor read_idx_images(const std::string& path) {
  const std::vector<uint8_t> bytes = read_all(path);
  const std::vector<int64_t> dims = parse_header(bytes, path, 3, "images");
  at::Tensor t = at::empty(dims, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + 16, t.numel());
  return t;
}

at::Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  const std::vector<uint8_t> bytes = read_all(path);
  const std::vector<int64_t> dims = parse_header(bytes, path, 1, "labels");
  for (int64_t i = 0; i < dims[0]; ++i) {
    if (bytes[8 + i] >= num_classes) {
      throw InputError("IDX file " + path + ": label " + std::to_string(bytes[8 + i]) + " of item " +
                       std::to_string(i) + " at offset " + std::to_string(8 + i) + " is out of range [0, " +
                       std::to_string(num_classes) + "); the file is corrupt or not a label file");
    }
  }
  at::Tensor t = at::empty({dims[0]}, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + 8, t.numel());
  return t.to(at::kLong);
}

ImageDataset load_mnist(const std::string& root, bool train, const std::string& name) {
  const bool fashion = name == "fashion_mnist";
  const std::string dataset = fashion ? "Fashion-MNIST" : "MNIST";
  const std::string subdir = fashion ? "fashion-mnist" : "mnist";
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_idx(root, subdir, prefix + "-images-idx3-ubyte", dataset);
  const std::string labels_path = find_idx(root, subdir, prefix + "-labels-idx1-ubyte", dataset);
  at::Tensor images = read_idx_images(images_path);
  at::Tensor labels = read_idx_labels(labels_path, 10);
  if (images.size(0) != labels.size(0)) {
    throw InputError(dataset + ": " + images_path + " holds " + std::to_string(images.size(0)) +
                     " images but " + labels_path + " holds " + std::to_string(labels.size(0)) +
                     " labels; the files do not belong together");
  }
  const int64_t rows = images.size(1), cols = images.size(2);
  if (rows > kPadTo || cols > kPadTo) {
    throw InputError(dataset + ": images of " + images_path + " are " + std::to_string(rows) + "x" +
                     std::to_string(cols) + ", larger than the 32x32 that ddptrain's models take");
  }
  const int64_t top = (kPadTo - rows) / 2, left = (kPadTo - cols) / 2;
  ImageDataset d;
  d.name = name;
  d.images =
      at::constant_pad_nd(images.unsqueeze(1), {left, kPadTo - cols - left, top, kPadTo - rows - top}, 0)
          .contiguous();
  d.labels = labels;
  d.num_classes = 10;
  // The usual 28x28 statistics (MNIST 0.1307/0.3081, Fashion-MNIST 0.2860/0.3530) carried over to the
  // zero-padded 32x32 images: mean * 784/1024, std from E[x^2] * 784/1024 - mean^2.
  if (fashion) {
    d.mean = {0.2190f, 0.f, 0.f};
    d.std = {0.3318f, 1.f, 1.f};
  } else {
    d.mean = {0.1001f, 0.f, 0.f};
    d.std = {0.2752f, 1.f, 1.f};
  }
  return d;
}

}  // namespace ddp
