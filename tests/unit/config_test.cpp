#include "ddp/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ddp/core/check.h"
#include "test_files.h"

namespace ddp {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "test.yaml", overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsAreTheSeedRecipe) {
  Config c = parse_config("", "empty");
  EXPECT_EQ(c.model.name, ModelKind::kSeedCnn);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.train.epochs, 10);
  EXPECT_EQ(c.log.every_steps, 100);
  EXPECT_EQ(c.dist.backend, BackendChoice::kAuto);
  EXPECT_DOUBLE_EQ(c.dist.bucket_mb, 25.0);
}

TEST(Config, NestedYamlAndOverridesInOrder) {
  Config c = parse_config(
      "model:\n  name: resnet9\ntrain:\n  lr: 0.4\n  momentum: 0.9\n  nesterov: true\nresume: a.pt\n", "t",
      {"train.lr=0.2", "data.augment=yes", "train.lr=0.1"});
  EXPECT_EQ(c.model.name, ModelKind::kResNet9);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.1);
  EXPECT_TRUE(c.train.nesterov);
  EXPECT_TRUE(c.data.augment);
  EXPECT_EQ(c.resume, "a.pt");
}

TEST(Config, UnknownKeyIsNamedWithASuggestion) {
  EXPECT_EQ(
      error_of("train:\n  lrr: 0.1\n"),
      "unknown config key 'train.lrr' (test.yaml); did you mean 'train.lr'? Run 'ddptrain --help' for the "
      "list of keys");
  EXPECT_EQ(error_of("", {"nope.key=1"}),
            "unknown config key 'nope.key' (--set). Run 'ddptrain --help' for the list of keys");
}

TEST(Config, WrongTypesAndRangesNameTheKey) {
  EXPECT_NE(error_of("train:\n  lr: fast\n").find("config key train.lr (test.yaml): 'fast' is not allowed"),
            std::string::npos);
  EXPECT_EQ(
      error_of("train:\n  batch_size: 0\n"),
      "config key train.batch_size (test.yaml): '0' is not allowed; expected an integer in [1, 1048576]");
  EXPECT_EQ(
      error_of("train:\n  batch_size: 12.5\n"),
      "config key train.batch_size (test.yaml): '12.5' is not allowed; expected an integer in [1, 1048576]");
  EXPECT_EQ(error_of("train:\n  lr: -1\n"),
            "config key train.lr (test.yaml): '-1' is not allowed; expected a number in (0, 1000]");
  EXPECT_EQ(error_of("model:\n  name: vgg\n"),
            "config key model.name (test.yaml): 'vgg' is not allowed; expected one of: seed_cnn resnet9");
  EXPECT_EQ(error_of("data:\n  shuffle: maybe\n"),
            "config key data.shuffle (test.yaml): 'maybe' is not allowed; expected true or false");
  EXPECT_EQ(error_of("dist:\n  backend: gloo\n"),
            "config key dist.backend (test.yaml): 'gloo' is not allowed; expected one of: auto mpi nccl");
}

