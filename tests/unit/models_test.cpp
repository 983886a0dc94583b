#include "ddp/models.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ddp/check.h"

namespace ddp {
namespace {

int64_t conv(int64_t cin, int64_t cout, int64_t k, bool bias) { return cin * cout * k * k + (bias ? cout : 0); }

TEST(Models, SeedCnnHasTheSeedsParameterCount) {
  auto m = make_model("seed_cnn");
  const int64_t expected = conv(3, 32, 5, true) + conv(32, 32, 5, true) + conv(32, 64, 5, true) +
                           (1024 * 64 + 64) + (64 * 10 + 10);
  EXPECT_EQ(parameter_count(*m), expected);
  EXPECT_EQ(parameter_count(*m), 145578);  // The seed tutorial's figure.
}

TEST(Models, SeedCnnNamesMatchPyTorchSequential) {
  auto m = make_model("seed_cnn");
  auto named = m->named_parameters();
  EXPECT_TRUE(named.contains("model1.0.weight"));
  EXPECT_TRUE(named.contains("model1.8.bias"));
}

TEST(Models, ResNet9ParameterCount) {
  auto m = make_model("resnet9");
  auto cbn = [](int64_t cin, int64_t cout) { return conv(cin, cout, 3, false) + 2 * cout; };
  const int64_t expected = cbn(3, 64) + cbn(64, 128) + 2 * cbn(128, 128) + cbn(128, 256) +
                           cbn(256, 512) + 2 * cbn(512, 512) + 512 * 10;
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

TEST(Models, UnknownNameIsAnInputError) { EXPECT_THROW(make_model("vgg99"), InputError); }

}  // namespace
}  // namespace ddp
