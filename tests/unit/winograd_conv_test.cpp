#include "train/kernels/winograd_conv.h"

#include <ATen/autocast_mode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "test_files.h"

namespace ddp {
namespace {

// Largest |a - b| relative to the largest |b|.
double rel_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

struct Case {
  int64_t n, cin, cout, h, w;
  bool channels_last;
};

std::string name(const Case& c) {
  return "n" + std::to_string(c.n) + "_" + std::to_string(c.cin) + "to" + std::to_string(c.cout) + "_" +
         std::to_string(c.h) + "x" + std::to_string(c.w) + (c.channels_last ? "_nhwc" : "_nchw");
}
void PrintTo(const Case& c, std::ostream* os) { *os << name(c); }

// The forward and both gradients against at::conv2d in fp64 (the truth, to fp32's eyes), on shapes
// that exercise whole tiles, ragged edges (H, W not multiples of 4), one-pixel images, channel
// counts above and below the 64-lane block, and both memory formats. F(4x4, 3x3) in fp32 is
// about 1e-5 off relative to the largest value (direct fp32 convolution: about 1e-6); a wrong
// coefficient anywhere in the transforms is off by 1e-3 or more.
constexpr double kTolerance = 3e-5;
class WinogradVsConv2d : public ::testing::TestWithParam<Case> {};

TEST_P(WinogradVsConv2d, ForwardAndGradientsMatch) {
  const Case p = GetParam();
  torch::manual_seed(7);
  const auto fmt = p.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor x = torch::randn({p.n, p.cin, p.h, p.w}).contiguous(fmt).requires_grad_();
  at::Tensor w = (torch::randn({p.cout, p.cin, 3, 3}) * 0.1).contiguous(fmt).requires_grad_();
  at::Tensor x2 = x.detach().to(at::kDouble).requires_grad_(),
             w2 = w.detach().to(at::kDouble).requires_grad_();
  ASSERT_TRUE(winograd_applies(x, w));

  at::Tensor y = winograd_conv3x3(x, w);
  at::Tensor ref = at::conv2d(x2, w2, {}, 1, 1);
  ASSERT_EQ(y.sizes(), ref.sizes());
  EXPECT_LT(rel_error(y.to(at::kDouble), ref), kTolerance);

  at::Tensor gy = torch::randn_like(y);
  y.backward(gy);
  ref.backward(gy.to(at::kDouble));
  EXPECT_LT(rel_error(x.grad().to(at::kDouble), x2.grad()), kTolerance);
  EXPECT_LT(rel_error(w.grad().to(at::kDouble), w2.grad()), kTolerance);
  // The weight gradient keeps the weight's strides (the gradient buckets view it that way).
  EXPECT_EQ(w.grad().strides(), w.strides());
  // The output is a tensor of its own: in-place operations on it are allowed under autograd.
  at::Tensor again = winograd_conv3x3(x, w);
  EXPECT_NO_THROW(again.relu_().sum().backward());
}

INSTANTIATE_TEST_SUITE_P(Shapes, WinogradVsConv2d,
                         ::testing::Values(Case{2, 8, 16, 8, 8, true}, Case{3, 5, 7, 9, 6, false},
                                           Case{1, 70, 130, 5, 11, true}, Case{2, 64, 128, 32, 32, true},
                                           Case{4, 512, 512, 4, 4, true}, Case{2, 3, 4, 1, 1, false},
                                           Case{1, 16, 8, 2, 3, true}, Case{2, 70, 20, 13, 13, true}),
                         [](const ::testing::TestParamInfo<Case>& info) { return name(info.param); });

TEST(Winograd, TransformsRunOnEveryIntraOpThread) {
  // at::parallel_for's OpenMP backend is inline: compiled without -fopenmp (or against another
  // OpenMP runtime than LibTorch's) the transforms would run on one thread whatever this says.
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  const int used = winograd_parallel_threads();
  at::set_num_threads(1);
  const int one = winograd_parallel_threads();
  at::set_num_threads(before);
  EXPECT_EQ(used, 2);
  EXPECT_EQ(one, 1);
}

TEST(Winograd, SameResultWhateverTheThreadCount) {
  // The transforms are shared among threads tile by tile; the products are one at::bmm.
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({6, 32, 12, 12}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor w = torch::randn({48, 32, 3, 3});
  const at::Tensor gy = torch::randn({6, 48, 12, 12});
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    at::Tensor xi = x.clone().requires_grad_(), wi = w.clone().requires_grad_();
    at::Tensor y = winograd_conv3x3(xi, wi);
    y.backward(gy);
    return std::make_tuple(y.detach(), xi.grad(), wi.grad());
  };
  const int before = at::get_num_threads();
  auto [y1, gx1, gw1] = run(1);
  auto [y2, gx2, gw2] = run(2);
  at::set_num_threads(before);
  EXPECT_LT(rel_error(y2, y1), 1e-6);
  EXPECT_LT(rel_error(gx2, gx1), 1e-6);
  EXPECT_LT(rel_error(gw2, gw1), 1e-6);
}

TEST(Winograd, EmptyBatch) {
  at::Tensor x = torch::randn({0, 8, 5, 5}).requires_grad_();
  at::Tensor w = torch::randn({4, 8, 3, 3}).requires_grad_();
  at::Tensor y = winograd_conv3x3(x, w);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{0, 4, 5, 5}));
  y.sum().backward();
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_EQ(w.grad().abs().sum().item<float>(), 0.f);
}

