#include "ddp/data/mnist.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>

#include "ddp/core/check.h"
#include "fixtures.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::TempDir;
using testing::write_idx_file;
const auto& error_of = testing::input_error_of;

TEST(Mnist, ReadsGzippedAndPlainIdxAndPadsTo32) {
  TempDir tmp;
  auto train_images = torch::randint(1, 256, {7, 28, 28}, torch::kByte);
  auto train_labels = torch::randint(0, 10, {7}, torch::kLong);
  write_idx_file(tmp.file("train-images-idx3-ubyte.gz"), train_images);
  write_idx_file(tmp.file("train-labels-idx1-ubyte.gz"), train_labels);
  write_idx_file(tmp.file("t10k-images-idx3-ubyte"), train_images.narrow(0, 0, 3));  // plain
  write_idx_file(tmp.file("t10k-labels-idx1-ubyte"), train_labels.narrow(0, 0, 3));
  // gzip really compressed it; the plain file is header + bytes.
  EXPECT_LT(files::file_size(tmp.file("train-labels-idx1-ubyte.gz")), 8 + 7 + 30);
  EXPECT_EQ(files::file_size(tmp.file("t10k-images-idx3-ubyte")), 16 + 3 * 28 * 28);
  ImageDataset d = load_mnist(tmp.path(), true, "fashion_mnist");
  EXPECT_EQ(d.name, "fashion_mnist");
  ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{7, 1, 32, 32}));
  EXPECT_TRUE(torch::equal(d.images.narrow(2, 2, 28).narrow(3, 2, 28).squeeze(1), train_images));
  EXPECT_EQ(d.images.sum().item<int64_t>(),
            train_images.to(torch::kLong).sum().item<int64_t>());  // zero border
  EXPECT_TRUE(torch::equal(d.labels, train_labels));
  EXPECT_EQ(load_mnist(tmp.path(), false, "mnist").size(), 3);
}

TEST(Mnist, FindsFilesInTheDatasetSubfolder) {
  TempDir tmp;
  files::make_directories(tmp.file("fashion-mnist"));
  write_idx_file(tmp.file("fashion-mnist/t10k-images-idx3-ubyte.gz"),
                 torch::zeros({2, 28, 28}, torch::kByte));
  write_idx_file(tmp.file("fashion-mnist/t10k-labels-idx1-ubyte.gz"), torch::zeros({2}, torch::kLong));
  EXPECT_EQ(load_mnist(tmp.path(), false, "fashion_mnist").size(), 2);
  const std::string msg = error_of([&] { load_mnist(tmp.path(), true, "fashion_mnist"); });
  EXPECT_NE(msg.find("Fashion-MNIST not found: neither " + tmp.file("train-images-idx3-ubyte")),
            std::string::npos)
      << msg;
}

TEST(Mnist, BadMagicTruncationAndMismatchNameTheFile) {
  TempDir tmp;
  write_idx_file(tmp.file("labels"), torch::zeros({4}, torch::kLong));
  std::string msg = error_of([&] { read_idx_images(tmp.file("labels")); });
  EXPECT_NE(msg.find("IDX file " + tmp.file("labels") + ": magic number 0x00000801 is not 0x00000803"),
            std::string::npos)
      << msg;

  write_idx_file(tmp.file("images"), torch::zeros({4, 28, 28}, torch::kByte));
  ASSERT_EQ(::truncate(tmp.file("images").c_str(), 16 + 3 * 784 + 5), 0);
  msg = error_of([&] { read_idx_images(tmp.file("images")); });
  EXPECT_NE(
      msg.find("is truncated or corrupt: its header says 4x28x28 = 3136 bytes of data but it holds 2357"),
      std::string::npos)
      << msg;

  // A gzip stream cut in the middle.
  write_idx_file(tmp.file("big.gz"), torch::randint(0, 256, {50, 28, 28}, torch::kByte));
  ASSERT_EQ(::truncate(tmp.file("big.gz").c_str(), files::file_size(tmp.file("big.gz")) / 2), 0);
  msg = error_of([&] { read_idx_images(tmp.file("big.gz")); });
  EXPECT_NE(msg.find(tmp.file("big.gz")), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  auto labels = torch::zeros({3}, torch::kLong);
  labels[2] = 10;
  write_idx_file(tmp.file("l10"), labels);
  msg = error_of([&] { read_idx_labels(tmp.file("l10")); });
  EXPECT_NE(msg.find("label 10 of item 2 at offset 10 is out of range"), std::string::npos) << msg;

  write_idx_file(tmp.file("train-images-idx3-ubyte"), torch::zeros({3, 28, 28}, torch::kByte));
  write_idx_file(tmp.file("train-labels-idx1-ubyte"), torch::zeros({2}, torch::kLong));
  msg = error_of([&] { load_mnist(tmp.path(), true); });
  EXPECT_NE(msg.find("holds 3 images but"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ddp
