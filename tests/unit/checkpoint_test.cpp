#include "ddp/train/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "ddp/train/mixed_precision.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::input_error_of;
using testing::TempDir;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CheckpointState some_state() {
  CheckpointState st;
  st.epoch = 2;
  st.step = 17;
  st.epoch_samples = 128;
  st.world_size = 2;
  st.seed = 5;
  st.test_accuracy = 0.25;
  st.model_name = "tiny";
  st.config_yaml = "model:\n  name: tiny\n";
  return st;
}

TEST(Checkpoint, RoundTripKeepsProgressAndLossScale) {
  TempDir dir;
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  CheckpointState st = some_state();
  // A scale past 6 significant digits (2^24) must survive the manifest exactly.
  st.loss_scale = 16777216.0;
  st.loss_scale_good_steps = 1234;
  CheckpointFiles f = save_checkpoint(dir.path(), *model, opt, st);

  torch::nn::Linear other(3, 2);
  torch::optim::SGD other_opt(other->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  CheckpointState back = load_checkpoint(f.payload, *other, other_opt, "tiny");
  EXPECT_EQ(back.step, 17);
  EXPECT_EQ(back.epoch_samples, 128);
  EXPECT_EQ(back.loss_scale, 16777216.0);
  EXPECT_EQ(back.loss_scale_good_steps, 1234);
  EXPECT_TRUE(torch::equal(model->weight, other->weight));

  // A scaler restored from it continues where the saved one was: 2000 - 1234 good steps to grow.
  LossScaler scaler(true);
  scaler.restore(back.loss_scale, back.loss_scale_good_steps);
  EXPECT_EQ(scaler.scale(), 16777216.0);
  for (int i = 0; i < 2000 - 1234 - 1; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale(), 16777216.0);
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 2 * 16777216.0);
}

TEST(Checkpoint, ManifestWithoutLossScaleReadsAsNone) {
  TempDir dir;
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  CheckpointFiles f = save_checkpoint(dir.path(), *model, opt, some_state());
  EXPECT_NE(read_text(f.manifest).find("\"loss_scale\": 0,"), std::string::npos);
  // Manifests written before the loss scale was recorded still load.
  std::string text = read_text(f.manifest);
  const auto at = text.find("  \"loss_scale\"");
  text.erase(at, text.find("\"model\"") - at);
  std::ofstream(f.manifest, std::ios::trunc) << text;
  EXPECT_EQ(text.find("loss_scale"), std::string::npos);
  CheckpointState back = verify_checkpoint(f.manifest);
  EXPECT_EQ(back.loss_scale, 0.0);
  EXPECT_EQ(back.step, 17);
}

TEST(Checkpoint, TruncatedPayloadIsANamedInputError) {
  TempDir dir;
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  CheckpointFiles f = save_checkpoint(dir.path(), *model, opt, some_state());
  std::string bytes = read_text(f.payload);
  std::ofstream(f.payload, std::ios::trunc | std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const std::string why = input_error_of([&] { verify_checkpoint(f.payload); });
  EXPECT_NE(why.find(f.payload + " is truncated or missing"), std::string::npos) << why;
  EXPECT_FALSE(find_latest_checkpoint(dir.path(), nullptr).has_value());
}

TEST(Checkpoint, ChecksumIsFnv1a64AndOldManifestsStillVerify) {
  TempDir dir;
  const std::string empty = dir.path() + "/empty", a = dir.path() + "/a";
  std::ofstream(empty, std::ios::binary).flush();
  std::ofstream(a, std::ios::binary) << "a";
  EXPECT_EQ(file_checksum(empty), 0xcbf29ce484222325ull);  // FNV-1a 64 test vectors.
  EXPECT_EQ(file_checksum(a), 0xaf63dc4c8601ec8cull);
  // A manifest written with the truncated offset basis of earlier versions.
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  CheckpointFiles f = save_checkpoint(dir.path(), *model, opt, some_state());
  uint64_t legacy = 1469598103934665603ull;
  for (unsigned char c : read_text(f.payload)) legacy = (legacy ^ c) * 1099511628211ull;
  std::ostringstream now, old;
  now << std::hex << file_checksum(f.payload);
  old << std::hex << legacy;
  std::string manifest = read_text(f.manifest);
  const size_t at = manifest.find(now.str());
  ASSERT_NE(at, std::string::npos);
  std::ofstream(f.manifest, std::ios::trunc) << manifest.replace(at, now.str().size(), old.str());
  EXPECT_NO_THROW(verify_checkpoint(f.payload));
  std::ofstream(f.manifest, std::ios::trunc) << manifest.replace(at, old.str().size(), "123abc");
  std::ostringstream actual;
  actual << std::hex << file_checksum(f.payload);
  EXPECT_EQ(input_error_of([&] { verify_checkpoint(f.payload); }),
            "checkpoint " + f.payload + " is corrupt: checksum " + actual.str() +
                " does not match its manifest (123abc); resume from another checkpoint");
}

CheckpointFiles save_at(const std::string& dir, int64_t epoch, int64_t step) {
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  CheckpointState st = some_state();
  st.epoch = epoch;
  st.step = step;
  return save_checkpoint(dir, *model, opt, st);
}

TEST(Checkpoint, FilesOfOtherNamesInTheFolderAreIgnored) {
  TempDir dir;
  CheckpointFiles a = save_at(dir.path(), 0, 5), b = save_at(dir.path(), 1, 10);
  for (const char* name : {"epoch_best.json", "epoch_1_step_x.json", "epoch_0001_step_00000010.json.bak",
                           "epoch_0001_step_00000099.json~", "epoch_1_step_7.json"}) {
    std::ofstream(dir.path() + "/" + name) << "{}";
  }
  EXPECT_EQ(list_checkpoints(dir.path()), (std::vector<std::string>{a.payload, b.payload}));
  EXPECT_EQ(find_latest_checkpoint(dir.path(), nullptr).value_or(""), b.payload);
  EXPECT_NO_THROW(prune_checkpoints(dir.path(), 1));  // Must not trip over the strays.
  // The newest, and the best (the first of equals).
  EXPECT_EQ(list_checkpoints(dir.path()), (std::vector<std::string>{a.payload, b.payload}));
}

TEST(Checkpoint, ManifestValuesOutOfRangeMakeItCorrupt) {
  TempDir dir;
  CheckpointFiles good = save_at(dir.path(), 0, 5), bad = save_at(dir.path(), 1, 10);
  std::string manifest = read_text(bad.manifest);
  const std::string field = "\"step\": 10";
  const size_t at = manifest.find(field);
  ASSERT_NE(at, std::string::npos);
  std::ofstream(bad.manifest, std::ios::trunc) << manifest.replace(at, field.size(), "\"step\": -5");
  const std::string why = input_error_of([&] { verify_checkpoint(bad.payload); });
  EXPECT_NE(why.find("is corrupt: its step is out of range"), std::string::npos) << why;
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_checkpoint(dir.path(), &skipped).value_or(""), good.payload);
  EXPECT_EQ(skipped, std::vector<std::string>{"checkpoint manifest " + bad.manifest +
                                              " is corrupt: its step is out of range; resume from another "
                                              "checkpoint"});
}

