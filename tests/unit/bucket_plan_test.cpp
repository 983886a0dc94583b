#include "ddp/dist/bucket_plan.h"

#include <gtest/gtest.h>

#include <set>

namespace ddp {
namespace {

TEST(BucketPlan, FillsInReverseOrderWithSmallFirstBucket) {
  // Ten params of 100 floats (400 B each). First cap 800 B -> 2 params, then 1200 B -> 3 each.
  std::vector<int64_t> numels(10, 100);
  auto buckets = plan_buckets(numels, 4, 1200, 800);
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0].params, (std::vector<int64_t>{9, 8}));
  EXPECT_EQ(buckets[1].params, (std::vector<int64_t>{7, 6, 5}));
  EXPECT_EQ(buckets[2].params, (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(buckets[3].params, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(buckets[0].numel, 200);
}

TEST(BucketPlan, OversizedParameterGetsItsOwnBucket) {
  std::vector<int64_t> numels = {10, 1000, 10};
  auto buckets = plan_buckets(numels, 4, 100, 100);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[1].params, (std::vector<int64_t>{1}));
  EXPECT_EQ(buckets[1].numel, 1000);
}

TEST(BucketPlan, EveryParameterExactlyOnceAndCapsRespected) {
  std::vector<int64_t> numels;
  for (int i = 0; i < 50; ++i) numels.push_back(1 + (i * 37) % 300);
  const int64_t cap = 2000, first = 500;
  auto buckets = plan_buckets(numels, 4, cap, first);
  std::multiset<int64_t> seen;
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t sum = 0;
    for (auto i : buckets[b].params) seen.insert(i), sum += numels[i];
    EXPECT_EQ(sum, buckets[b].numel);
    if (buckets[b].params.size() > 1) {
      EXPECT_LE(sum * 4, b == 0 ? first : cap);
    }
  }
  EXPECT_EQ(seen.size(), numels.size());
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), numels.size());
}

TEST(BucketPlan, OneBucketWhenEverythingFits) {
  auto buckets = plan_buckets({5, 6, 7}, 4, 1 << 20, 1 << 20);
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].params, (std::vector<int64_t>{2, 1, 0}));
}

}  // namespace
}  // namespace ddp
