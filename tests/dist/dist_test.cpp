// Distributed behaviour under real mpirun (ctest runs this binary with 2 and 3 ranks).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cmath>

#include "ddp/config/config.h"
#include "ddp/core/check.h"
#include "ddp/data/cifar10.h"
#include "ddp/dist/gradient_synchronizer.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/train/checkpoint.h"
#include "ddp/train/trainer.h"
#include "fixtures.h"
#include "test_files.h"

namespace ddp {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;
using testing::write_cifar10_file;

constexpr milliseconds kTimeout{120000};

int world_rank() {
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

at::Tensor flat_params(torch::nn::Module& m) {
  std::vector<at::Tensor> parts;
  for (auto& p : m.parameters()) parts.push_back(p.detach().reshape({-1}));
  return torch::cat(parts);
}

at::Tensor flat_buffers(torch::nn::Module& m) {
  std::vector<at::Tensor> parts = {torch::zeros({1})};
  for (auto& b : m.buffers()) {
    if (b.is_floating_point()) parts.push_back(b.detach().reshape({-1}));
  }
  return torch::cat(parts);
}

Config small_config(const TempDir& dir, std::vector<std::string> overrides,
                    FaultInjection* faults = nullptr) {
  std::vector<std::string> base = {"log.dir=" + dir.path() + "/logs",
                                   "checkpoint.dir=" + dir.path() + "/ckpt", "data.dataset=synthetic",
                                   "train.threads=1", "log.every_steps=2"};
  base.insert(base.end(), overrides.begin(), overrides.end());
  return parse_config("", "dist_test", base, faults);
}

TEST(Communicator, OpenMpiUsesTheRingForNonBlockingAllReduce) {
  // See Note [non-blocking all-reduce algorithm]: MpiRuntime asks libnbc for its ring (1) before
  // MPI_Init. Read back through the MPI tool interface what the library actually took. (Run the
  // tests without exporting OMPI_MCA_coll_libnbc_iallreduce_algorithm: a user's value wins.)
  int provided = 0;
  ASSERT_EQ(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
  int index = -1;
  if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) {
    MPI_T_finalize();
    GTEST_SKIP() << "not Open MPI's libnbc";
  }
  MPI_T_cvar_handle handle;
  int count = 0, value = -1;
  ASSERT_EQ(MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count), MPI_SUCCESS);
  ASSERT_EQ(MPI_T_cvar_read(handle, &value), MPI_SUCCESS);
  MPI_T_cvar_handle_free(&handle);
  MPI_T_finalize();
  EXPECT_EQ(value, 1) << "libnbc's MPI_Iallreduce is not the ring";
}

TEST(Communicator, CollectivesTakeCountsAndTypesFromTensors) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const int r = comm.rank(), n = comm.size();
  auto f = torch::full({5}, static_cast<float>(r + 1));
  comm.all_reduce(f, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(f, torch::full({5}, n * (n + 1) / 2.0f)));
  auto d = torch::full({3, 2}, static_cast<double>(r), torch::kDouble);
  comm.all_reduce(d, ReduceOp::kAvg);
  EXPECT_TRUE(torch::allclose(d, torch::full({3, 2}, (n - 1) / 2.0, torch::kDouble)));
  auto l = torch::tensor({static_cast<int64_t>(1) << 40, static_cast<int64_t>(r)});
  comm.all_reduce(l, ReduceOp::kSum);
  EXPECT_EQ(l[0].item<int64_t>(), (static_cast<int64_t>(1) << 40) * n);
  auto b = r == 1 ? torch::arange(7, torch::kFloat) : torch::zeros({7});
  comm.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b, torch::arange(7, torch::kFloat)));
  auto g = comm.all_gather(torch::tensor({r, r * 10}, torch::kInt));
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{n, 2}));
  for (int i = 0; i < n; ++i) EXPECT_EQ(g[i][1].item<int>(), i * 10);
  // Tensors that are not contiguous go through a Staged copy (the path NCCL takes for CPU
  // tensors): the result lands in the caller's view, in its layout.
  auto base = torch::arange(16, torch::kFloat).reshape({4, 4}) + static_cast<float>(r);
  auto view = base.t();
  comm.all_reduce(view, ReduceOp::kSum);
  auto expected = (torch::arange(16, torch::kFloat).reshape({4, 4}) * n + n * (n - 1) / 2.0f);
  EXPECT_TRUE(torch::equal(base, expected));
  auto column_base = r == 0 ? torch::arange(12, torch::kFloat).reshape({4, 3}) : torch::zeros({4, 3});
  auto column = column_base.select(1, 1);  // Stride 3.
  comm.broadcast(column, 0);
  EXPECT_TRUE(torch::equal(column, torch::tensor({1.0f, 4.0f, 7.0f, 10.0f})));
  if (r != 0) {
    EXPECT_EQ(column_base.select(1, 0).abs().sum().item<float>(), 0.0f) << "wrote outside the view";
  }
  comm.barrier();
}

