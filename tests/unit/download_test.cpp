// Download, checksum, extraction and re-use of a dataset archive, against a server on 127.0.0.1
// that the test starts, serving a small CIFAR-10-layout tarball that the test builds.
#include "ddp/data/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "ddp/core/check.h"
#include "ddp/data/cifar10.h"
#include "fixtures.h"
#include "http_test_server.h"
#include "test_files.h"

namespace ddp {
namespace {

using testing::HttpTestServer;
using testing::TempDir;
using testing::write_cifar10_file;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A tar.gz in memory holding `entries` (name -> content).
std::string make_tar_gz(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<char> buf(64 << 20);
  size_t used = 0;
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  for (const auto& [name, content] : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

// A CIFAR-10 tarball of 3 records per batch file, and the test set's labels.
std::string make_cifar_tarball(at::Tensor* test_labels) {
  TempDir tmp;
  std::vector<std::pair<std::string, std::string>> entries;
  for (int f = 0; f <= 5; ++f) {
    const std::string name = f == 0 ? "test_batch.bin" : "data_batch_" + std::to_string(f) + ".bin";
    auto labels = torch::randint(0, 10, {3}, torch::kLong);
    if (f == 0) *test_labels = labels;
    write_cifar10_file(tmp.file(name), torch::randint(0, 256, {3, 3, 32, 32}, torch::kByte), labels);
    entries.emplace_back("cifar-10-batches-bin/" + name, read_file(tmp.file(name)));
  }
  entries.emplace_back("cifar-10-batches-bin/batches.meta.txt", "airplane\n");
  return make_tar_gz(entries);
}

ArchiveSpec cifar_spec(const std::string& url, const std::string& md5) {
  return {url,
          md5,
          "cifar-10-binary.tar.gz",
          "cifar-10-batches-bin",
          {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
           "test_batch.bin"}};
}

// Only temporary names would be left behind by a failure: none may remain.
bool no_leftovers(const std::string& root) {
  for (const auto& name : files::list_directory(root)) {
    if (name.find(".part-") != std::string::npos || name.rfind(".extract-", 0) == 0) return false;
  }
  return true;
}

std::string error_of(const ArchiveSpec& spec, const std::string& root) {
  try {
    fetch_archive(spec, root, false);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

class Download : public ::testing::Test {
 protected:
  void SetUp() override {
    // Traffic goes only to 127.0.0.1: keep any configured proxy out of it.
    ::setenv("no_proxy", "127.0.0.1", 1);
    ::setenv("NO_PROXY", "127.0.0.1", 1);
    tarball_ = make_cifar_tarball(&test_labels_);
    server_.serve("/cifar-10-binary.tar.gz", tarball_);
  }
  HttpTestServer server_;
  std::string tarball_;
  at::Tensor test_labels_;
  TempDir root_;
};

TEST(Md5, Rfc1321Vectors) {
  EXPECT_EQ(md5_hex("", 0), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("a", 1), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5_hex("abc", 3), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest", 14), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("abcdefghijklmnopqrstuvwxyz", 26), "c3fcd3d76192e4007dfb496cca67e13b");
  const std::string alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  EXPECT_EQ(md5_hex(alnum.data(), alnum.size()), "d174ab98d277d9f5a5611c2c9f419d9f");
  std::string digits;
  for (int i = 0; i < 8; ++i) digits += "1234567890";
  EXPECT_EQ(md5_hex(digits.data(), digits.size()), "57edf4a22be3c955ac49da2e2107b67a");
}

TEST_F(Download, FetchesVerifiesExtractsAndReuses) {
  const ArchiveSpec spec =
      cifar_spec(server_.url("/cifar-10-binary.tar.gz"), md5_hex(tarball_.data(), tarball_.size()));
  EXPECT_EQ(fetch_archive(spec, root_.path(), false), FetchResult::kDownloaded);
  EXPECT_EQ(server_.gets("/cifar-10-binary.tar.gz"), 1);
  EXPECT_EQ(read_file(root_.file("cifar-10-binary.tar.gz")), tarball_);
  EXPECT_TRUE(no_leftovers(root_.path()));
  ImageDataset train = load_cifar10(root_.path(), true), test = load_cifar10(root_.path(), false);
  EXPECT_EQ(train.size(), 15);
  EXPECT_TRUE(torch::equal(test.labels, test_labels_));

  // Present and complete: nothing is fetched again.
  EXPECT_EQ(fetch_archive(spec, root_.path(), false), FetchResult::kAlreadyPresent);
  EXPECT_EQ(server_.gets("/cifar-10-binary.tar.gz"), 1);
  // Extracted data gone but a valid archive there: extracted again, not downloaded.
  files::remove_tree(root_.file("cifar-10-batches-bin"));
  EXPECT_EQ(fetch_archive(spec, root_.path(), false), FetchResult::kExtractedExisting);
  EXPECT_EQ(server_.gets("/cifar-10-binary.tar.gz"), 1);
  EXPECT_EQ(load_cifar10(root_.path(), true).size(), 15);
}

TEST_F(Download, WrongChecksumIsAnErrorAndRemovesTheDownload) {
  const std::string msg =
      error_of(cifar_spec(server_.url("/cifar-10-binary.tar.gz"), std::string(32, '0')), root_.path());
  EXPECT_NE(
      msg.find("MD5 of " + server_.url("/cifar-10-binary.tar.gz") + " is " +
               md5_hex(tarball_.data(), tarball_.size()) + ", expected 00000000000000000000000000000000"),
      std::string::npos)
      << msg;
  EXPECT_FALSE(files::exists(root_.file("cifar-10-binary.tar.gz")));
  EXPECT_FALSE(files::exists(root_.file("cifar-10-batches-bin")));
  EXPECT_TRUE(no_leftovers(root_.path()));
}

TEST_F(Download, Http404IsAnError) {
  const std::string msg = error_of(cifar_spec(server_.url("/missing.tar.gz"), "x"), root_.path());
  EXPECT_NE(msg.find("download of " + server_.url("/missing.tar.gz") + " failed: HTTP 404"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(files::exists(root_.file("cifar-10-binary.tar.gz")));
  EXPECT_TRUE(no_leftovers(root_.path()));
}

TEST_F(Download, RefusedConnectionIsAnError) {
  const std::string url = "http://127.0.0.1:" + std::to_string(HttpTestServer::unused_port()) + "/c.tar.gz";
  const std::string msg = error_of(cifar_spec(url, "x"), root_.path());
  // libcurl's wording varies by version ("Couldn't" in 7.88, "Could not" in 8.x).
  EXPECT_NE(msg.find("download of " + url + " failed: "), std::string::npos) << msg;
  EXPECT_NE(msg.find(" connect to server"), std::string::npos) << msg;
  EXPECT_TRUE(no_leftovers(root_.path()));
}

TEST_F(Download, TransferCutShortIsAnError) {
  server_.serve("/short.tar.gz", tarball_, /*cut_short=*/true);
  const std::string msg = error_of(cifar_spec(server_.url("/short.tar.gz"), "x"), root_.path());
  EXPECT_NE(msg.find("download of " + server_.url("/short.tar.gz") + " failed"), std::string::npos) << msg;
  EXPECT_FALSE(files::exists(root_.file("cifar-10-binary.tar.gz")));
  EXPECT_TRUE(no_leftovers(root_.path()));
}

TEST_F(Download, TruncatedArchiveIsAnErrorAndLeavesNoDataset) {
  // The checksum matches (data.md5 given for the truncated file): extraction must catch it.
  const std::string half = tarball_.substr(0, tarball_.size() / 2);
  server_.serve("/half.tar.gz", half);
  const std::string msg =
      error_of(cifar_spec(server_.url("/half.tar.gz"), md5_hex(half.data(), half.size())), root_.path());
  EXPECT_NE(msg.find("archive " + root_.file("cifar-10-binary.tar.gz") + " is corrupt or truncated"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(files::exists(root_.file("cifar-10-batches-bin")));
  EXPECT_TRUE(no_leftovers(root_.path()));
}

TEST_F(Download, ArchiveOfAnotherDatasetIsAnError) {
  const std::string other = make_tar_gz({{"something/else.bin", "abc"}});
  server_.serve("/other.tar.gz", other);
  const std::string msg =
      error_of(cifar_spec(server_.url("/other.tar.gz"), md5_hex(other.data(), other.size())), root_.path());
  EXPECT_NE(msg.find("does not hold cifar-10-batches-bin/"), std::string::npos) << msg;
  EXPECT_FALSE(files::exists(root_.file("cifar-10-batches-bin")));
  EXPECT_TRUE(no_leftovers(root_.path()));
}

}  // namespace
}  // namespace ddp
