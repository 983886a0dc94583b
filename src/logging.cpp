#include "ddp/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "ddp/check.h"

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

MetricsWriter::MetricsWriter(const std::string& path) : out_(path, std::ios::app) {
  if (!out_) throw InputError("cannot open " + path + " for writing: " + std::strerror(errno) + "; check log.dir");
}

void MetricsWriter::train(int64_t step, int64_t epoch, double loss, double lr, double images_per_s) {
  out_ << "{\"kind\":\"train\",\"step\":" << step << ",\"epoch\":" << epoch
       << ",\"loss\":" << json_number(loss) << ",\"lr\":" << json_number(lr)
       << ",\"images_per_s\":" << json_number(images_per_s) << "}\n";
  out_.flush();
}

void MetricsWriter::eval(int64_t epoch, int64_t step, double test_loss, double test_accuracy) {
  out_ << "{\"kind\":\"eval\",\"epoch\":" << epoch << ",\"step\":" << step
       << ",\"test_loss\":" << json_number(test_loss)
       << ",\"test_accuracy\":" << json_number(test_accuracy) << "}\n";
  out_.flush();
}

}  // namespace ddp
