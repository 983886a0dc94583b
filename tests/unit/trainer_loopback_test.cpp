// The real Trainer driven in one process through a LoopbackCommunicator that records every
// collective: the order and sizes of the collectives of a step (Note [collective order] in
// trainer.h), stop and resume, and what a run leaves in log.dir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "ddp/data/dataset.h"
#include "ddp/dist/bucket_plan.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/models.h"
#include "ddp/train/trainer.h"
#include "loopback_communicator.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::LoopbackCommunicator;
using testing::TempDir;

// The collectives as LoopbackCommunicator names them.
const std::string kFlags = "all_reduce 3 x Double sum";  // The step's agreement (step_agreement.h).
const std::string kLoss = "all_reduce 1 x Float avg";    // A log step's mean loss.
const std::string kEval = "all_reduce 3 x Double sum";   // Evaluation's loss sum, correct count, images.
// Rank 0 prepares folders and tells every rank its error, "" (root_value: length, then bytes).
const std::vector<std::string> kRootPrepares = {"broadcast 1 x Long from 0", "broadcast 1 x Byte from 0"};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Config loopback_config(const TempDir& dir, const std::vector<std::string>& overrides,
                       FaultInjection* faults = nullptr) {
  std::vector<std::string> all = {"data.dataset=synthetic",
                                  "data.synthetic_train=256",
                                  "data.synthetic_test=64",
                                  "train.batch_size=32",
                                  "train.threads=1",
                                  "log.progress=off",
                                  "log.dir=" + dir.path() + "/logs",
                                  "checkpoint.dir=" + dir.path() + "/ckpt"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return parse_config("", "trainer_loopback_test", all, faults);
}

at::Tensor flat_params(torch::nn::Module& m) {
  std::vector<at::Tensor> parts;
  for (const auto& p : m.parameters()) parts.push_back(p.detach().reshape({-1}));
  return torch::cat(parts);
}

// One bucket all-reduce per bucket of the plan the gradient synchronizer makes for `model`
// (dist.bucket_mb and dist.first_bucket_mb are MiB of float32 gradients).
std::vector<std::string> bucket_all_reduces(const std::string& model, double bucket_mb,
                                            double first_bucket_mb) {
  std::vector<int64_t> numels;
  for (const auto& p : make_model(model)->parameters()) numels.push_back(p.numel());
  std::vector<std::string> out;
  for (const Bucket& b : plan_buckets(numels, 4, static_cast<int64_t>(bucket_mb * (1 << 20)),
                                      static_cast<int64_t>(first_bucket_mb * (1 << 20)))) {
    out.push_back("all_reduce " + std::to_string(b.numel) + " x Float avg");
  }
  return out;
}

// The collectives of Trainer::run() for a fresh run of `steps` steps, `steps_per_epoch` to an
// epoch, logging every `log_every`: `step` (the step's collectives before its agreement) and
// `eval` (an evaluation's) in the documented order.
std::vector<std::string> expected_run(int64_t steps, int64_t steps_per_epoch, int64_t log_every,
                                      const std::vector<std::string>& step,
                                      const std::vector<std::string>& eval = {kEval}) {
  std::vector<std::string> out = kRootPrepares;
  for (int64_t s = 1; s <= steps; ++s) {
    out.insert(out.end(), step.begin(), step.end());
    out.push_back(kFlags);
    if (s % log_every == 0 || s == steps) out.push_back(kLoss);
    if (s % steps_per_epoch == 0 || s == steps) out.insert(out.end(), eval.begin(), eval.end());
  }
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(LoopbackCommunicator, ComputesAsAWorldOfRanksThatHoldTheSameTensors) {
  LoopbackCommunicator one;
  at::Tensor t = torch::tensor({1.5f, -2.0f});
  one.all_reduce(t, ReduceOp::kSum);
  one.all_reduce(t, ReduceOp::kAvg);
  one.broadcast(t, 0);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5f, -2.0f})));
  EXPECT_EQ(one.all_gather(torch::ones({2, 3}, torch::kInt)).sizes(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_THAT(testing::error_text_of([&] { one.broadcast(t, 1); }),
              ::testing::HasSubstr("broadcast from rank 1 in a world of 1"));

  LoopbackCommunicator three(3);
  EXPECT_EQ(three.size(), 3);
  at::Tensor sum = torch::tensor({1.0, 2.0}, torch::kDouble), avg = torch::tensor({4.0f});
  auto sum_work = three.all_reduce_async(sum, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(sum, torch::tensor({1.0, 2.0}, torch::kDouble))) << "written before the wait";
  EXPECT_TRUE(sum_work->test());
  sum_work->wait();
  EXPECT_TRUE(torch::equal(sum, torch::tensor({3.0, 6.0}, torch::kDouble))) << "summed once";
  three.all_reduce(avg, ReduceOp::kAvg);
  EXPECT_EQ(avg.item<float>(), 4.0f);
  at::Tensor gathered = three.all_gather(torch::tensor({7, 8}));
  EXPECT_TRUE(torch::equal(gathered, torch::tensor({7, 8}).repeat({3, 1})));
  three.barrier();
  EXPECT_EQ(three.sequence(),
            (std::vector<std::string>{"all_reduce 2 x Double sum", "all_reduce 1 x Float avg",
                                      "all_gather 2 x Long", "barrier"}));
  EXPECT_EQ(three.calls()[0].waits, 1);
  EXPECT_EQ(three.calls()[0].tests, 1);
  EXPECT_EQ(three.calls()[1].waits, 1);
  three.clear();
  EXPECT_EQ(three.sequence(), std::vector<std::string>{});
}

TEST(TrainerLoopback, OneProcessStepsAgreeOnceAndSendNoGradients) {
  // A world of one: no gradient all-reduce, no broadcast; each step only its agreement (a signal
  // or a NaN must still stop or skip it), each log step its loss, each epoch its evaluation.
  LoopbackCommunicator comm;
  TempDir dir;
  Config c = loopback_config(dir, {"train.epochs=2", "log.every_steps=3"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  EXPECT_EQ(comm.sequence(), concat({"all_gather 3 x Long"}, kRootPrepares)) << "start-up";
  comm.clear();
  TrainSummary s = trainer.run();
  ASSERT_EQ(s.steps, 16);  // 256 images / 32 per step, 2 epochs.
  EXPECT_EQ(comm.sequence(), expected_run(16, 8, 3, {}));
  for (const auto& call : comm.calls()) {
    EXPECT_EQ(call.waits, call.name == "all_reduce" ? 1 : 0) << call.str();
    EXPECT_EQ(call.tests, 0) << call.str();
  }
  EXPECT_EQ(s.eval.count, 64);
}

TEST(TrainerLoopback, StepAllReducesEachBucketOfThePlanThenAgreesOnce) {
  // Two ranks mirrored in one process: every step all-reduces the buckets of the plan (in plan
  // order, each waited for exactly once), then one all-reduce of 3 flags; a log step adds one
  // all-reduce of 1 element. With overlap the buckets start inside backward and are polled
  // (Work::test) while it runs; without, all start after it and none is polled.
  const std::vector<std::string> buckets = bucket_all_reduces("seed_cnn", 0.1, 0.01);
  ASSERT_GT(buckets.size(), 3u) << "the small caps should cut seed_cnn into several buckets";
  for (bool overlap : {true, false}) {
    SCOPED_TRACE(overlap ? "overlap on" : "overlap off");
    LoopbackCommunicator comm(2);
    TempDir dir;
    Config c = loopback_config(
        dir, {"train.epochs=2", "log.every_steps=3", "dist.bucket_mb=0.1", "dist.first_bucket_mb=0.01",
              std::string("dist.overlap=") + (overlap ? "true" : "false")});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    const int64_t params = parameter_count(trainer.model());
    EXPECT_EQ(comm.sequence(),
              concat({"all_gather 3 x Long", "broadcast " + std::to_string(params) + " x Float from 0"},
                     kRootPrepares))
        << "start-up: model check, parameters from rank 0, folders";
    comm.clear();
    TrainSummary s = trainer.run();
    ASSERT_EQ(s.steps, 8);  // 128 images per rank / 32 per step, 2 epochs.
    EXPECT_EQ(comm.sequence(), expected_run(8, 4, 3, buckets));

    int64_t bucket_elements = 0;
    for (const auto& call : comm.calls()) {
      if (call.name == "all_reduce" && call.dtype == at::kFloat && call.numel > 1)
        bucket_elements += call.numel;
    }
    EXPECT_EQ(bucket_elements, 8 * params) << "the buckets of a step hold every gradient once";

    int64_t polls = 0;
    for (const auto& call : comm.calls()) {
      if (call.name != "all_reduce") continue;
      EXPECT_EQ(call.waits, 1) << call.str();
      polls += call.tests;
    }
    if (overlap) {
      EXPECT_GT(polls, 0) << "buckets in flight are not polled while backward runs";
      EXPECT_EQ(trainer.buckets_started_in_backward(), static_cast<int64_t>(buckets.size()));
    } else {
      EXPECT_EQ(polls, 0);
      EXPECT_EQ(trainer.buckets_started_in_backward(), 0);
    }
    EXPECT_EQ(s.eval.count, 64) << "rank 0's half of the test set, counted for both ranks";
  }
}

TEST(TrainerLoopback, AccumulatedMicroBatchesShareTheStepsAllReduces) {
  // Three micro-batches per step: gradients accumulate locally, and only the last backward's
  // (all three summed) travel, in the same buckets as a step of one micro-batch.
  LoopbackCommunicator comm(2);
  TempDir dir;
  Config c = loopback_config(dir, {"train.batch_size=16", "train.accumulate_steps=3", "train.max_steps=2",
                                   "log.every_steps=1", "dist.bucket_mb=0.1", "dist.first_bucket_mb=0.01"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  comm.clear();
  EXPECT_EQ(trainer.run().steps, 2);
  // 128 images per rank / 48 per step: 3 steps to the epoch.
  EXPECT_EQ(comm.sequence(), expected_run(2, 3, 1, bucket_all_reduces("seed_cnn", 0.1, 0.01)));
}

TEST(TrainerLoopback, BufferBroadcastEveryStepOnlyWithBroadcastBuffers) {
  // ResNet-9 has BatchNorm statistics: with dist.broadcast_buffers each step starts with one
  // broadcast of all of them from rank 0, and evaluation broadcasts them either way.
  int64_t buffer_elements = 0;
  for (const auto& b : make_model("resnet9")->buffers()) {
    if (b.is_floating_point()) buffer_elements += b.numel();
  }
  ASSERT_GT(buffer_elements, 0);
  const std::string buffers = "broadcast " + std::to_string(buffer_elements) + " x Float from 0";
  const std::vector<std::string> buckets = bucket_all_reduces("resnet9", 25, 1);
  int64_t broadcasts[2] = {0, 0};
  for (bool broadcast : {true, false}) {
    SCOPED_TRACE(broadcast ? "broadcast_buffers on" : "broadcast_buffers off");
    LoopbackCommunicator comm(2);
    TempDir dir;
    Config c = loopback_config(
        dir, {"model.name=resnet9", "train.batch_size=8", "train.max_steps=2", "data.synthetic_test=16",
              "log.every_steps=1", std::string("dist.broadcast_buffers=") + (broadcast ? "true" : "false")});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    comm.clear();
    ASSERT_EQ(trainer.run().steps, 2);
    EXPECT_EQ(comm.sequence(),
              expected_run(2, 16, 1, broadcast ? concat({buffers}, buckets) : buckets, {buffers, kEval}));
    for (const auto& call : comm.calls()) broadcasts[broadcast ? 0 : 1] += call.name == "broadcast";
  }
  EXPECT_EQ(broadcasts[0] - broadcasts[1], 2) << "one broadcast more per step";
}

TEST(TrainerLoopback, StopAndResumeIsBitIdenticalToAnUninterruptedRun) {
  // In one process: stopped after step 3 as if signalled (checkpoint mid-epoch, momentum and the
  // data position in it), then continued with resume=auto.
  const std::vector<std::string> recipe = {
      "train.epochs=2",    "train.momentum=0.9", "train.lr=0.02",     "train.lr_schedule=cosine",
      "data.augment=true", "log.every_steps=4",  "checkpoint.keep=10"};
  LoopbackCommunicator comm;
  TempDir a, b;
  Config full = loopback_config(a, recipe);
  Trainer uninterrupted(full, comm, torch::kCPU, load_dataset(full, true), load_dataset(full, false));
  const TrainSummary whole = uninterrupted.run();
  ASSERT_EQ(whole.steps, 16);

  FaultInjection stop;
  Config first = loopback_config(b, concat(recipe, {"fault.stop_at_step=3"}), &stop);
  ASSERT_EQ(stop.stop_at_step, 3);
  Trainer part1(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false), stop);
  const TrainSummary s1 = part1.run();
  EXPECT_TRUE(s1.stopped_by_signal);
  EXPECT_EQ(s1.steps, 3);
  ASSERT_EQ(list_checkpoints(b.path() + "/ckpt").size(), 1u);
  EXPECT_EQ(verify_checkpoint(list_checkpoints(b.path() + "/ckpt")[0]).epoch_samples, 3 * 32);
  EXPECT_FALSE(torch::equal(flat_params(part1.model()), flat_params(uninterrupted.model())));

  Config second = loopback_config(b, concat(recipe, {"resume=auto"}));
  Trainer part2(second, comm, torch::kCPU, load_dataset(second, true), load_dataset(second, false));
  const TrainSummary s2 = part2.run();
  EXPECT_FALSE(s2.stopped_by_signal);
  EXPECT_EQ(s2.steps, whole.steps);
  const at::Tensor x = flat_params(part2.model()), y = flat_params(uninterrupted.model());
  EXPECT_TRUE(torch::equal(x, y)) << "max difference " << (x - y).abs().max().item<float>();
  EXPECT_EQ(s2.eval.accuracy, whole.eval.accuracy);
  EXPECT_EQ(s2.last_loss, whole.last_loss);
}

TEST(TrainerLoopback, MetricsHoldATrainLinePerLogStepAndAnEvalLinePerEpoch) {
  LoopbackCommunicator comm;
  TempDir dir;
  Config c = loopback_config(dir, {"train.epochs=2", "log.every_steps=3", "train.lr=0.05"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  const TrainSummary s = trainer.run();
  ASSERT_EQ(s.steps, 16);

  const std::regex train(
      R"(\{"kind":"train","step":(\d+),"epoch":(\d+),"loss":([-+.e0-9]+),"lr":([-+.e0-9]+),"images_per_s":([-+.e0-9]+)\})");
  const std::regex eval(
      R"(\{"kind":"eval","epoch":(\d+),"step":(\d+),"test_loss":([-+.e0-9]+),"test_accuracy":([-+.e0-9]+)\})");
  std::vector<std::string> lines;  // "train epoch E step S" / "eval epoch E step S"
  std::istringstream in(read_text(dir.path() + "/logs/metrics.jsonl"));
  std::string last_train_loss, last_eval_loss, last_eval_accuracy;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, train)) {
      lines.push_back("train epoch " + m[2].str() + " step " + m[1].str());
      EXPECT_GT(std::stod(m[5].str()), 0) << line;
      EXPECT_GT(std::stod(m[4].str()), 0) << line;
      last_train_loss = m[3];
    } else if (std::regex_match(line, m, eval)) {
      lines.push_back("eval epoch " + m[1].str() + " step " + m[2].str());
      last_eval_loss = m[3];
      last_eval_accuracy = m[4];
    } else {
      ADD_FAILURE() << "not a metrics line: " << line;
    }
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"train epoch 1 step 3", "train epoch 1 step 6",
                                             "eval epoch 1 step 8", "train epoch 2 step 9",
                                             "train epoch 2 step 12", "train epoch 2 step 15",
                                             "train epoch 2 step 16", "eval epoch 2 step 16"}));
  // The file carries the run's own figures (9 significant digits: a float's loss exactly).
  EXPECT_EQ(std::stof(last_train_loss), static_cast<float>(s.last_loss));
  EXPECT_NEAR(std::stod(last_eval_loss), s.eval.loss, 1e-8 * s.eval.loss);
  EXPECT_EQ(std::stod(last_eval_accuracy), s.eval.accuracy);  // k/64: 9 digits hold it exactly.
}

TEST(TrainerLoopback, LogDirHoldsTheResolvedConfigThatParsesBackToTheSame) {
  LoopbackCommunicator comm;
  TempDir dir;
  Config c = loopback_config(
      dir, {"train.max_steps=1", "model.name=seed_cnn", "train.lr=0.123", "train.lr_schedule=onecycle",
            "dist.grad_dtype=bf16", "data.augment=true", "data.cutout=4", "train.precision=bf16"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  trainer.run();
  const std::string yaml = read_text(dir.path() + "/logs/config.yaml");
  EXPECT_EQ(yaml, c.to_yaml());
  const Config back = parse_config(yaml, "config.yaml");
  EXPECT_EQ(config_values(back), config_values(c));
  EXPECT_EQ(config_changes(back), config_changes(c));
  EXPECT_THAT(config_changes(back), ::testing::Contains("train.lr_schedule=onecycle"));
}

}  // namespace
}  // namespace ddp
