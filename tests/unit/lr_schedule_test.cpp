#include "ddp/train/lr_schedule.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace ddp {
namespace {

LrSchedule make(LrScheduleKind kind) {
  LrSchedule s;
  s.kind = kind;
  s.base_lr = 0.4;
  s.total_steps = 100;
  return s;
}

TEST(LrSchedule, Constant) {
  auto s = make(LrScheduleKind::kConstant);
  EXPECT_DOUBLE_EQ(lr_at(s, 0), 0.4);
  EXPECT_DOUBLE_EQ(lr_at(s, 99), 0.4);
}

TEST(LrSchedule, StepDecaysAtBoundaries) {
  auto s = make(LrScheduleKind::kStep);
  s.step_steps = 30;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(lr_at(s, 29), 0.4);
  EXPECT_DOUBLE_EQ(lr_at(s, 30), 0.2);
  EXPECT_DOUBLE_EQ(lr_at(s, 61), 0.1);
}

TEST(LrSchedule, CosineWithWarmup) {
  auto s = make(LrScheduleKind::kCosine);
  s.warmup_steps = 10;
  s.min_lr = 0.0;
  EXPECT_NEAR(lr_at(s, 0), 0.04, 1e-12);  // 1/10 of the way up
  EXPECT_NEAR(lr_at(s, 9), 0.4, 1e-12);   // warm-up ends at the base lr
  EXPECT_NEAR(lr_at(s, 10), 0.4, 1e-12);  // cosine starts at the top
  EXPECT_NEAR(lr_at(s, 55), 0.2, 1e-12);  // halfway through the decay
  EXPECT_NEAR(lr_at(s, 100), 0.0, 1e-12);
  for (int i = 11; i < 100; ++i) EXPECT_LE(lr_at(s, i), lr_at(s, i - 1));
}

TEST(LrSchedule, OneCycleRisesThenFallsLinearly) {
  auto s = make(LrScheduleKind::kOneCycle);
  s.warmup_steps = 20;
  s.onecycle_div = 10;
  EXPECT_NEAR(lr_at(s, 0), 0.04 + (0.4 - 0.04) / 20, 1e-12);
  EXPECT_NEAR(lr_at(s, 19), 0.4, 1e-12);
  EXPECT_NEAR(lr_at(s, 60), 0.2, 1e-12);
  EXPECT_NEAR(lr_at(s, 100), 0.0, 1e-12);
}

TEST(LrSchedule, OneCycleDefaultsToThirtyPercentWarmup) {
  auto s = make(LrScheduleKind::kOneCycle);
  double peak = 0;
  int64_t peak_step = -1;
  for (int i = 0; i < 100; ++i) {
    if (lr_at(s, i) > peak) peak = lr_at(s, i), peak_step = i;
  }
  EXPECT_EQ(peak_step, 29);
  EXPECT_NEAR(peak, 0.4, 1e-12);
}

TEST(LrSchedule, UnknownKindIsRefusedByTheConfig) {
  EXPECT_EQ(parse_config("", "t", {"train.lr_schedule=onecycle"}).train.lr_schedule,
            LrScheduleKind::kOneCycle);
  EXPECT_EQ(
      testing::input_error_of([] { parse_config("", "t", {"train.lr_schedule=bogus"}); }),
      "config key train.lr_schedule (--set): 'bogus' is not allowed; expected one of: constant step cosine "
      "onecycle");
}

}  // namespace
}  // namespace ddp
