// TensorBoard event files, written without TensorFlow or protobuf.
//
// A file "<dir>/events.out.tfevents.<unix seconds>.<host>" is a sequence of TFRecords:
//   uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes | data |
//   uint32 masked CRC32C of data
// whose data are tensorflow.Event protos. The first Event carries file_version "brain.Event:2";
// each scalar is an Event { wall_time (1, double), step (2, int64), summary (5) } whose Summary
// holds one Value { tag (1, string), simple_value (2, float) }. The encoding functions below are
// pure (tested against RFC 3720's CRC32C vectors and TensorBoard's own reader).
//
// Rank 0 owns the writer (it does no collective). Every record is flushed to the OS at once, so
// `tensorboard --logdir <log.dir>` shows a run while it trains and a crash loses nothing written.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ddp {
namespace tensorboard {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes.
uint32_t crc32c(const void* data, size_t n);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);
// Appends `value` as a protobuf base-128 varint.
void append_varint(std::string* out, uint64_t value);
// One Event proto: {wall_time, file_version}.
std::string encode_file_version_event(double wall_time);
// One Event proto: {wall_time, step, summary {value {tag, simple_value}}}.
std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
// `data` framed as one TFRecord (length, masked CRC of length, data, masked CRC of data).
std::string frame_record(const std::string& data);

}  // namespace tensorboard

class TensorBoardWriter {
 public:
  // Creates a new event file in `dir` (which must exist) and writes the file_version record.
  // Throws InputError when the file cannot be created.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Writes one scalar at `step` (wall time = now) and flushes. Throws Error on a write failure.
  void add_scalar(const std::string& tag, double value, int64_t step);
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);

  std::string path_;
  FILE* file_ = nullptr;
};

}  // namespace ddp
