#include "ddp/data/batcher.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "test_files.h"

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

TEST(Batcher, CutoutSetsOneSquarePerImageToTheMean) {
  ImageDataset d = tiny(6);
  const int64_t side = 8;
  Batcher b(d, torch::kCPU, InputPipeline::kDevice, side);
  Batcher plain(d, torch::kCPU);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5}, pos = {20, 21, 22, 23, 24, 25};
  Batch x = b.get(idx, pos, true, 7, 2);
  Batch y = plain.get(idx, pos, true, 7, 2);  // the same crop and flip, no cutout
  for (int i = 0; i < 6; ++i) {
    AugmentParams p = augment_params(7, 2, pos[i], side, 32, 32);
    ASSERT_GE(p.cut_y, 0);
    ASSERT_GE(p.cut_x, 0);
    auto expected = y.images[i].clone();
    expected.narrow(1, p.cut_y, side).narrow(2, p.cut_x, side).zero_();  // 0 after normalisation = mean
    EXPECT_TRUE(torch::equal(x.images[i], expected)) << "sample " << i;
    EXPECT_EQ((x.images[i] == 0).sum().item<int64_t>(), 3 * side * side) << "sample " << i;
  }
  // Evaluation batches are never cut out.
  EXPECT_TRUE(torch::equal(b.range(0, 6).images, plain.range(0, 6).images));
  // Unaugmented training batches neither.
  EXPECT_TRUE(torch::equal(b.get(idx, pos, false, 7, 2).images, plain.get(idx, pos, false, 7, 2).images));
}

TEST(Batcher, CutoutSquaresStayInsideAndVary) {
  std::set<std::pair<int, int>> corners;
  for (int i = 0; i < 300; ++i) {
    AugmentParams p = augment_params(3, 1, i, 12, 28, 32);
    AugmentParams q = augment_params(3, 1, i);
    EXPECT_EQ(p.dx, q.dx);  // crop and flip do not depend on the cutout settings
    EXPECT_EQ(p.dy, q.dy);
    EXPECT_EQ(p.flip, q.flip);
    EXPECT_EQ(q.cut_y, -1);
    EXPECT_GE(p.cut_y, 0);
    EXPECT_LE(p.cut_y, 28 - 12);
    EXPECT_GE(p.cut_x, 0);
    EXPECT_LE(p.cut_x, 32 - 12);
    corners.insert({p.cut_y, p.cut_x});
  }
  EXPECT_GT(corners.size(), 150u);  // 17 x 21 = 357 corners possible
  ImageDataset d = tiny(2);
  EXPECT_EQ(testing::input_error_of([&] { Batcher(d, torch::kCPU, InputPipeline::kDevice, 33); }),
            "data.cutout=33 does not fit tiny's 32x32 images; use 0 (off) up to 32");
  EXPECT_NO_THROW(Batcher(d, torch::kCPU, InputPipeline::kDevice, 32));
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

TEST(Batcher, HostPipelineGivesTheSameBatchesAsDevicePipeline) {
  ImageDataset d = tiny(40);
  Batcher device(d, torch::kCPU, InputPipeline::kDevice, 6), host(d, torch::kCPU, InputPipeline::kHost, 6);
  std::vector<std::vector<int64_t>> idx = {{3, 1, 4, 1, 5}, {9, 2, 6}, {39, 0, 7, 8}};
  std::vector<std::vector<int64_t>> pos = {{0, 1, 2, 3, 4}, {5, 6, 7}, {8, 9, 10, 11}};
  for (bool augment : {false, true}) {
    for (int64_t epoch : {0, 1}) {
      // Batch 0 without a prefetch, then each next batch prefetched while the previous is "used".
      for (size_t k = 0; k < idx.size(); ++k) {
        Batch a = device.get(idx[k], pos[k], augment, 5, epoch);
        Batch b = host.get(idx[k], pos[k], augment, 5, epoch);
        if (k + 1 < idx.size()) host.prefetch(idx[k + 1], pos[k + 1], augment, 5, epoch);
        EXPECT_TRUE(torch::equal(a.images, b.images))
            << "augment " << augment << " epoch " << epoch << " batch " << k;
        EXPECT_TRUE(torch::equal(a.labels, b.labels));
        EXPECT_EQ(b.images.scalar_type(), torch::kFloat);
      }
    }
  }
  EXPECT_TRUE(torch::equal(device.range(10, 7).images, host.range(10, 7).images));
  // A prefetch that the next get() does not ask for is dropped, not returned.
  host.prefetch(idx[0], pos[0], true, 5, 0);
  EXPECT_TRUE(torch::equal(host.get(idx[1], pos[1], true, 5, 0).images,
                           device.get(idx[1], pos[1], true, 5, 0).images));
  host.prefetch(idx[2], pos[2], true, 5, 0);
  EXPECT_TRUE(torch::equal(host.get(idx[2], pos[2], true, 6, 0).images,
                           device.get(idx[2], pos[2], true, 6, 0).images));
  EXPECT_EQ(parse_config("", "t", {"data.pipeline=host"}).data.pipeline, InputPipeline::kHost);
  EXPECT_EQ(testing::input_error_of([] { parse_config("", "t", {"data.pipeline=disk"}); }),
            "config key data.pipeline (--set): 'disk' is not allowed; expected one of: device host");
}

TEST(Batcher, AugmentedBatchesRepeatForSameSeedEpochPositionAndDifferOtherwise) {
  ImageDataset d = tiny(16);
  Batcher b(d, torch::kCPU);
  std::vector<int64_t> idx(16);
  for (int i = 0; i < 16; ++i) idx[i] = i % 4;  // the same 4 images at 16 positions
  std::vector<int64_t> pos(16);
  for (int i = 0; i < 16; ++i) pos[i] = i;
  Batch x = b.get(idx, pos, true, 3, 0);
  EXPECT_TRUE(torch::equal(x.images, Batcher(d, torch::kCPU).get(idx, pos, true, 3, 0).images));
  // Rank 0 and rank 1 of 2 hold positions 0,2,4,.. and 1,3,5,..: the same image at another
  // position (another rank) or in another epoch is augmented differently.
  int differ_rank = 0, differ_epoch = 0;
  Batch y = b.get(idx, pos, true, 3, 1);
  for (int i = 0; i + 4 < 16; ++i) differ_rank += !torch::equal(x.images[i], x.images[i + 4]);
  for (int i = 0; i < 16; ++i) differ_epoch += !torch::equal(x.images[i], y.images[i]);
  EXPECT_GE(differ_rank, 10);
  EXPECT_GE(differ_epoch, 13);
}

TEST(Batcher, GreyImagesOfOneChannel) {
  ImageDataset d;
  d.images = torch::randint(0, 256, {4, 1, 32, 32}, torch::kByte);
  d.labels = torch::arange(4, torch::kLong);
  d.mean = {0.2f, 0.f, 0.f};
  d.std = {0.3f, 1.f, 1.f};
  Batch x = Batcher(d, torch::kCPU).get({0, 1, 2, 3}, {0, 1, 2, 3}, true, 1, 0);
  EXPECT_EQ(x.images.sizes(), (std::vector<int64_t>{4, 1, 32, 32}));
}

}  // namespace
}  // namespace ddp