TEST(Communicator, MissingPeerTimesOutWithANamedError) {
  // On a communicator of its own, so the abandoned collective cannot disturb later tests.
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MpiCommunicator comm(dup, milliseconds(1500));
  if (comm.rank() != 0) {  // Rank 0 never arrives.
    auto t = torch::ones({16});
    const auto start = std::chrono::steady_clock::now();
    try {
      comm.all_reduce(t, ReduceOp::kSum);
      ADD_FAILURE() << "all_reduce returned without rank 0";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("all_reduce #0"), std::string::npos) << msg;
      EXPECT_NE(msg.find("timed out after"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[rank " + std::to_string(comm.rank()) + "]"), std::string::npos) << msg;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(GradientSynchronizer, MismatchedModelsFailOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  std::vector<at::Tensor> params = {torch::zeros({10}), torch::zeros({4, 4})};
  if (comm.rank() == comm.size() - 1) params.push_back(torch::zeros({3}));
  try {
    GradientSynchronizer sync(comm, params, SyncOptions{});
    ADD_FAILURE() << "no error for mismatched models";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("model mismatch across ranks: rank " + std::to_string(comm.size() - 1)),
        std::string::npos)
        << e.what();
    EXPECT_TRUE(e.same_on_all_ranks());
  }
}

TEST(GradientSynchronizer, AveragesAndFillsMissingGradients) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const int r = comm.rank(), n = comm.size();
  std::vector<at::Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(torch::zeros({100 + i}).requires_grad_());
  for (int i = 0; i < 5; ++i) {
    if (i == 2 && r == 0) continue;  // rank 0 has no gradient for parameter 2
    params[i].mutable_grad() = torch::full({100 + i}, static_cast<float>(r + i));
  }
  SyncOptions options;
  options.cap_bytes = 4 * 210;  // several buckets
  options.first_cap_bytes = 4 * 100;
  GradientSynchronizer sync(comm, params, options);
  EXPECT_GT(sync.plan().size(), 2u);
  sync.synchronize();
  for (int i = 0; i < 5; ++i) {
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += (i == 2 && k == 0) ? 0 : k + i;
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(torch::allclose(params[i].grad(), torch::full({100 + i}, sum / n))) << "param " << i;
  }
}

TEST(Training, ReplicasStayBitIdentical) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  for (const char* model : {"seed_cnn", "resnet9"}) {
    TempDir dir;
    const bool big = std::string(model) == "resnet9";
    Config c =
        small_config(dir, {std::string("model.name=") + model, "data.augment=true", "train.momentum=0.9",
                           "train.max_steps=" + std::string(big ? "2" : "6"),
                           "train.batch_size=" + std::string(big ? "4" : "16"), "data.synthetic_train=256",
                           "data.synthetic_test=" + std::string(big ? "8" : "64")});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    at::Tensor mine = flat_params(trainer.model());
    at::Tensor all = comm.all_gather(mine);
    at::Tensor all_buffers = comm.all_gather(flat_buffers(trainer.model()));
    for (int r = 1; r < comm.size(); ++r) {
      EXPECT_TRUE(torch::equal(all[r], all[0]))
          << model << ": parameters of rank " << r << " differ from rank 0";
      EXPECT_TRUE(torch::equal(all_buffers[r], all_buffers[0]))
          << model << ": buffers of rank " << r << " differ";
    }
    // The replicas moved away from their common start, so they really trained.
    torch::manual_seed(0);
    EXPECT_FALSE(torch::equal(mine, flat_params(*make_model(model)))) << model;
  }
}

