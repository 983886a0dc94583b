#include "ddp/train/mixed_precision.h"

#include <ATen/autocast_mode.h>

#include <algorithm>

#include "ddp/core/check.h"

namespace ddp {

std::string precision_warning(Precision p, c10::DeviceType device) {
  if (p != Precision::kFp16 || device == c10::DeviceType::CUDA) return "";
  return "train.precision=fp16 on CPU runs several times slower than fp32 (CPU fp16 kernels, loss scaling); "
         "it is "
         "meant for CUDA: on CPU use train.precision=bf16 or fp32";
}

std::string precision_gpu_problem(Precision p, int cc_major, int cc_minor, const std::string& gpu) {
  if (p != Precision::kBf16 || cc_major == 0 || cc_major >= 8) return "";
  return "train.precision=bf16 needs a GPU of compute capability 8.0 or newer (Ampere); " + gpu + " is " +
         std::to_string(cc_major) + "." + std::to_string(cc_minor) +
         ": use train.precision=fp16 (loss scaling) or fp32";
}

AutocastGuard::AutocastGuard(Precision p, c10::DeviceType device) : device_(device) {
  if (p == Precision::kFp32) return;
  active_ = true;
  prev_enabled_ = at::autocast::is_autocast_enabled(device_);
  prev_dtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, p == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Like Python's torch.autocast: the cast-weight cache lives for the outermost region only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, prev_enabled_);
  at::autocast::set_autocast_dtype(device_, prev_dtype_);
}

LossScaler::LossScaler(bool enabled, double init_scale, int64_t growth_interval, double min_scale)
    : enabled_(enabled), scale_(init_scale), growth_interval_(growth_interval), min_scale_(min_scale) {
  DDP_CHECK(init_scale > 0 && growth_interval > 0 && min_scale > 0, "bad LossScaler settings");
}

void LossScaler::restore(double scale, int64_t good_steps) {
  if (!enabled_) return;
  DDP_CHECK(scale > 0 && good_steps >= 0, "bad loss scale state " << scale << ", " << good_steps);
  scale_ = std::max(min_scale_, scale);
  good_steps_ = good_steps;
}

void LossScaler::update(bool overflow) {
  if (!enabled_) return;
  if (overflow) {
    scale_ = std::max(min_scale_, scale_ / 2);
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= growth_interval_) {
    scale_ *= 2;
    good_steps_ = 0;
  }
}

}  // namespace ddp
