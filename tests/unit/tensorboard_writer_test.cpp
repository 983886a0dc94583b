#include "ddp/observe/tensorboard_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/core/files.h"
#include "test_files.h"

namespace ddp {
namespace {

using tensorboard::crc32c;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

uint64_t read_le(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// RFC 3720 (iSCSI), appendix B.4: CRC32C examples.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<unsigned char> buf(32);
  std::memset(buf.data(), 0, 32);
  EXPECT_EQ(crc32c(buf.data(), 32), 0x8A9136AAu);
  std::memset(buf.data(), 0xff, 32);
  EXPECT_EQ(crc32c(buf.data(), 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(buf.data(), 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(crc32c(buf.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // The CRC catalogue's check value.
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(Crc32c, MaskRotatesAndAddsTheDelta) {
  const uint32_t c = crc32c("123456789", 9);
  EXPECT_EQ(tensorboard::masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(Varint, ProtobufEncoding) {
  auto enc = [](uint64_t v) {
    std::string s;
    tensorboard::append_varint(&s, v);
    return s;
  };
  EXPECT_EQ(enc(0), bytes({0x00}));
  EXPECT_EQ(enc(1), bytes({0x01}));
  EXPECT_EQ(enc(127), bytes({0x7f}));
  EXPECT_EQ(enc(128), bytes({0x80, 0x01}));
  EXPECT_EQ(enc(300), bytes({0xac, 0x02}));  // The protobuf documentation's example.
  EXPECT_EQ(enc(static_cast<uint64_t>(int64_t{-1})).size(), 10u);
}

TEST(EventEncoding, ScalarEventBytes) {
  // wall_time 0.0, step 1, tag "a", value 1.0f.
  const std::string expected = bytes({0x09, 0,    0,    0,    0,   0, 0, 0, 0,  // 1: wall_time, fixed64 0.0
                                      0x10, 0x01,                               // 2: step, varint 1
                                      0x2a, 0x0a,                               // 5: summary, 10 bytes
                                      0x0a, 0x08,                               //   1: value, 8 bytes
                                      0x0a, 0x01, 'a',                          //     1: tag "a"
                                      0x15, 0x00, 0x00, 0x80, 0x3f});  //     2: simple_value, fixed32 1.0f
  EXPECT_EQ(tensorboard::encode_scalar_event(0.0, 1, "a", 1.0f), expected);
}

TEST(EventEncoding, FileVersionEvent) {
  const std::string e = tensorboard::encode_file_version_event(0.0);
  EXPECT_EQ(e.substr(0, 9), bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e.substr(9), bytes({0x1a, 13}) + "brain.Event:2");
}

TEST(EventEncoding, RecordFraming) {
  const std::string data = "hello";
  const std::string r = tensorboard::frame_record(data);
  ASSERT_EQ(r.size(), 8 + 4 + data.size() + 4);
  EXPECT_EQ(read_le(r, 0, 8), data.size());
  EXPECT_EQ(read_le(r, 8, 4), tensorboard::masked_crc32c(r.data(), 8));
  EXPECT_EQ(r.substr(12, data.size()), data);
  EXPECT_EQ(read_le(r, 12 + data.size(), 4), tensorboard::masked_crc32c(data.data(), data.size()));
}

TEST(TensorBoardWriter, WritesFramedRecordsToANamedFile) {
  testing::TempDir dir;
  std::string path;
  const double before = static_cast<double>(std::time(nullptr));
  {
    TensorBoardWriter w(dir.path());
    path = w.path();
    w.add_scalar("train_loss", 2.5, 100);
  }
  const double after = static_cast<double>(std::time(nullptr)) + 1;
  // TensorBoard's name: events.out.tfevents.<seconds>.<host>.
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::string prefix = dir.path() + "/events.out.tfevents.";
  ASSERT_EQ(path.find(prefix), 0u) << path;
  const std::string seconds = path.substr(prefix.size(), path.rfind("." + std::string(host)) - prefix.size());
  EXPECT_EQ(path, prefix + seconds + "." + host);
  EXPECT_GE(std::stod(seconds), before - 1) << path;
  EXPECT_LE(std::stod(seconds), after) << path;
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string f = ss.str();
  // Walk the records: every length and CRC checks out, and there are exactly two.
  std::vector<std::string> records;
  size_t at = 0;
  while (at < f.size()) {
    ASSERT_LE(at + 12, f.size());
    const uint64_t len = read_le(f, at, 8);
    EXPECT_EQ(read_le(f, at + 8, 4), tensorboard::masked_crc32c(f.data() + at, 8));
    ASSERT_LE(at + 12 + len + 4, f.size());
    EXPECT_EQ(read_le(f, at + 12 + len, 4), tensorboard::masked_crc32c(f.data() + at + 12, len));
    records.push_back(f.substr(at + 12, len));
    at += 12 + len + 4;
  }
  ASSERT_EQ(records.size(), 2u);
  // Each an Event whose wall_time (field 1, fixed64) is now; then the file version, then the scalar.
  for (const auto& r : records) {
    ASSERT_GT(r.size(), 9u);
    EXPECT_EQ(r[0], 0x09);
    double wall = 0;
    std::memcpy(&wall, r.data() + 1, 8);
    EXPECT_GE(wall, before - 1);
    EXPECT_LE(wall, after);
  }
  EXPECT_EQ(records[0].substr(9), tensorboard::encode_file_version_event(0.0).substr(9));
  EXPECT_EQ(records[1].substr(9), tensorboard::encode_scalar_event(0.0, 100, "train_loss", 2.5f).substr(9));
}

TEST(TensorBoardWriter, UnwritableDirectoryIsAnInputError) {
  const std::string why = testing::input_error_of([] { TensorBoardWriter("/nonexistent-ddptrain-dir/x"); });
  EXPECT_THAT(why, ::testing::StartsWith("cannot create TensorBoard event file "
                                         "/nonexistent-ddptrain-dir/x/events.out.tfevents."));
  EXPECT_THAT(why,
              ::testing::EndsWith(": No such file or directory; check log.dir or set log.tensorboard=false"));
}

}  // namespace
}  // namespace ddp