// Trains 5 steps on all ranks with per-rank batch b (and `extra` settings), and on every rank
// alone (MPI_COMM_SELF) with batch world*b*accumulate, and returns the largest parameter
// difference between the two. Augmentation (crop, flip, cutout) is on: it is keyed by global
// sample position, so both runs see the same images.
float distributed_vs_one_process(const std::vector<std::string>& extra, int accumulate = 1,
                                 int64_t* buckets_in_backward = nullptr) {
  MpiCommunicator world(MPI_COMM_WORLD, kTimeout);
  MpiCommunicator self(MPI_COMM_SELF, kTimeout);
  const int n = world.size();
  const int per_rank = 16;
  std::vector<std::string> common = {"train.max_steps=5",
                                     "train.momentum=0.9",
                                     "train.weight_decay=0.0005",
                                     "train.lr=0.05",
                                     "train.lr_schedule=cosine",
                                     "data.augment=true",
                                     "data.cutout=8",
                                     "dist.bucket_mb=0.05",
                                     "dist.first_bucket_mb=0.01",
                                     "data.synthetic_train=" + std::to_string(per_rank * n * accumulate * 8)};
  TempDir d1, d2;
  auto o1 = common, o2 = common;
  o1.insert(o1.end(), extra.begin(), extra.end());
  o1.push_back("train.batch_size=" + std::to_string(per_rank));
  o1.push_back("train.accumulate_steps=" + std::to_string(accumulate));
  o2.push_back("train.batch_size=" + std::to_string(per_rank * n * accumulate));
  Config dist_cfg = small_config(d1, o1), ref_cfg = small_config(d2, o2);
  Trainer distributed(dist_cfg, world, torch::kCPU, load_dataset(dist_cfg, true),
                      load_dataset(dist_cfg, false));
  TrainSummary s = distributed.run();
  EXPECT_EQ(s.steps, 5);
  if (buckets_in_backward) *buckets_in_backward = distributed.buckets_started_in_backward();
  Trainer reference(ref_cfg, self, torch::kCPU, load_dataset(ref_cfg, true), load_dataset(ref_cfg, false));
  reference.run();
  at::Tensor a = flat_params(distributed.model()), b = flat_params(reference.model());
  EXPECT_GT((b - flat_params(*make_model("seed_cnn"))).abs().max().item<float>(), 1e-3)
      << "reference did not train";
  return (a - b).abs().max().item<float>();
}

TEST(Training, RanksWithBatchBEqualOneProcessWithBatchNB_Overlap) {
  int64_t in_backward = 0;
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=true"}, 1, &in_backward), 2e-5);
  EXPECT_GT(in_backward, 1) << "buckets should start while backward runs";
}

TEST(Training, RanksWithBatchBEqualOneProcessWithBatchNB_NoOverlap) {
  int64_t in_backward = -1;
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=false"}, 1, &in_backward), 2e-5);
  EXPECT_EQ(in_backward, 0);
}

TEST(Training, AccumulationEqualsTheLargerBatch) {
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=true"}, 3), 2e-5);
  EXPECT_LT(distributed_vs_one_process({"dist.overlap=false"}, 2), 2e-5);
}

TEST(Training, Bf16GradientsStayWithinTolerance) {
  // bf16 keeps 8 bits of mantissa: 5 steps drift by well under 1e-2 here; fp32 stays at 2e-5.
  const float bf16 = distributed_vs_one_process({"dist.grad_dtype=bf16"});
  EXPECT_LT(bf16, 1e-2);
  EXPECT_LT(distributed_vs_one_process({"dist.grad_dtype=fp16"}), 1e-2);
  EXPECT_GT(bf16, 0.0f) << "bf16 rounding should be visible, else compression did not happen";
}

TEST(Precision, Bf16AutocastLearnsLikeFp32) {
  // Same seed, data and steps; only train.precision differs. bf16 autocast rounds activations and
  // weights in the convolutions to 8 mantissa bits, so the runs differ, but both learn and their
  // last-interval mean losses stay within 0.1 of each other (measured: about 0.001 apart).
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TrainSummary summary[2];
  at::Tensor params[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    Config c =
        small_config(dir, {std::string("train.precision=") + precisions[i], "train.max_steps=20",
                           "train.batch_size=32", "train.lr=0.01", "train.momentum=0.9", "log.every_steps=5",
                           "data.synthetic_train=2048", "data.synthetic_test=64"});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    summary[i] = trainer.run();
    params[i] = flat_params(trainer.model());
    EXPECT_EQ(summary[i].bad_steps, 0) << precisions[i];
    EXPECT_LT(summary[i].last_loss, summary[i].first_loss - 0.05) << precisions[i] << " did not learn";
    // Replicas stay bit-identical under autocast too.
    at::Tensor all = comm.all_gather(params[i]);
    for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << precisions[i];
  }
  EXPECT_LT(std::abs(summary[1].last_loss - summary[0].last_loss), 0.1);
  EXPECT_FALSE(torch::equal(params[0], params[1])) << "bf16 made no difference: autocast was not on";
  EXPECT_EQ(params[1].scalar_type(), at::kFloat) << "master weights stay fp32";
}

