// Fixture writers: files in the formats ddptrain reads, made by the tests themselves (the
// library only reads them).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace ddp::testing {

// A CIFAR-10 binary batch file: one label byte, then 3x32x32 pixel bytes, per image.
void write_cifar10_file(const std::string& path, const at::Tensor& images, const at::Tensor& labels);

// A CIFAR-100 binary file: coarse label, fine label, then 3x32x32 pixel bytes, per image.
void write_cifar100_file(const std::string& path, const at::Tensor& images, const at::Tensor& coarse_labels,
                         const at::Tensor& fine_labels);

// An IDX file ([N] labels or [N,rows,cols] images, unsigned bytes), gzipped when `path` ends in .gz.
void write_idx_file(const std::string& path, const at::Tensor& data);

}  // namespace ddp::testing
