#include "ddp/batcher.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace ddp {
namespace {

ImageDataset tiny(int64_t n) {
  ImageDataset d;
  d.name = "tiny";
  d.images = torch::randint(0, 256, {n, 3, 32, 32}, torch::kByte);
  d.labels = torch::arange(n, torch::kLong) % 10;
  d.mean = {0.5f, 0.4f, 0.3f};
  d.std = {0.2f, 0.25f, 0.5f};
  return d;
}

TEST(Batcher, NormalisesAndKeepsOrder) {
  ImageDataset d = tiny(8);
  Batcher b(d, torch::kCPU);
  Batch x = b.get({5, 2}, {0, 1}, false, 0, 0);
  auto expected = (d.images.index_select(0, torch::tensor({5, 2})).to(torch::kFloat) / 255.0 -
                   torch::tensor({0.5f, 0.4f, 0.3f}).view({1, 3, 1, 1})) /
                  torch::tensor({0.2f, 0.25f, 0.5f}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(x.images, expected, 1e-5, 1e-5));
  EXPECT_EQ(x.labels[0].item<int64_t>(), 5);
  EXPECT_EQ(x.labels[1].item<int64_t>(), 2);
  Batch r = b.range(2, 3);
  EXPECT_EQ(r.images.size(0), 3);
  EXPECT_EQ(r.labels[0].item<int64_t>(), 2);
}

TEST(Batcher, AugmentationMatchesPerImageCropAndFlip) {
  ImageDataset d = tiny(6);
  ImageDataset raw = d;
  raw.mean = {0, 0, 0};
  raw.std = {1.f / 255, 1.f / 255, 1.f / 255};  // identity normalisation: pixel values
  Batcher b(raw, torch::kCPU);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5}, pos = {10, 11, 12, 13, 14, 15};
  Batch x = b.get(idx, pos, true, 42, 3);
  for (int i = 0; i < 6; ++i) {
    AugmentParams p = augment_params(42, 3, pos[i]);
    auto padded = torch::constant_pad_nd(d.images[i].to(torch::kFloat), {4, 4, 4, 4}, 0);
    auto crop = padded.narrow(1, p.dy, 32).narrow(2, p.dx, 32);
    if (p.flip) crop = crop.flip({2});
    EXPECT_TRUE(torch::equal(x.images[i], crop)) << "sample " << i;
  }
}

TEST(Batcher, AugmentationIsDeterministicAndVaries) {
  EXPECT_EQ(augment_params(1, 2, 3).dx, augment_params(1, 2, 3).dx);
  EXPECT_EQ(augment_params(1, 2, 3).dy, augment_params(1, 2, 3).dy);
  std::set<std::tuple<int, int, bool>> by_position, by_epoch;
  for (int i = 0; i < 200; ++i) {
    auto p = augment_params(1, 0, i);
    EXPECT_GE(p.dx, 0);
    EXPECT_LE(p.dx, 8);
    by_position.insert({p.dx, p.dy, p.flip});
    auto q = augment_params(1, i, 7);
    by_epoch.insert({q.dx, q.dy, q.flip});
  }
  EXPECT_GT(by_position.size(), 50u);  // 162 combinations possible
  EXPECT_GT(by_epoch.size(), 50u);
}

}  // namespace
}  // namespace ddp
