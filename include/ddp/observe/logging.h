// Logging: spdlog to stdout, one greppable line per event. Rank 0 logs at info level; other
// ranks log warnings and errors only, each line tagged with its rank.
// Metrics: rank 0 appends one JSON object per event to <log.dir>/metrics.jsonl.
// Progress: on a terminal, rank 0 redraws one line per epoch in place ('\r') instead of the
// periodic step log lines; in a log file or under a batch system the step lines stay.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace ddp {

void setup_logging(int rank, int world_size);

// Whether the in-place progress line is used: log.progress "on", "off", or "auto" (= stdout is an
// interactive terminal). A pure function; the caller passes stdout_is_interactive().
bool progress_line_wanted(const std::string& mode, bool stdout_is_terminal);

// isatty(stdout), except under Open MPI's mpirun, which gives every rank a pseudo-terminal for
// stdout whether mpirun's own output goes to a terminal or to a file: there it is false (ask for
// the line with log.progress=on).
bool stdout_is_interactive();

// "epoch 2 step 120/640 | loss 1.2345 | 2530 img/s | eta 12.3 s" (loss "-" until known).
std::string format_progress(int64_t epoch, int64_t step, int64_t total_steps, double loss,
                            double images_per_s, double eta_s);

// Rank 0's in-place progress line on stdout. Redraws at most every kRedrawMs; finish() ends the
// line so that the next log line starts on a fresh one. Does nothing when disabled.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  void update(const std::string& text, bool force = false);
  void finish();

 private:
  static constexpr int64_t kRedrawMs = 200;
  bool enabled_;
  bool open_ = false;  // A line is drawn and not yet ended.
  size_t width_ = 0;   // Length of the last line drawn, to blank leftovers.
  std::chrono::steady_clock::time_point last_{};
};

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