TEST(Checkpoint, ParametersOfAnotherShapeAreANamedInputError) {
  // The same model built for other data (here 5 classes instead of 2).
  TempDir dir;
  CheckpointFiles f = save_at(dir.path(), 0, 5);
  torch::nn::Linear other(3, 5);
  const std::string why = input_error_of([&] { load_checkpoint_model(f.payload, *other, "tiny"); });
  EXPECT_NE(why.find("holds 'weight' of shape [2, 3] where this model has [5, 3]"), std::string::npos) << why;
}

TEST(Checkpoint, NewestCheckpointAfterAPointSkipsCorruptOnes) {
  TempDir dir;
  CheckpointFiles a = save_at(dir.path(), 0, 5),
                  b = save_at(dir.path(), 1, 10);  // 128 samples into each epoch.
  EXPECT_EQ(newest_checkpoint_after(dir.path(), {}).value_or(""), b.payload);
  EXPECT_EQ(newest_checkpoint_after(dir.path(), {0, 128, 5}).value_or(""), b.payload);
  EXPECT_FALSE(newest_checkpoint_after(dir.path(), {1, 128, 10}).has_value());
  std::ofstream(b.payload, std::ios::trunc) << "garbage";
  EXPECT_FALSE(newest_checkpoint_after(dir.path(), {0, 128, 5}).has_value());
  EXPECT_EQ(newest_checkpoint_after(dir.path(), {}).value_or(""), a.payload);
}

TEST(Checkpoint, OrderIsProgressThroughTheDataNotTheStepNumber) {
  // A 1-rank run saved at the end of epoch 3 (step 300); resumed on 4 ranks, steps count a
  // quarter as fast: 512 samples into epoch 3 is step 160. The continuation is the newer one.
  TempDir dir;
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  CheckpointState old_run = some_state(), new_run = some_state();
  old_run.epoch = 3, old_run.epoch_samples = 0, old_run.step = 300, old_run.test_accuracy = 0.2;
  new_run.epoch = 3, new_run.epoch_samples = 512, new_run.step = 160, new_run.test_accuracy = 0.3;
  CheckpointFiles o = save_checkpoint(dir.path(), *model, opt, old_run);
  CheckpointFiles n = save_checkpoint(dir.path(), *model, opt, new_run);
  EXPECT_EQ(list_checkpoints(dir.path()), (std::vector<std::string>{o.payload, n.payload}));
  EXPECT_EQ(find_latest_checkpoint(dir.path(), nullptr).value_or(""), n.payload);
  EXPECT_EQ(newest_checkpoint_after(dir.path(), {3, 0, 300}).value_or(""), n.payload);
  prune_checkpoints(dir.path(), 1);
  EXPECT_EQ(list_checkpoints(dir.path()), std::vector<std::string>{n.payload}) << "pruned the continuation";
}

}  // namespace
}  // namespace ddp
