#include "ddp/train/mixed_precision.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "ddp/train/models.h"
#include "test_files.h"

namespace ddp {
namespace {

TEST(Precision, NamesDeviceWarningsAndLossScaleSettings) {
  EXPECT_EQ(parse_config("", "t").train.precision, Precision::kFp32);
  EXPECT_EQ(parse_config("", "t", {"train.precision=fp16"}).train.precision, Precision::kFp16);
  EXPECT_EQ(to_string(Precision::kBf16), "bf16");
  EXPECT_EQ(testing::input_error_of([] { parse_config("", "t", {"train.precision=fp8"}); }),
            "config key train.precision (--set): 'fp8' is not allowed; expected one of: fp32 bf16 fp16");
  EXPECT_EQ(precision_warning(Precision::kBf16, c10::DeviceType::CPU), "");
  EXPECT_EQ(precision_warning(Precision::kFp16, c10::DeviceType::CUDA), "");
  EXPECT_EQ(
      precision_warning(Precision::kFp16, c10::DeviceType::CPU),
      "train.precision=fp16 on CPU runs several times slower than fp32 (CPU fp16 kernels, loss scaling); "
      "it is meant for CUDA: on CPU use train.precision=bf16 or fp32");
  EXPECT_EQ(precision_gpu_problem(Precision::kBf16, 9, 0, "cuda:0 (H100)"), "");
  EXPECT_EQ(precision_gpu_problem(Precision::kBf16, 0, 0, "cuda:0"), "");  // Unknown: LibTorch decides.
  EXPECT_EQ(precision_gpu_problem(Precision::kFp16, 7, 0, "cuda:0 (V100)"), "");
  EXPECT_EQ(
      precision_gpu_problem(Precision::kBf16, 7, 5, "cuda:1 (T4)"),
      "train.precision=bf16 needs a GPU of compute capability 8.0 or newer (Ampere); cuda:1 (T4) is 7.5: "
      "use train.precision=fp16 (loss scaling) or fp32");
  EXPECT_EQ(parse_config("", "t", {"train.precision=bf16"}).train.precision, Precision::kBf16);
  EXPECT_EQ(testing::input_error_of([] { parse_config("", "t", {"train.precision=half"}); }),
            "config key train.precision (--set): 'half' is not allowed; expected one of: fp32 bf16 fp16");
  const Config fp16 = parse_config("", "t", {"train.loss_scale=1024", "train.loss_scale_growth_steps=7"});
  EXPECT_EQ(fp16.train.loss_scale, 1024.0);
  EXPECT_EQ(fp16.train.loss_scale_growth_steps, 7);
  // Below the minimum scale 1.
  EXPECT_EQ(testing::input_error_of([] { parse_config("", "t", {"train.loss_scale=0.5"}); }),
            "config key train.loss_scale (--set): '0.5' is not allowed; expected a number in [1, 1e+30]");
  EXPECT_EQ(testing::input_error_of([] { parse_config("", "t", {"train.loss_scale_growth_steps=0"}); }),
            "config key train.loss_scale_growth_steps (--set): '0' is not allowed; expected an integer >= 1");
}

TEST(Precision, AutocastGuardCastsConvolutionsAndRestoresState) {
  torch::manual_seed(0);
  auto model = make_model("seed_cnn");
  at::Tensor x = torch::randn({2, 3, 32, 32});
  {
    AutocastGuard g(Precision::kBf16, c10::DeviceType::CPU);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(model->forward(x).scalar_type(), at::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(model->forward(x).scalar_type(), at::kFloat);
  {
    AutocastGuard g(Precision::kFp32, c10::DeviceType::CPU);
    EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(model->forward(x).scalar_type(), at::kFloat);
  }
}

TEST(Precision, BatchNormStaysFp32UnderBf16Autocast) {
  // A bf16 training step of ResNet-9 (conv-BN-ReLU blocks): the convolutions run in bf16, while
  // every BatchNorm weight, bias, running statistic and gradient stays fp32, and the running
  // statistics are updated.
  torch::manual_seed(0);
  auto model = make_model("resnet9");
  model->train();
  std::vector<at::Tensor> means_before;
  for (const auto& b : model->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) means_before.push_back(b.value().clone());
  }
  ASSERT_FALSE(means_before.empty());
  at::Tensor logits;
  {
    AutocastGuard g(Precision::kBf16, c10::DeviceType::CPU);
    logits = model->forward(torch::randn({4, 3, 32, 32}));
  }
  EXPECT_EQ(logits.scalar_type(), at::kBFloat16) << "autocast was not on";
  logits.to(at::kFloat).sum().backward();
  size_t i = 0;
  for (const auto& b : model->named_buffers()) {
    if (b.key().find("running_") == std::string::npos) continue;
    EXPECT_EQ(b.value().scalar_type(), at::kFloat) << b.key();
    if (b.key().find("running_mean") != std::string::npos) {
      EXPECT_FALSE(torch::equal(b.value(), means_before[i++])) << b.key() << " was not updated";
    }
  }
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("bn.") == std::string::npos) continue;
    EXPECT_EQ(p.value().scalar_type(), at::kFloat) << p.key();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_EQ(p.value().grad().scalar_type(), at::kFloat) << p.key();
  }
}

TEST(LossScaler, HalvesOnOverflowAndGrowsAfterGoodSteps) {
  LossScaler off(false);
  EXPECT_EQ(off.scale(), 1.0);
  off.update(true);
  EXPECT_EQ(off.scale(), 1.0);

  LossScaler s(true, 1024.0, 3, 256.0);
  EXPECT_EQ(s.scale(), 1024.0);
  s.update(true);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(true);  // Resets the good-step count.
  EXPECT_EQ(s.scale(), 256.0);
  EXPECT_TRUE(s.at_minimum());
  s.update(true);  // Never below the minimum.
  EXPECT_EQ(s.scale(), 256.0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_FALSE(s.at_minimum());
  EXPECT_EQ(s.good_steps(), 0);
  s.update(false);
  EXPECT_EQ(s.good_steps(), 1);

  s.restore(128.0, 2);  // Clamped to the minimum; one more good step grows it.
  EXPECT_EQ(s.scale(), 256.0);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  off.restore(4096.0, 1);  // A disabled scaler stays at 1.
  EXPECT_EQ(off.scale(), 1.0);
}

}  // namespace
}  // namespace ddp
