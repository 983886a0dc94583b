#include "ddp/observe/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "ddp/core/check.h"
#include "ddp/core/files.h"

namespace ddp {
namespace tensorboard {
namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;  // Reflected Castagnoli polynomial.
constexpr uint32_t kMaskDelta = 0xa282ead8u;

// Protobuf wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPoly : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return kTable;
}

void append_tag(std::string* out, int field, int wire_type) {
  append_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

void append_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void append_double(std::string* out, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  append_tag(out, field, kFixed64);
  append_le(out, bits, 8);
}

void append_float(std::string* out, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  append_tag(out, field, kFixed32);
  append_le(out, bits, 4);
}

void append_bytes(std::string* out, int field, const std::string& bytes) {
  append_tag(out, field, kLengthDelimited);
  append_varint(out, bytes.size());
  out->append(bytes);
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& table = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + kMaskDelta;
}

void append_varint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

std::string encode_file_version_event(double wall_time) {
  std::string event;
  append_double(&event, 1, wall_time);       // Event.wall_time
  append_bytes(&event, 3, "brain.Event:2");  // Event.file_version
  return event;
}

std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string summary_value;
  append_bytes(&summary_value, 1, tag);    // Summary.Value.tag
  append_float(&summary_value, 2, value);  // Summary.Value.simple_value
  std::string summary;
  append_bytes(&summary, 1, summary_value);  // Summary.value
  std::string event;
  append_double(&event, 1, wall_time);  // Event.wall_time
  append_tag(&event, 2, kVarint);       // Event.step (int64: two's complement varint)
  append_varint(&event, static_cast<uint64_t>(step));
  append_bytes(&event, 5, summary);  // Event.summary
  return event;
}

std::string frame_record(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  append_le(&out, data.size(), 8);
  const uint32_t len_crc = masked_crc32c(out.data(), 8);
  append_le(&out, len_crc, 4);
  out.append(data);
  append_le(&out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

}  // namespace tensorboard

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const double now = now_seconds();
  path_ = files::join(dir, "events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host);
  // Two runs started in the same second on one host: append a suffix rather than mix them.
  for (int i = 1; files::exists(path_); ++i) {
    path_ = files::join(dir, "events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host +
                                 "." + std::to_string(i));
  }
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) {
    throw InputError("cannot create TensorBoard event file " + path_ + ": " + std::strerror(errno) +
                     "; check log.dir or set log.tensorboard=false");
  }
  write_record(tensorboard::encode_file_version_event(now));
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  write_record(tensorboard::encode_scalar_event(now_seconds(), step, tag, static_cast<float>(value)));
}

void TensorBoardWriter::write_record(const std::string& event) {
  const std::string record = tensorboard::frame_record(event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    throw Error("writing TensorBoard event file " + path_ + " failed: " + std::strerror(errno));
  }
}

}  // namespace ddp
