#include "ddp/data/batcher.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "ddp/core/check.h"

namespace ddp {
namespace {

constexpr int kPad = 4;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// On the CPU the result views `v`'s memory: use it only while `v` lives.
at::Tensor to_index(const std::vector<int64_t>& v, const at::Device& device) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong)
      .to(device);
}

}  // namespace

AugmentParams augment_params(uint64_t seed, int64_t epoch, int64_t position, int64_t cutout, int64_t height,
                             int64_t width) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^
                                static_cast<uint64_t>(position));
  AugmentParams p;
  p.dx = static_cast<int>(h % (2 * kPad + 1));
  p.dy = static_cast<int>((h >> 8) % (2 * kPad + 1));
  p.flip = ((h >> 16) & 1) != 0;
  if (cutout > 0) {
    DDP_CHECK(cutout <= height && cutout <= width,
              "cutout " << cutout << " exceeds the image " << height << "x" << width);
    p.cut_y = static_cast<int>(((h >> 24) & 0xFFFF) % static_cast<uint64_t>(height - cutout + 1));
    p.cut_x = static_cast<int>(((h >> 40) & 0xFFFF) % static_cast<uint64_t>(width - cutout + 1));
  }
  return p;
}

Batcher::Batcher(const ImageDataset& dataset, const at::Device& device, InputPipeline pipeline,
                 int64_t cutout)
    : pipeline_(pipeline), device_(device), cutout_(cutout) {
  const at::Device home = pipeline == InputPipeline::kDevice ? device : at::Device(at::kCPU);
  images_ = dataset.images.to(home).contiguous();
  labels_ = dataset.labels.to(home).contiguous();
  const int64_t c = dataset.channels();
  DDP_CHECK(c >= 1 && c <= 3, "datasets of 1-3 channels are supported, got " << c);
  if (cutout < 0 || cutout > std::min(dataset.height(), dataset.width())) {
    throw InputError("data.cutout=" + std::to_string(cutout) + " does not fit " + dataset.name + "'s " +
                     std::to_string(dataset.height()) + "x" + std::to_string(dataset.width()) +
                     " images; use 0 (off) up to " +
                     std::to_string(std::min(dataset.height(), dataset.width())));
  }
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = 1.0f / (255.0f * dataset.std[i]);
    shift[i] = -dataset.mean[i] / dataset.std[i];
  }
  scale_ = at::tensor(scale).view({1, c, 1, 1}).to(device);
  shift_ = at::tensor(shift).view({1, c, 1, 1}).to(device);
}

Batcher::~Batcher() {
  if (pending_.valid()) pending_.wait();  // The thread reads images_: let it finish first.
}

Batch Batcher::finish(const Cut& c) const {
  Batch b;
  b.images = at::addcmul(shift_, c.images.to(at::kFloat), scale_);
  b.labels = c.labels;
  if (c.cutout.defined()) {
    // Zero after normalisation: the square takes the dataset's mean colour.
    const int64_t n = b.images.size(0), h = b.images.size(2), w = b.images.size(3);
    at::Tensor y0 = c.cutout.select(1, 0).view({n, 1, 1, 1}), x0 = c.cutout.select(1, 1).view({n, 1, 1, 1});
    at::Tensor ys = at::arange(h, c.cutout.options()).view({1, 1, h, 1});
    at::Tensor xs = at::arange(w, c.cutout.options()).view({1, 1, 1, w});
    at::Tensor in_rows = (ys >= y0).logical_and_(ys < y0 + cutout_);  // [B, 1, H, 1]
    at::Tensor in_cols = (xs >= x0).logical_and_(xs < x0 + cutout_);  // [B, 1, 1, W]
    at::Tensor inside = at::logical_and(in_rows, in_cols);
    b.images.masked_fill_(inside, 0.0);
  }
  return b;
}

