// Logging: spdlog to stdout, one greppable line per event. Rank 0 logs at info level; other
// ranks log warnings and errors only, each line tagged with its rank.
// Metrics: rank 0 appends one JSON object per event to <log.dir>/metrics.jsonl.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace ddp {

void setup_logging(int rank, int world_size);

// Appends JSON lines; owned by rank 0 only. Flushed after every line so a crash loses nothing.
class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void train(int64_t step, int64_t epoch, double loss, double lr, double images_per_s);
  void eval(int64_t epoch, int64_t step, double test_loss, double test_accuracy);

 private:
  std::ofstream out_;
};

}  // namespace ddp
