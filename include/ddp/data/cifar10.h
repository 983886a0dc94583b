// CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
//   <root>/cifar-10-batches-bin/data_batch_{1..5}.bin and test_batch.bin, each a sequence of
//   3073-byte records: 1 label byte (0-9), then 1024 red, 1024 green and 1024 blue pixel bytes
//   of a 32x32 image in row-major order.
// Readers verify sizes and labels and name the file and byte offset of the first problem.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "ddp/data/dataset.h"

namespace ddp {

constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;

// Reads a file of fixed-size records (the CIFAR binary layouts) into uint8 [N, record_bytes].
// A missing file or a size that is not a whole number of records is an InputError naming the
// file, the incomplete record and its offset. `dataset` ("CIFAR-10") and `format` ("a CIFAR
// binary batch") word the messages; `folder` is the folder data.root must hold.
at::Tensor read_cifar_records(const std::string& path, int64_t record_bytes, const std::string& dataset,
                              const std::string& format, const std::string& folder);

// Reads one batch file into `images` (uint8 [N,3,32,32]) and `labels` (int64 [N]).
void read_cifar10_file(const std::string& path, at::Tensor* images, at::Tensor* labels,
                       int64_t num_classes = 10);

// Loads the train (data_batch_1..5) or test split. `root` may be the folder holding
// cifar-10-batches-bin/ or that folder itself.
ImageDataset load_cifar10(const std::string& root, bool train);

}  // namespace ddp
