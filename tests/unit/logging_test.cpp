#include "ddp/observe/logging.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ddp {
namespace {

TEST(Progress, LineOnlyOnATerminalUnlessForced) {
  EXPECT_TRUE(progress_line_wanted("auto", true));
  EXPECT_FALSE(progress_line_wanted("auto", false));
  EXPECT_TRUE(progress_line_wanted("on", false));
  EXPECT_FALSE(progress_line_wanted("off", true));
}

TEST(Progress, FormatShowsStepLossSpeedAndEta) {
  EXPECT_EQ(format_progress(2, 120, 640, 1.23456, 2530.4, 12.34),
            "epoch 2 step 120/640 | loss 1.2346 | 2530 img/s | eta 12.3 s");
  EXPECT_EQ(format_progress(1, 3, 10, std::numeric_limits<double>::quiet_NaN(), 10, 1),
            "epoch 1 step 3/10 | loss - | 10 img/s | eta 1.0 s");
}

TEST(Progress, DisabledLineWritesNothing) {
  ::testing::internal::CaptureStdout();
  {
    ProgressLine line(false);
    line.update("x", true);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
}

TEST(Progress, RedrawsInPlaceAndEndsTheLine) {
  ::testing::internal::CaptureStdout();
  {
    ProgressLine line(true);
    line.update("abcd", true);
    line.update("ab", true);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "\rabcd\rab  \n");
}

}  // namespace
}  // namespace ddp
