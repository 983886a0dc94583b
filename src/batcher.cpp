#include "ddp/batcher.h"

#include <ATen/ATen.h>

#include "ddp/check.h"

namespace ddp {
namespace {

constexpr int kPad = 4;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

at::Tensor to_index(const std::vector<int64_t>& v, const at::Device& device) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong)
      .to(device);
}

}  // namespace

AugmentParams augment_params(uint64_t seed, int64_t epoch, int64_t position) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^
                                static_cast<uint64_t>(position));
  AugmentParams p;
  p.dx = static_cast<int>(h % (2 * kPad + 1));
  p.dy = static_cast<int>((h >> 8) % (2 * kPad + 1));
  p.flip = ((h >> 16) & 1) != 0;
  return p;
}

Batcher::Batcher(const ImageDataset& dataset, const at::Device& device) {
  images_ = dataset.images.to(device).contiguous();
  labels_ = dataset.labels.to(device).contiguous();
  const int64_t c = dataset.channels();
  DDP_CHECK(c >= 1 && c <= 3, "datasets of 1-3 channels are supported, got " << c);
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = 1.0f / (255.0f * dataset.std[i]);
    shift[i] = -dataset.mean[i] / dataset.std[i];
  }
  scale_ = at::tensor(scale).view({1, c, 1, 1}).to(device);
  shift_ = at::tensor(shift).view({1, c, 1, 1}).to(device);
}

Batch Batcher::finish(at::Tensor images_u8, at::Tensor labels) const {
  Batch b;
  b.images = at::addcmul(shift_, images_u8.to(at::kFloat), scale_);
  b.labels = std::move(labels);
  return b;
}

Batch Batcher::get(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions,
                   bool augment, uint64_t seed, int64_t epoch) const {
  const at::Device device = images_.device();
  at::Tensor idx = to_index(indices, device);
  at::Tensor x = images_.index_select(0, idx);
  at::Tensor y = labels_.index_select(0, idx);
  if (augment) {
    DDP_CHECK(positions.size() == indices.size(), "one position per index");
    const int64_t n = static_cast<int64_t>(indices.size());
    const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t pw = w + 2 * kPad;
    std::vector<int64_t> dx(n), dy(n);
    std::vector<uint8_t> flip(n);
    for (int64_t i = 0; i < n; ++i) {
      const AugmentParams p = augment_params(seed, epoch, positions[i]);
      dx[i] = p.dx, dy[i] = p.dy, flip[i] = p.flip;
    }
    at::Tensor padded = at::constant_pad_nd(x, {kPad, kPad, kPad, kPad}, 0).view({n, c, -1});
    at::Tensor rows = to_index(dy, device).view({n, 1, 1}) + at::arange(h, idx.options()).view({1, h, 1});
    at::Tensor cols = to_index(dx, device).view({n, 1, 1}) + at::arange(w, idx.options()).view({1, 1, w});
    at::Tensor linear = (rows * pw + cols).view({n, 1, h * w}).expand({n, c, h * w});
    x = at::gather(padded, 2, linear).view({n, c, h, w});
    at::Tensor flip_mask = at::from_blob(flip.data(), {n}, at::kByte).to(device).to(at::kBool);
    x = at::where(flip_mask.view({n, 1, 1, 1}), x.flip({3}), x);
  }
  return finish(x, y);
}

Batch Batcher::range(int64_t begin, int64_t n) const {
  return finish(images_.narrow(0, begin, n), labels_.narrow(0, begin, n));
}

}  // namespace ddp
