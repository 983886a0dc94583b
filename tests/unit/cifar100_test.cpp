#include "ddp/data/cifar100.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include "ddp/core/check.h"
#include "fixtures.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::TempDir;
using testing::write_cifar100_file;
const auto& error_of = testing::input_error_of;

TEST(Cifar100, ReadsFineLabelsOfTrainAndTest) {
  TempDir tmp;
  files::make_directories(tmp.file("cifar-100-binary"));
  auto images = torch::randint(0, 256, {5, 3, 32, 32}, torch::kByte);
  auto coarse = torch::randint(0, 20, {5}, torch::kLong), fine = torch::randint(0, 100, {5}, torch::kLong);
  write_cifar100_file(tmp.file("cifar-100-binary/train.bin"), images, coarse, fine);
  write_cifar100_file(tmp.file("cifar-100-binary/test.bin"), images.narrow(0, 0, 2), coarse.narrow(0, 0, 2),
                      fine.narrow(0, 0, 2));
  EXPECT_EQ(files::file_size(tmp.file("cifar-100-binary/train.bin")), 5 * 3074);
  ImageDataset d = load_cifar100(tmp.path(), true);
  EXPECT_EQ(d.name, "cifar100");
  EXPECT_EQ(d.num_classes, 100);
  EXPECT_TRUE(torch::equal(d.images, images));
  EXPECT_TRUE(torch::equal(d.labels, fine));
  EXPECT_EQ(load_cifar100(tmp.file("cifar-100-binary"), false).size(), 2);  // the folder itself as root
}

TEST(Cifar100, TruncatedAndBadLabelsNameFileAndOffset) {
  TempDir tmp;
  auto fine = torch::zeros({3}, torch::kLong);
  fine[1] = 100;
  write_cifar100_file(tmp.file("bad.bin"), torch::zeros({3, 3, 32, 32}, torch::kByte),
                      torch::zeros({3}, torch::kLong), fine);
  at::Tensor im, lb;
  std::string msg = error_of([&] { read_cifar100_file(tmp.file("bad.bin"), &im, &lb); });
  EXPECT_NE(msg.find(tmp.file("bad.bin") + ": labels (coarse 0, fine 100) of record 1 at offset 3074"),
            std::string::npos)
      << msg;
  ASSERT_EQ(::truncate(tmp.file("bad.bin").c_str(), 3074 + 10), 0);
  msg = error_of([&] { read_cifar100_file(tmp.file("bad.bin"), &im, &lb); });
  EXPECT_NE(msg.find("record 1 at offset 3074 is incomplete"), std::string::npos) << msg;
  msg = error_of([&] { load_cifar100(tmp.file("nope"), true); });
  EXPECT_NE(msg.find("CIFAR-100 not found"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ddp
