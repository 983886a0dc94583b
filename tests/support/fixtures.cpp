#include "fixtures.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/data/cifar10.h"
#include "ddp/data/cifar100.h"

namespace ddp::testing {
namespace {
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
}  // namespace

void write_cifar10_file(const std::string& path, const at::Tensor& images, const at::Tensor& labels) {
  DDP_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == 32 && images.size(3) == 32,
            "CIFAR images must be [N,3,32,32], got " << images.sizes());
  DDP_CHECK(labels.size(0) == images.size(0), "labels and images differ in count");
  const int64_t n = images.size(0);
  at::Tensor raw = at::empty({n, kCifarRecordBytes}, at::kByte);
  raw.select(1, 0).copy_(labels.to(at::kByte));
  raw.narrow(1, 1, 3 * 32 * 32).copy_(images.to(at::kByte).reshape({n, 3 * 32 * 32}));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  DDP_CHECK(static_cast<bool>(out), "cannot write " << path << ": " << std::strerror(errno));
  out.write(reinterpret_cast<const char*>(raw.data_ptr<uint8_t>()), raw.numel());
  DDP_CHECK(static_cast<bool>(out), "error writing " << path << ": " << std::strerror(errno));
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

void write_idx_file(const std::string& path, const at::Tensor& data) {
  DDP_CHECK(data.dim() == 1 || data.dim() == 3,
            "IDX writer takes [N] or [N,rows,cols], got " << data.sizes());
  at::Tensor bytes = data.to(at::kByte).contiguous();
  std::vector<uint8_t> out = {0, 0, 8, static_cast<uint8_t>(data.dim())};
  for (int64_t d : data.sizes()) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), gz ? "wb" : "wbT"));
  DDP_CHECK(f != nullptr, "cannot write " << path << ": " << std::strerror(errno));
  DDP_CHECK(gzwrite(f.get(), out.data(), static_cast<unsigned>(out.size())) == static_cast<int>(out.size()),
            "error writing " << path);
}

}  // namespace ddp::testing
