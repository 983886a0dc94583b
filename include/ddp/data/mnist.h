// MNIST and Fashion-MNIST: IDX files (http://yann.lecun.com/exdb/mnist/), gzipped or not:
//   train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
//   (each optionally with ".gz"), in data.root or data.root/<mnist|fashion-mnist>.
// An IDX file is a big-endian header (magic 0x00000803 for uint8 images of 3 dimensions,
// 0x00000801 for uint8 labels of 1) and its dimensions as big-endian uint32, then the bytes.
//
// The 28x28 grey images are zero-padded by 2 pixels on each side to 1x32x32, so that every model
// built for CIFAR's 32x32 (the seed CNN's Linear(64*4*4, ...) included) takes them unchanged; the
// normalisation constants are those of the padded images.
// Readers check magic numbers, dimensions, sizes and label ranges and name the file and problem.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "ddp/data/dataset.h"

namespace ddp {

// Reads an IDX image file (gzip or plain) as uint8 [N, rows, cols].
at::Tensor read_idx_images(const std::string& path);
// Reads an IDX label file (gzip or plain) as int64 [N], checking every label < num_classes.
at::Tensor read_idx_labels(const std::string& path, int64_t num_classes = 10);

// `name` is "mnist" or "fashion_mnist": the train or t10k split, padded to [N, 1, 32, 32].
ImageDataset load_mnist(const std::string& root, bool train, const std::string& name = "mnist");

}  // namespace ddp