TEST(MemoryFormat, ChannelsLastTrainsLikeChannelsFirst) {
  // NHWC changes only the order of float additions inside the convolutions: the two runs agree
  // to float rounding, and the replicas stay bit-identical.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  at::Tensor params[2];
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    Config c = small_config(dir, {std::string("train.channels_last=") + (i ? "true" : "false"),
                                  "model.name=resnet9", "train.max_steps=2", "train.batch_size=4",
                                  "train.momentum=0.9", "data.synthetic_train=64", "data.synthetic_test=8"});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    params[i] = flat_params(trainer.model());
    if (i) {
      EXPECT_TRUE(trainer.model().parameters()[0].is_contiguous(at::MemoryFormat::ChannelsLast));
    }
    at::Tensor all = comm.all_gather(params[i]);
    for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << i;
  }
  EXPECT_LT((params[0] - params[1]).abs().max().item<float>(), 1e-4);
}

TEST(ConvAlgorithm, WinogradTrainsLikeDirect) {
  // train.conv_algorithm=auto runs ResNet-9's 3x3 convolutions as Winograd F(4x4, 3x3) on the
  // CPU: the same training up to float rounding, and the replicas stay bit-identical.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  const char* algorithms[] = {"direct", "auto"};
  at::Tensor params[2];
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    Config c = small_config(dir, {std::string("train.conv_algorithm=") + algorithms[i], "model.name=resnet9",
                                  "train.max_steps=2", "train.batch_size=4", "train.momentum=0.9",
                                  "data.synthetic_train=64", "data.synthetic_test=8"});
    Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
    trainer.run();
    params[i] = flat_params(trainer.model());
    at::Tensor all = comm.all_gather(params[i]);
    for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << algorithms[i];
  }
  EXPECT_LT((params[0] - params[1]).abs().max().item<float>(), 1e-4);
  EXPECT_FALSE(torch::equal(params[0], params[1])) << "auto made no difference: Winograd did not run";
}

TEST(Training, LearnsFromCifarFilesAndEvaluatesEveryImageOnce) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  // Every rank writes the same generated images in the CIFAR-10 binary layout to its own folder.
  const std::string root = dir.path() + "/cifar-10-batches-bin";
  files::make_directories(root);
  ImageDataset train = make_synthetic_dataset(2500, 11), test = make_synthetic_dataset(1001, 12);
  for (int f = 0; f < 5; ++f) {
    write_cifar10_file(root + "/data_batch_" + std::to_string(f + 1) + ".bin",
                       train.images.narrow(0, f * 500, 500), train.labels.narrow(0, f * 500, 500));
  }
  write_cifar10_file(root + "/test_batch.bin", test.images, test.labels);
  Config c = small_config(
      dir, {"data.dataset=cifar10", "data.root=" + dir.path(), "train.epochs=2", "train.batch_size=32",
            "train.lr=0.01", "train.momentum=0.9", "train.lr_schedule=cosine", "log.every_steps=10"});
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.eval.count, 1001);  // 1001 does not divide by 2 or 3 ranks: no padded duplicates
  EXPECT_GT(s.eval.accuracy, 0.5) << "chance is 0.1";
  EXPECT_LT(s.last_loss, s.first_loss);
  if (comm.rank() == 0) {
    EXPECT_TRUE(files::exists(dir.path() + "/logs/metrics.jsonl"));
    EXPECT_EQ(list_checkpoints(dir.path() + "/ckpt").size(), 2u);
  }
}

}  // namespace
}  // namespace ddp

