#include "ddp/observe/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "ddp/core/check.h"

namespace ddp {
namespace {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

}  // namespace

void setup_logging(int rank, int world_size) {
  auto logger = spdlog::stdout_logger_mt("ddptrain");
  std::string tag = world_size > 1 ? " [rank " + std::to_string(rank) + "]" : "";
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e" + tag + " %^%l%$ %v");
  logger->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

bool progress_line_wanted(const std::string& mode, bool stdout_is_terminal) {
  if (mode == "on") return true;
  if (mode == "off") return false;
  return stdout_is_terminal;
}

bool stdout_is_interactive() {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) return false;  // Open MPI's pty, see header.
  return isatty(STDOUT_FILENO) != 0;
}

std::string format_progress(int64_t epoch, int64_t step, int64_t total_steps, double loss,
                            double images_per_s, double eta_s) {
  char loss_text[32] = "-";
  if (std::isfinite(loss)) std::snprintf(loss_text, sizeof(loss_text), "%.4f", loss);
  char buf[160];
  std::snprintf(buf, sizeof(buf), "epoch %lld step %lld/%lld | loss %s | %.0f img/s | eta %.1f s",
                static_cast<long long>(epoch), static_cast<long long>(step),
                static_cast<long long>(total_steps), loss_text, images_per_s, eta_s);
  return buf;
}

void ProgressLine::update(const std::string& text, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (open_ && !force && now - last_ < std::chrono::milliseconds(kRedrawMs)) return;
  last_ = now;
  std::string line = "\r" + text;
  if (text.size() < width_) line.append(width_ - text.size(), ' ');
  width_ = text.size();
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  open_ = true;
}

void ProgressLine::finish() {
  if (!enabled_ || !open_) return;
  std::fputs("\n", stdout);
  std::fflush(stdout);
  open_ = false;
  width_ = 0;
}

MetricsWriter::MetricsWriter(const std::string& path) : out_(path, std::ios::app) {
  if (!out_)
    throw InputError("cannot open " + path + " for writing: " + std::strerror(errno) + "; check log.dir");
}

void MetricsWriter::train(int64_t step, int64_t epoch, double loss, double lr, double images_per_s) {
  out_ << "{\"kind\":\"train\",\"step\":" << step << ",\"epoch\":" << epoch
       << ",\"loss\":" << json_number(loss) << ",\"lr\":" << json_number(lr)
       << ",\"images_per_s\":" << json_number(images_per_s) << "}\n";
  out_.flush();
}

void MetricsWriter::eval(int64_t epoch, int64_t step, double test_loss, double test_accuracy) {
  out_ << "{\"kind\":\"eval\",\"epoch\":" << epoch << ",\"step\":" << step
       << ",\"test_loss\":" << json_number(test_loss) << ",\"test_accuracy\":" << json_number(test_accuracy)
       << "}\n";
  out_.flush();
}

}  // namespace ddp