Batcher::Cut Batcher::cut(const Request& r) const {
  const at::Device device = images_.device();
  at::Tensor idx = to_index(r.indices, device);
  at::Tensor x = images_.index_select(0, idx);
  at::Tensor y = labels_.index_select(0, idx);
  at::Tensor cut_box;
  if (r.augment) {
    DDP_CHECK(r.positions.size() == r.indices.size(), "one position per index");
    const int64_t n = static_cast<int64_t>(r.indices.size());
    const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t pw = w + int64_t{2} * kPad;
    std::vector<int64_t> dx(n), dy(n), cut_yx(cutout_ > 0 ? 2 * n : 0);
    std::vector<uint8_t> flip(n);
    for (int64_t i = 0; i < n; ++i) {
      const AugmentParams p = augment_params(r.seed, r.epoch, r.positions[i], cutout_, h, w);
      dx[i] = p.dx, dy[i] = p.dy, flip[i] = p.flip;
      if (cutout_ > 0) cut_yx[2 * i] = p.cut_y, cut_yx[2 * i + 1] = p.cut_x;
    }
    // An owning tensor: it outlives cut_yx (to_index's from_blob would not on the CPU).
    if (cutout_ > 0) cut_box = at::tensor(cut_yx, at::kLong).view({n, 2}).to(device);
    at::Tensor padded = at::constant_pad_nd(x, {kPad, kPad, kPad, kPad}, 0).view({n, c, -1});
    at::Tensor rows = to_index(dy, device).view({n, 1, 1}) + at::arange(h, idx.options()).view({1, h, 1});
    at::Tensor cols = to_index(dx, device).view({n, 1, 1}) + at::arange(w, idx.options()).view({1, 1, w});
    at::Tensor linear = (rows * pw + cols).view({n, 1, h * w}).expand({n, c, h * w});
    x = at::gather(padded, 2, linear).view({n, c, h, w});
    at::Tensor flip_mask = at::from_blob(flip.data(), {n}, at::kByte).to(device).to(at::kBool);
    x = at::where(flip_mask.view({n, 1, 1, 1}), x.flip({3}), x);
  }
  if (pipeline_ == InputPipeline::kHost && device_.is_cuda()) {
    x = x.pin_memory();
    y = y.pin_memory();
    if (cut_box.defined()) cut_box = cut_box.pin_memory();
  }
  return {x, y, cut_box};
}

Batch Batcher::to_device(const Cut& c) const {
  const bool async = c.images.is_pinned();
  auto move = [&](const at::Tensor& t) { return t.defined() ? t.to(device_, /*non_blocking=*/async) : t; };
  return finish({move(c.images), move(c.labels), move(c.cutout)});
}

Batch Batcher::get(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions, bool augment,
                   uint64_t seed, int64_t epoch) {
  Request r{indices, positions, augment, seed, epoch};
  if (pipeline_ == InputPipeline::kDevice) {
    return finish(cut(r));
  }
  if (pending_.valid()) {
    Cut c = pending_.get();  // Rethrows what the background thread threw.
    const bool hit = pending_request_ && *pending_request_ == r;
    pending_request_.reset();
    if (hit) return to_device(c);
  }
  return to_device(cut(r));
}

void Batcher::prefetch(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions,
                       bool augment, uint64_t seed, int64_t epoch) {
  if (pipeline_ == InputPipeline::kDevice) return;
  if (pending_.valid()) pending_.wait();  // At most one batch ahead.
  pending_request_ = std::make_unique<Request>(Request{indices, positions, augment, seed, epoch});
  const Request* r = pending_request_.get();
  pending_ = std::async(std::launch::async, [this, r] { return cut(*r); });
}

Batch Batcher::range(int64_t begin, int64_t n) const {
  if (pipeline_ == InputPipeline::kDevice)
    return finish({images_.narrow(0, begin, n), labels_.narrow(0, begin, n), {}});
  return to_device({images_.narrow(0, begin, n), labels_.narrow(0, begin, n), {}});
}

}  // namespace ddp