namespace ddp {
namespace {

std::string rank0_string(const std::string& mine) {
  int len = static_cast<int>(mine.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string out(static_cast<size_t>(len), '\0');
  if (world_rank() == 0) out = mine;
  MPI_Bcast(out.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
  return out;
}

std::vector<std::string> resume_config(const std::string& dir, int64_t batch) {
  return {"log.dir=" + dir + "/logs", "checkpoint.dir=" + dir + "/ckpt", "data.dataset=synthetic",
          "train.threads=1", "log.every_steps=4", "train.epochs=2", "train.momentum=0.9", "train.lr=0.02",
          "train.lr_schedule=cosine", "data.augment=true",
          // A multiple of every world size's images per step: no padded samples at the epoch end,
          // so runs of different world sizes see exactly the same samples.
          "data.synthetic_train=" + std::to_string(16 * world_size() * 8), "data.synthetic_test=64",
          "train.batch_size=" + std::to_string(batch), "checkpoint.keep=10"};
}

TEST(Resume, StopAndResumeIsBitIdenticalToAnUninterruptedRun) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir a, b;
  auto with = [](std::vector<std::string> v, std::vector<std::string> more) {
    v.insert(v.end(), more.begin(), more.end());
    return v;
  };
  Config full = parse_config("", "t", resume_config(a.path(), 16));
  Trainer uninterrupted(full, comm, torch::kCPU, load_dataset(full, true), load_dataset(full, false));
  TrainSummary whole = uninterrupted.run();
  // Stopped mid-epoch 1 as if signalled (rank 0 only asks; all ranks must agree), then resumed.
  const std::string dir_b = rank0_string(b.path());
  FaultInjection stop;
  Config first = parse_config("", "t", with(resume_config(dir_b, 16), {"fault.stop_at_step=5"}), &stop);
  Trainer part1(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false), stop);
  TrainSummary s1 = part1.run();
  EXPECT_TRUE(s1.stopped_by_signal);
  EXPECT_EQ(s1.steps, 5);
  at::Tensor steps = comm.all_gather(torch::tensor({s1.steps}));
  EXPECT_TRUE(torch::equal(steps, torch::full_like(steps, 5))) << "ranks stopped at different steps";
  Config second = parse_config("", "t", with(resume_config(dir_b, 16), {"resume=auto"}));
  Trainer part2(second, comm, torch::kCPU, load_dataset(second, true), load_dataset(second, false));
  TrainSummary s2 = part2.run();
  EXPECT_FALSE(s2.stopped_by_signal);
  EXPECT_EQ(s2.steps, whole.steps);
  EXPECT_TRUE(torch::equal(flat_params(part2.model()), flat_params(uninterrupted.model())))
      << "max difference "
      << (flat_params(part2.model()) - flat_params(uninterrupted.model())).abs().max().item<float>();
  comm.barrier();  // rank 0's directories outlive the other ranks' reads
}

// fp16 runs on CPU (slowly, with a warning) so that the loss-scaling path is tested here; see
// Note [loss scaling and bad steps].
std::vector<std::string> fp16_config(const std::string& dir, const std::string& scale) {
  return {"log.dir=" + dir + "/logs",  "checkpoint.dir=" + dir + "/ckpt",
          "data.dataset=synthetic",    "train.threads=1",
          "log.every_steps=2",         "train.precision=fp16",
          "train.loss_scale=" + scale, "train.loss_scale_growth_steps=1000",
          "train.batch_size=16",       "train.lr=0.01",
          "train.momentum=0.9",        "data.synthetic_train=1024",
          "data.synthetic_test=16",    "checkpoint.keep=10"};
}

TEST(Precision, Fp16OverflowSkipsTheStepOnEveryRankAlike) {
  // A scale of 1e30 overflows float16 in the first backward whatever the data: every rank must
  // see the overflow, halve the scale and leave the parameters untouched.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  auto overrides = fp16_config(dir.path(), "1e30");
  overrides.push_back("train.max_steps=1");
  Config c = parse_config("", "t", overrides);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false));
  const at::Tensor before = flat_params(trainer.model()).clone();
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.overflow_steps, 1);
  EXPECT_EQ(s.bad_steps, 0) << "an overflow is not a bad step while the scale can still fall";
  EXPECT_EQ(s.loss_scale, 5e29);
  EXPECT_TRUE(torch::equal(flat_params(trainer.model()), before)) << "the overflowing step was applied";
  at::Tensor counts = comm.all_gather(torch::tensor({s.overflow_steps}));
  EXPECT_TRUE(torch::equal(counts, torch::full_like(counts, 1))) << "ranks disagreed on the overflow";
}

