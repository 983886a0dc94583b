// CIFAR-100, binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
//   <root>/cifar-100-binary/train.bin (50,000 images) and test.bin (10,000), each a sequence of
//   3074-byte records: 1 coarse label byte (0-19), 1 fine label byte (0-99), then 1024 red,
//   1024 green and 1024 blue pixel bytes of a 32x32 image in row-major order.
// ddptrain trains on the 100 fine labels. Readers verify sizes and labels and name the file and
// byte offset of the first problem.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "ddp/data/dataset.h"

namespace ddp {

constexpr int64_t kCifar100RecordBytes = 2 + 3 * 32 * 32;

// Reads one file into `images` (uint8 [N,3,32,32]) and `fine_labels` (int64 [N]).
void read_cifar100_file(const std::string& path, at::Tensor* images, at::Tensor* fine_labels);

// Loads train.bin or test.bin. `root` may be the folder holding cifar-100-binary/ or that folder.
ImageDataset load_cifar100(const std::string& root, bool train);

}  // namespace ddp
