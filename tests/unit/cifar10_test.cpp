#include "ddp/data/cifar10.h"

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
using testing::write_cifar10_file;

void write_set(const std::string& dir, int64_t per_file, at::Tensor* all_images, at::Tensor* all_labels) {
  files::make_directories(dir);
  std::vector<at::Tensor> ims, lbs;
  for (int f = 0; f <= 5; ++f) {
    auto im = torch::randint(0, 256, {per_file, 3, 32, 32}, torch::kByte);
    auto lb = torch::randint(0, 10, {per_file}, torch::kLong);
    const std::string name = f == 0 ? "test_batch.bin" : "data_batch_" + std::to_string(f) + ".bin";
    write_cifar10_file(dir + "/" + name, im, lb);
    if (f > 0) ims.push_back(im), lbs.push_back(lb);
  }
  *all_images = torch::cat(ims);
  *all_labels = torch::cat(lbs);
}

TEST(Cifar10, RoundTripsTwentyImages) {
  TempDir tmp;
  auto images = torch::randint(0, 256, {20, 3, 32, 32}, torch::kByte);
  auto labels = torch::randint(0, 10, {20}, torch::kLong);
  write_cifar10_file(tmp.file("b.bin"), images, labels);
  EXPECT_EQ(files::file_size(tmp.file("b.bin")), 20 * 3073);
  at::Tensor im, lb;
  read_cifar10_file(tmp.file("b.bin"), &im, &lb);
  EXPECT_TRUE(torch::equal(im, images));
  EXPECT_TRUE(torch::equal(lb, labels));
}

TEST(Cifar10, RecordLayoutIsLabelThenRedGreenBluePlanes) {
  TempDir tmp;
  std::vector<uint8_t> rec(3073);
  rec[0] = 7;
  for (int i = 0; i < 1024; ++i) rec[1 + i] = 10, rec[1025 + i] = 20, rec[2049 + i] = 30;
  rec[1 + 32 + 5] = 99;  // red, row 1, column 5
  std::ofstream(tmp.file("one.bin"), std::ios::binary).write(reinterpret_cast<char*>(rec.data()), rec.size());
  at::Tensor im, lb;
  read_cifar10_file(tmp.file("one.bin"), &im, &lb);
  EXPECT_EQ(lb[0].item<int64_t>(), 7);
  EXPECT_EQ(im[0][0][1][5].item<uint8_t>(), 99);
  EXPECT_EQ(im[0][1][0][0].item<uint8_t>(), 20);
  EXPECT_EQ(im[0][2][31][31].item<uint8_t>(), 30);
}

TEST(Cifar10, TruncatedFileNamesFileAndOffset) {
  TempDir tmp;
  write_cifar10_file(tmp.file("t.bin"), torch::zeros({3, 3, 32, 32}, torch::kByte),
                     torch::zeros({3}, torch::kLong));
  ASSERT_EQ(::truncate(tmp.file("t.bin").c_str(), 3073 * 2 + 100), 0);
  at::Tensor im, lb;
  try {
    read_cifar10_file(tmp.file("t.bin"), &im, &lb);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(tmp.file("t.bin")), std::string::npos) << msg;
    EXPECT_NE(msg.find("record 2 at offset 6146"), std::string::npos) << msg;
  }
}

TEST(Cifar10, BadLabelNamesRecordAndOffset) {
  TempDir tmp;
  auto labels = torch::zeros({4}, torch::kLong);
  labels[2] = 12;
  write_cifar10_file(tmp.file("l.bin"), torch::zeros({4, 3, 32, 32}, torch::kByte), labels);
  at::Tensor im, lb;
  try {
    read_cifar10_file(tmp.file("l.bin"), &im, &lb);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("label 12 of record 2 at offset 6146"), std::string::npos) << msg;
  }
}

TEST(Cifar10, LoadsBothSplitsFromEitherRootForm) {
  TempDir tmp;
  at::Tensor images, labels;
  write_set(tmp.path() + "/cifar-10-batches-bin", 6, &images, &labels);
  for (const std::string& root : std::vector<std::string>{tmp.path(), tmp.path() + "/cifar-10-batches-bin"}) {
    ImageDataset train = load_cifar10(root, true);
    EXPECT_EQ(train.size(), 30);
    EXPECT_TRUE(torch::equal(train.images, images));
    EXPECT_TRUE(torch::equal(train.labels, labels));
    EXPECT_EQ(load_cifar10(root, false).size(), 6);
  }
}

TEST(Cifar10, MissingDataNamesThePathAndTheKey) {
  TempDir tmp;
  try {
    load_cifar10(tmp.path() + "/nowhere", true);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    const std::string root = tmp.path() + "/nowhere";
    EXPECT_EQ(std::string(e.what()),
              "CIFAR-10 not found: " + root +
                  "/data_batch_1.bin does not exist. Put the binary version "
                  "(cifar-10-binary.tar.gz, extracted) under data.root=" +
                  root + " so that " + root +
                  "/cifar-10-batches-bin/ exists, set data.root, or set data.download=true");
  }
}

TEST(Cifar10, MissingLaterBatchIsNamed) {
  TempDir tmp;
  at::Tensor images, labels;
  write_set(tmp.path(), 2, &images, &labels);
  std::remove(tmp.file("data_batch_4.bin").c_str());
  try {
    load_cifar10(tmp.path(), true);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot read CIFAR-10 file " + tmp.file("data_batch_4.bin") +
                                         ": No such file or directory; check data.root (it must hold "
                                         "cifar-10-batches-bin/)");
  }
}

TEST(Cifar10, DirectoryInPlaceOfABatchIsNamed) {
  TempDir tmp;
  at::Tensor images, labels;
  write_set(tmp.path(), 2, &images, &labels);
  std::remove(tmp.file("data_batch_2.bin").c_str());
  files::make_directories(tmp.file("data_batch_2.bin"));
  const std::string why = testing::input_error_of([&] { load_cifar10(tmp.path(), true); });
  EXPECT_NE(why.find("data_batch_2.bin is a directory"), std::string::npos) << why;
}

}  // namespace
}  // namespace ddp