TEST(Precision, Fp16LearnsAndItsLossScaleSurvivesResume) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir d;
  const std::string dir = rank0_string(d.path());
  // 2^24 overflows for the first steps, then the scale settles where the gradients fit in fp16.
  auto first_overrides = fp16_config(dir, "16777216");
  first_overrides.push_back("train.max_steps=30");
  first_overrides.push_back("dist.check_params_every=10");  // Replicas stay identical through the skips.
  Config first = parse_config("", "t", first_overrides);
  Trainer part1(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false));
  TrainSummary s1 = part1.run();
  EXPECT_GE(s1.overflow_steps, 1);
  EXPECT_EQ(s1.bad_steps, 0);
  EXPECT_EQ(s1.loss_scale, std::ldexp(1.0, 24 - static_cast<int>(s1.overflow_steps)));
  EXPECT_LT(s1.last_loss, s1.first_loss - 0.05) << "fp16 did not learn";
  EXPECT_GT(s1.first_loss, 0.0) << "an interval of skipped steps was reported as loss 0";
  // Resumed with train.loss_scale=1 in the config: only the checkpoint's scale can be above 1
  // (growth needs 1000 good steps).
  auto second_overrides = fp16_config(dir, "1");
  second_overrides.push_back("train.max_steps=34");
  second_overrides.push_back("resume=auto");
  Config second = parse_config("", "t", second_overrides);
  Trainer part2(second, comm, torch::kCPU, load_dataset(second, true), load_dataset(second, false));
  TrainSummary s2 = part2.run();
  EXPECT_EQ(s2.steps, 34);
  EXPECT_EQ(s2.loss_scale, std::ldexp(s1.loss_scale, -static_cast<int>(s2.overflow_steps)));
  EXPECT_GT(s2.loss_scale, 1.0) << "the checkpoint's loss scale was not restored";
  comm.barrier();  // rank 0's directory outlives the other ranks' reads
}

TEST(Resume, ARunNeverOverwritesLaterCheckpoints) {
  // A fresh run, or a resume from an earlier checkpoint, into a folder that holds later
  // checkpoints would overwrite them (same names) and prune them (newest by step): refused on
  // every rank before any step, and the files stay as they were.
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir d;
  const std::string dir = rank0_string(d.path());
  Config first = parse_config("", "t", resume_config(dir, 16));
  Trainer(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false)).run();
  comm.barrier();  // Rank 0 saves the last checkpoint after the last collective.
  const auto before = list_checkpoints(dir + "/ckpt");
  ASSERT_EQ(before.size(), 2u);
  std::vector<uint64_t> sums;
  for (const auto& p : before) sums.push_back(file_checksum(p));
  auto overrides = resume_config(dir, 16);
  overrides.push_back("log.dir=" + dir + "/refused_logs");  // Must stay free of metrics and event files.
  Config fresh = parse_config("", "t", overrides);
  Trainer t1(fresh, comm, torch::kCPU, load_dataset(fresh, true), load_dataset(fresh, false));
  const std::string why1 = testing::input_error_of([&] { t1.run(); });
  EXPECT_NE(why1.find("holds " + before[1] + ", written by another run"), std::string::npos) << why1;
  overrides.push_back("resume=" + before[0]);
  Config branch = parse_config("", "t", overrides);
  Trainer t2(branch, comm, torch::kCPU, load_dataset(branch, true), load_dataset(branch, false));
  const std::string why2 = testing::input_error_of([&] { t2.run(); });
  EXPECT_NE(why2.find("holds " + before[1] + ", later than the resumed checkpoint"), std::string::npos)
      << why2;
  EXPECT_EQ(list_checkpoints(dir + "/ckpt"), before);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(file_checksum(before[i]), sums[i]) << before[i];
  if (comm.rank() == 0) {
    EXPECT_TRUE(files::is_directory(dir + "/refused_logs")) << "the refused runs did not use their log.dir";
    EXPECT_EQ(files::list_directory(dir + "/refused_logs"), std::vector<std::string>{});
  }
  comm.barrier();  // rank 0's directory outlives the other ranks' reads
}