TEST(Winograd, NoDoubleBackward) {
  at::Tensor x = torch::randn({1, 4, 6, 6}).requires_grad_();
  at::Tensor w = torch::randn({4, 4, 3, 3}).requires_grad_();
  at::Tensor y = winograd_conv3x3(x, w).sum();
  EXPECT_THAT(testing::error_text_of(
                  [&] { torch::autograd::grad({y}, {w}, {}, /*retain_graph=*/true, /*create_graph=*/true); }),
              ::testing::HasSubstr("winograd_conv3x3 has no double backward (create_graph=true); use "
                                   "train.conv_algorithm=direct"));
}

TEST(Winograd, OnlyInputGradientOrOnlyWeightGradient) {
  torch::manual_seed(5);
  at::Tensor x = torch::randn({2, 8, 7, 7});
  at::Tensor w = torch::randn({4, 8, 3, 3}).requires_grad_();
  winograd_conv3x3(x, w).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());

  at::Tensor x2 = x.clone().requires_grad_();
  at::Tensor w2 = w.detach().clone();
  winograd_conv3x3(x2, w2).sum().backward();
  at::Tensor x3 = x.to(at::kDouble).requires_grad_();
  at::conv2d(x3, w2.to(at::kDouble), {}, 1, 1).sum().backward();
  EXPECT_LT(rel_error(x2.grad().to(at::kDouble), x3.grad()), kTolerance);
}

TEST(Winograd, AppliesOnlyToFp32Cpu3x3OutsideAutocast) {
  at::Tensor x = torch::randn({1, 4, 8, 8});
  EXPECT_TRUE(winograd_applies(x, torch::randn({2, 4, 3, 3})));
  EXPECT_FALSE(winograd_applies(x, torch::randn({2, 4, 5, 5})));
  EXPECT_FALSE(winograd_applies(x, torch::randn({2, 3, 3, 3})));  // Channels differ.
  EXPECT_FALSE(winograd_applies(x.to(at::kDouble), torch::randn({2, 4, 3, 3}, at::kDouble)));
  EXPECT_FALSE(winograd_applies(x.to(at::kBFloat16), torch::randn({2, 4, 3, 3}).to(at::kBFloat16)));
  {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    const bool under_autocast = winograd_applies(x, torch::randn({2, 4, 3, 3}));
    at::autocast::set_autocast_enabled(at::kCPU, false);
    EXPECT_FALSE(under_autocast);
  }
  EXPECT_THAT(
      testing::error_text_of([&] {
        winograd_conv3x3(x, torch::randn({2, 4, 5, 5}));
      }),
      ::testing::HasSubstr("winograd_conv3x3 needs fp32 CPU tensors x [N, C, H, W] and w [Cout, C, 3, 3] "
                           "outside autocast; got x [1, 4, 8, 8] Float and w [2, 4, 5, 5] Float"));
}

}  // namespace
}  // namespace ddp