TEST(Config, MalformedInputs) {
  EXPECT_NE(error_of("train: [1, 2").find("not valid YAML"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("must be a YAML map"), std::string::npos);
  EXPECT_NE(error_of("train:\n  lr: [1, 2]\n").find("lists are not supported"), std::string::npos);
  EXPECT_NE(error_of("", {"train.lr"}).find("expected key=value"), std::string::npos);
  EXPECT_EQ(testing::input_error_of([] { load_config("/nonexistent/config.yaml"); }),
            "cannot read config file '/nonexistent/config.yaml': No such file or directory; pass an existing "
            "file to --config (see configs/)");
}

TEST(Config, AmbiguousYamlIsRefusedNotGuessed) {
  // yaml-cpp would keep the first of two equal keys and drop the second document silently.
  EXPECT_NE(error_of("train:\n  lr: 0.01\n  lr: 5\n").find("'train.lr' appears twice"), std::string::npos);
  EXPECT_NE(error_of("train:\n  lr: 0.01\ntrain:\n  epochs: 3\n").find("'train' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of("train.lr: 0.2\ntrain:\n  lr: 0.1\n").find("'train.lr' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of("train:\n  lr: 0.1\n---\ntrain:\n  lr: 0.2\n").find("holds 2 YAML documents"),
            std::string::npos);
  EXPECT_NE(error_of("? [a, b]\n: 1\n").find("is not a plain name"), std::string::npos);
  EXPECT_EQ(parse_config("train:\n  lr: 0.1\n---\n", "t").train.lr, 0.1);  // A trailing --- is one document.
  const std::string why = testing::input_error_of([] { load_config(::testing::TempDir()); });
  EXPECT_NE(why.find("is not a file"), std::string::npos) << why;
}

TEST(Config, RulesBetweenKeysAndBoundsAgainstOverflow) {
  EXPECT_NE(error_of("", {"train.nesterov=true", "train.momentum=0"})
                .find("train.nesterov=true needs train.momentum > 0"),
            std::string::npos);
  EXPECT_EQ(error_of("", {"train.nesterov=true", "train.momentum=0.9"}), "");
  EXPECT_EQ(
      error_of("", {"train.epochs=9223372036854775807"}),
      "config key train.epochs (--set): '9223372036854775807' is not allowed; expected an integer in [1, "
      "1000000]");
  EXPECT_EQ(error_of("", {"dist.bucket_mb=1e-9"}),
            "config key dist.bucket_mb (--set): '1e-9' is not allowed; expected a number in [0.001, 4096]");
  EXPECT_EQ(
      error_of("", {"dist.first_bucket_mb=0"}),
      "config key dist.first_bucket_mb (--set): '0' is not allowed; expected a number in [0.001, 4096]");
}

TEST(Config, ResolvedYamlRoundTrips) {
  Config c = parse_config("", "t", {"model.name=resnet9", "train.lr=0.123", "log.dir=/tmp/a b", "resume="});
  const std::string yaml = c.to_yaml();
  Config again = parse_config(yaml, "resolved");
  EXPECT_EQ(again.to_yaml(), yaml);
  EXPECT_EQ(again.model.name, ModelKind::kResNet9);
  EXPECT_DOUBLE_EQ(again.train.lr, 0.123);
  EXPECT_EQ(again.log.dir, "/tmp/a b");
  for (const auto& key : config_keys()) {
    const auto dot = key.find('.');
    EXPECT_NE(yaml.find((dot == std::string::npos ? key : key.substr(dot + 1)) + ":"), std::string::npos)
        << key;
  }
}

TEST(Config, ShippedConfigsParse) {
  for (const char* name : {"seed_cnn", "resnet9", "smoke", "cifar10_resnet9_fast"}) {
    Config c = load_config(std::string(DDP_SOURCE_DIR) + "/configs/" + name + ".yaml");
    const bool resnet = std::string(name) == "resnet9" || std::string(name) == "cifar10_resnet9_fast";
    EXPECT_EQ(c.model.name, resnet ? ModelKind::kResNet9 : ModelKind::kSeedCnn) << name;
  }
  Config fast = load_config(std::string(DDP_SOURCE_DIR) + "/configs/cifar10_resnet9_fast.yaml");
  EXPECT_EQ(fast.train.precision, Precision::kBf16);
  EXPECT_TRUE(fast.train.channels_last);
  EXPECT_EQ(fast.train.batch_size, 512);
  EXPECT_TRUE(fast.data.augment);
  EXPECT_EQ(fast.data.cutout, 8);
  EXPECT_EQ(parse_config("", "t", {"data.cutout=12"}).data.cutout, 12);
  EXPECT_EQ(error_of("", {"data.cutout=-1"}),
            "config key data.cutout (--set): '-1' is not allowed; expected an integer in [0, 1024]");
}

}  // namespace
}  // namespace ddp