TEST(Resume, AnotherWorldSizeContinuesTheSameDataOrder) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  MpiCommunicator self(MPI_COMM_SELF, kTimeout);
  const int n = comm.size();
  TempDir a, b, c;
  Config full = parse_config("", "t", resume_config(a.path(), 16));
  Trainer uninterrupted(full, comm, torch::kCPU, load_dataset(full, true), load_dataset(full, false));
  uninterrupted.run();
  const std::string dir_b = rank0_string(b.path());
  auto first_overrides = resume_config(dir_b, 16);
  first_overrides.push_back("fault.stop_at_step=3");
  FaultInjection stop;
  Config first = parse_config("", "t", first_overrides, &stop);
  Trainer part1(first, comm, torch::kCPU, load_dataset(first, true), load_dataset(first, false), stop);
  EXPECT_TRUE(part1.run().stopped_by_signal);
  comm.barrier();
  std::vector<std::string> ckpts = list_checkpoints(dir_b + "/ckpt");
  ASSERT_EQ(ckpts.size(), 1u);
  // Every rank continues alone with the whole per-step batch: same samples per step.
  auto second_overrides = resume_config(c.path(), 16 * n);
  second_overrides.push_back("resume=" + ckpts[0]);
  Config second = parse_config("", "t", second_overrides);
  Trainer part2(second, self, torch::kCPU, load_dataset(second, true), load_dataset(second, false));
  part2.run();
  at::Tensor x = flat_params(part2.model()), y = flat_params(uninterrupted.model());
  // Equal up to float summation order: the N-rank all-reduce adds the ranks' gradients in another
  // order than one process summing its whole batch (Open MPI's ring at 3 ranks: 1.7e-5 after 16
  // steps). Another data order would change the last 13 steps' gradients outright.
  EXPECT_TRUE(torch::allclose(x, y, 1e-4, 1e-4)) << "max difference " << (x - y).abs().max().item<float>();
  // The tolerance tells data orders apart: the same resume reading the same images unshuffled is far off.
  TempDir d;
  auto other_order = resume_config(d.path(), 16 * n);
  other_order.push_back("resume=" + ckpts[0]);
  other_order.push_back("data.shuffle=false");
  Config third = parse_config("", "t", other_order);
  Trainer part3(third, self, torch::kCPU, load_dataset(third, true), load_dataset(third, false));
  part3.run();
  at::Tensor z = flat_params(part3.model());
  EXPECT_FALSE(torch::allclose(z, y, 1e-4, 1e-4)) << "max difference " << (z - y).abs().max().item<float>();
  comm.barrier();
}

TEST(Numerics, NonFiniteStepIsSkippedOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  FaultInjection faults;
  Config c = small_config(dir,
                          {"train.max_steps=6", "fault.nan_at_step=3",
                           "fault.nan_rank=" + std::to_string(comm.size() - 1), "data.synthetic_train=512"},
                          &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.bad_steps, 1);
  EXPECT_EQ(s.steps, 6);
  at::Tensor mine = flat_params(trainer.model());
  EXPECT_TRUE(at::isfinite(mine).all().item<bool>());
  at::Tensor all = comm.all_gather(mine);
  for (int r = 1; r < comm.size(); ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << "rank " << r;
}

TEST(Numerics, TooManyBadStepsStopEveryRankWithOneError) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  FaultInjection faults;
  Config c = small_config(
      dir, {"train.max_steps=6", "fault.nan_at_step=2", "train.max_bad_steps=0", "data.synthetic_train=512"},
      &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  try {
    trainer.run();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.same_on_all_ranks());
    EXPECT_NE(std::string(e.what()).find("training diverged"), std::string::npos) << e.what();
  }
}

TEST(Numerics, ParameterDriftNamesTheRank) {
  MpiCommunicator comm(MPI_COMM_WORLD, kTimeout);
  TempDir dir;
  const int drifter = comm.size() - 1;
  FaultInjection faults;
  Config c = small_config(dir,
                          {"train.max_steps=6", "dist.check_params_every=2", "fault.drift_at_step=3",
                           "fault.drift_rank=" + std::to_string(drifter), "data.synthetic_train=512"},
                          &faults);
  Trainer trainer(c, comm, torch::kCPU, load_dataset(c, true), load_dataset(c, false), faults);
  try {
    trainer.run();
    ADD_FAILURE() << "drift not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("replica check at step 4: the parameters of rank " +
                                         std::to_string(drifter)),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ddp
