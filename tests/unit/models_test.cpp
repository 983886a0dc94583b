#include "ddp/train/models.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <utility>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "test_files.h"

namespace ddp {
namespace {

int64_t conv(int64_t cin, int64_t cout, int64_t k, bool bias) {
  return cin * cout * k * k + (bias ? cout : 0);
}

TEST(Models, SeedCnnHasTheSeedsParameterCount) {
  auto m = make_model("seed_cnn");
  const int64_t expected = conv(3, 32, 5, true) + conv(32, 32, 5, true) + conv(32, 64, 5, true) +
                           (1024 * 64 + 64) + (64 * 10 + 10);
  EXPECT_EQ(parameter_count(*m), expected);
  EXPECT_EQ(parameter_count(*m), 145578);  // The seed tutorial's figure.
}

TEST(Models, SeedCnnNamesMatchPyTorchSequential) {
  auto m = make_model("seed_cnn");
  // PyTorch's nn.Sequential of the seed tutorial: Conv2d, MaxPool2d, Conv2d, MaxPool2d, Conv2d,
  // MaxPool2d, Flatten, Linear, Linear. Exported checkpoints load into it by these names.
  std::vector<std::string> named;
  for (const auto& p : m->named_parameters()) {
    named.push_back(p.key() + " " + c10::str(p.value().sizes()));
  }
  EXPECT_EQ(named, (std::vector<std::string>{"model1.0.weight [32, 3, 5, 5]", "model1.0.bias [32]",
                                             "model1.2.weight [32, 32, 5, 5]", "model1.2.bias [32]",
                                             "model1.4.weight [64, 32, 5, 5]", "model1.4.bias [64]",
                                             "model1.7.weight [64, 1024]", "model1.7.bias [64]",
                                             "model1.8.weight [10, 64]", "model1.8.bias [10]"}));
}

TEST(Models, ResNet9ParameterCount) {
  auto m = make_model("resnet9");
  auto cbn = [](int64_t cin, int64_t cout) { return conv(cin, cout, 3, false) + 2 * cout; };
  const int64_t expected = cbn(3, 64) + cbn(64, 128) + 2 * cbn(128, 128) + cbn(128, 256) + cbn(256, 512) +
                           2 * cbn(512, 512) + 512 * 10;
  EXPECT_EQ(parameter_count(*m), expected);
}

TEST(Models, ForwardShapes) {
  for (const char* name : {"seed_cnn", "resnet9"}) {
    auto m = make_model(name);
    auto out = m->forward(torch::randn({2, 3, 32, 32}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 10})) << name;
  }
  auto grey = make_model("seed_cnn", 1, 10);
  EXPECT_EQ(grey->forward(torch::randn({3, 1, 32, 32})).size(0), 3);
}

TEST(Models, UnknownNameIsAnInputError) {
  EXPECT_EQ(testing::input_error_of([] { make_model("vgg99"); }),
            "unknown model 'vgg99'; choose seed_cnn or resnet9");
}

// ResNet-9 with the Winograd convolutions (auto) and with LibTorch's (direct), same weights.
std::pair<std::shared_ptr<Classifier>, std::shared_ptr<Classifier>> resnet9_pair() {
  torch::manual_seed(1);
  auto winograd = make_model("resnet9", 3, 10, ConvAlgorithm::kAuto);
  auto direct = make_model("resnet9", 3, 10, ConvAlgorithm::kDirect);
  torch::NoGradGuard no_grad;
  auto from = winograd->parameters(), to = direct->parameters();
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
  return {winograd, direct};
}

TEST(Models, ResNet9WinogradMatchesDirectInFp32) {
  auto [winograd, direct] = resnet9_pair();
  const at::Tensor x = torch::randn({4, 3, 32, 32});
  const at::Tensor a = winograd->forward(x), b = direct->forward(x);
  EXPECT_LT((a - b).abs().max().item<float>(), 1e-4 * b.abs().max().item<float>());
  EXPECT_FALSE(torch::equal(a, b)) << "auto gave direct's exact numbers: Winograd did not run";
  a.sum().backward();
  b.sum().backward();
  const at::Tensor ga = winograd->named_parameters()["layer3.0.conv.weight"].grad();
  const at::Tensor gb = direct->named_parameters()["layer3.0.conv.weight"].grad();
  EXPECT_LT((ga - gb).abs().max().item<float>(), 1e-3 * gb.abs().max().item<float>());
}

TEST(Models, ResNet9UnderBf16AutocastKeepsLibTorchsConvolutions) {
  auto [winograd, direct] = resnet9_pair();
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  const at::Tensor a = winograd->forward(x), b = direct->forward(x);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(Models, ConvAlgorithmNames) {
  EXPECT_EQ(parse_config("", "t").train.conv_algorithm, ConvAlgorithm::kAuto);
  EXPECT_EQ(parse_config("", "t", {"train.conv_algorithm=direct"}).train.conv_algorithm,
            ConvAlgorithm::kDirect);
  EXPECT_EQ(to_string(ConvAlgorithm::kDirect), "direct");
  EXPECT_EQ(
      testing::input_error_of([] { parse_config("", "t", {"train.conv_algorithm=winograd"}); }),
      "config key train.conv_algorithm (--set): 'winograd' is not allowed; expected one of: auto direct");
}

}  // namespace
}  // namespace ddp
