// Cuts training and evaluation batches from a dataset that is kept whole on the training device.
//
// A batch is an index_select of uint8 images, optionally augmented (random crop of the 4-pixel
// zero-padded image and horizontal flip), converted to float and normalised, all as batched
// tensor operations on the device: no per-image host work and no host-to-device copy of pixels.
//
// Augmentation is a pure function of (seed, epoch, global sample position): the same sample of
// the same epoch is augmented the same way whatever the world size, and differently across
// positions (so across ranks) and epochs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "ddp/dataset.h"

namespace ddp {

struct Batch {
  at::Tensor images;  // float [B, C, H, W], normalised
  at::Tensor labels;  // int64 [B]
};

// The crop offsets (0..8 each) and flip flag of one sample; exposed for tests.
struct AugmentParams {
  int dx = 4;
  int dy = 4;
  bool flip = false;
};
AugmentParams augment_params(uint64_t seed, int64_t epoch, int64_t position);

class Batcher {
 public:
  Batcher(const ImageDataset& dataset, const at::Device& device);

  // The batch of dataset `indices`; `positions` (same length) key the augmentation.
  Batch get(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions,
            bool augment, uint64_t seed, int64_t epoch) const;
  // The batch of dataset indices [begin, begin + n), unaugmented (evaluation).
  Batch range(int64_t begin, int64_t n) const;

  int64_t size() const { return images_.size(0); }

 private:
  Batch finish(at::Tensor images_u8, at::Tensor labels) const;

  at::Tensor images_;  // uint8 [N, C, H, W] on the device
  at::Tensor labels_;  // int64 [N] on the device
  at::Tensor scale_;   // float [1, C, 1, 1]: 1 / (255 * std)
  at::Tensor shift_;   // float [1, C, 1, 1]: -mean / std
};

}  // namespace ddp
