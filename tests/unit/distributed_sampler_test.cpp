#include "ddp/dist/distributed_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace ddp {
namespace {

std::vector<std::vector<int64_t>> shards(int64_t n, int world, bool shuffle, int64_t epoch,
                                         bool drop_last = false, uint64_t seed = 7) {
  std::vector<std::vector<int64_t>> out;
  for (int r = 0; r < world; ++r) {
    DistributedSampler s(n, r, world, shuffle, seed, drop_last);
    s.set_epoch(epoch);
    out.push_back(s.indices());
  }
  return out;
}

TEST(DistributedSampler, DisjointAndCompleteWhenDivisible) {
  auto sh = shards(120, 4, true, 0);
  std::set<int64_t> all;
  for (auto& s : sh) {
    EXPECT_EQ(s.size(), 30u);
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), 120u);
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 119);
}

TEST(DistributedSampler, PadsByRepeatingTheStartSoEveryRankHasTheSameCount) {
  // 10 samples, 3 ranks: ceil(10/3) = 4 each, 2 padded samples repeat order[0] and order[1].
  auto sh = shards(10, 3, false, 0);
  for (auto& s : sh) EXPECT_EQ(s.size(), 4u);
  EXPECT_EQ(sh[0], (std::vector<int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(sh[1], (std::vector<int64_t>{1, 4, 7, 0}));
  EXPECT_EQ(sh[2], (std::vector<int64_t>{2, 5, 8, 1}));
}

TEST(DistributedSampler, PaddingCoversEveryIndex) {
  auto sh = shards(101, 4, true, 3);
  std::map<int64_t, int> count;
  for (auto& s : sh) {
    EXPECT_EQ(s.size(), 26u);
    for (auto i : s) ++count[i];
  }
  EXPECT_EQ(count.size(), 101u);
  int dup = 0;
  for (auto& [i, c] : count) dup += c - 1;
  EXPECT_EQ(dup, 104 - 101);
}

TEST(DistributedSampler, DropLastCutsTheTail) {
  auto sh = shards(10, 3, false, 0, /*drop_last=*/true);
  for (auto& s : sh) EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(sh[2], (std::vector<int64_t>{2, 5, 8}));
}

TEST(DistributedSampler, ReshufflesPerEpochAndIsDeterministic) {
  auto e0 = shards(500, 2, true, 0);
  auto e0_again = shards(500, 2, true, 0);
  auto e1 = shards(500, 2, true, 1);
  EXPECT_EQ(e0, e0_again);
  EXPECT_NE(e0, e1);
  auto other_seed = shards(500, 2, true, 0, false, 8);
  EXPECT_NE(e0, other_seed);
}

TEST(DistributedSampler, GlobalOrderDoesNotDependOnWorldSize) {
  // Interleaving the shards of 2 ranks gives the 1-rank order (positions r + i*world).
  auto one = shards(64, 1, true, 5)[0];
  auto two = shards(64, 2, true, 5);
  for (int64_t i = 0; i < 32; ++i) {
    EXPECT_EQ(two[0][i], one[2 * i]);
    EXPECT_EQ(two[1][i], one[2 * i + 1]);
  }
  DistributedSampler s(64, 1, 2, true, 7);
  EXPECT_EQ(s.global_position(3), 7);
}

TEST(DistributedSampler, UnshuffledIsIdentityOrder) {
  auto one = shards(5, 1, false, 9)[0];
  EXPECT_EQ(one, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace ddp
