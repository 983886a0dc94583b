// Cuts training and evaluation batches from a dataset held as uint8 images.
//
// A batch is an index_select of uint8 images, optionally augmented (random crop of the 4-pixel
// zero-padded image and horizontal flip, then, when the Batcher has a cutout size, one square of
// that side set to 0 after normalisation, i.e. to the dataset mean: DeVries & Taylor's cutout as
// the fast CIFAR-10 recipes use it), converted to float and normalised, all as batched tensor
// operations. Two pipelines (data.pipeline) produce identical batches:
//   kDevice (default): the whole set lives on the training device; the cut runs there, with no
//     per-image host work and no host-to-device copy of pixels.
//   kHost: the set stays in host memory (for data that does not fit the device). The uint8 cut
//     and augmentation run on the CPU on a background thread, one batch ahead (prefetch()), into
//     pinned memory when the device is CUDA; get() copies that batch to the device (asynchronous
//     from pinned memory) and normalises it there.
//
// Augmentation is a pure function of (seed, epoch, global sample position): the same sample of
// the same epoch is augmented the same way whatever the world size, and differently across
// positions (so across ranks) and epochs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "ddp/data/dataset.h"

namespace ddp {

struct Batch {
  at::Tensor images;  // float [B, C, H, W], normalised
  at::Tensor labels;  // int64 [B]
};

// The crop offsets (0..8 each), flip flag and cutout square of one sample; exposed for tests.
struct AugmentParams {
  int dx = 4;
  int dy = 4;
  bool flip = false;
  int cut_y = -1;  // Top-left corner of the cutout square, which lies wholly inside the image;
  int cut_x = -1;  // -1 when cutout is 0.
};
// `cutout` is the square's side (0: none); `height`/`width` the image's. The crop and flip do not
// depend on the cutout settings.
AugmentParams augment_params(uint64_t seed, int64_t epoch, int64_t position, int64_t cutout = 0,
                             int64_t height = 32, int64_t width = 32);

class Batcher {
 public:
  // `cutout`: side of the square cut out of each augmented image (0: none; config data.cutout);
  // at most the image's smaller side.
  Batcher(const ImageDataset& dataset, const at::Device& device,
          InputPipeline pipeline = InputPipeline::kDevice, int64_t cutout = 0);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // The batch of dataset `indices`; `positions` (same length) key the augmentation. With the host
  // pipeline, a batch prefetched with the same arguments is taken from the background thread.
  Batch get(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions, bool augment,
            uint64_t seed, int64_t epoch);
  // Host pipeline: starts preparing this batch on the background thread (the next get() with the
  // same arguments returns it). Device pipeline: does nothing.
  void prefetch(const std::vector<int64_t>& indices, const std::vector<int64_t>& positions, bool augment,
                uint64_t seed, int64_t epoch);
  // The batch of dataset indices [begin, begin + n), unaugmented (evaluation).
  Batch range(int64_t begin, int64_t n) const;

  int64_t size() const { return images_.size(0); }
  InputPipeline pipeline() const { return pipeline_; }

 private:
  struct Request {
    std::vector<int64_t> indices, positions;
    bool augment = false;
    uint64_t seed = 0;
    int64_t epoch = 0;
    bool operator==(const Request& o) const {
      return indices == o.indices && positions == o.positions && augment == o.augment && seed == o.seed &&
             epoch == o.epoch;
    }
  };
  struct Cut {
    at::Tensor images;  // uint8 [B, C, H, W]
    at::Tensor labels;  // int64 [B]
    at::Tensor cutout;  // int64 [B, 2]: (y, x) of each cutout square; undefined when none
  };
  Cut cut(const Request& r) const;   // On the device that holds images_.
  Batch finish(const Cut& c) const;  // Normalises (and cuts out) on the device of `c`.
  Batch to_device(const Cut& c) const;

  InputPipeline pipeline_;
  at::Device device_;
  int64_t cutout_;
  at::Tensor images_;  // uint8 [N, C, H, W] on the device (kDevice) or in host memory (kHost)
  at::Tensor labels_;  // int64 [N], next to images_
  at::Tensor scale_;   // float [1, C, 1, 1]: 1 / (255 * std)
  at::Tensor shift_;   // float [1, C, 1, 1]: -mean / std
  // kHost: the batch being prepared on the background thread, and what it was asked for.
  std::unique_ptr<Request> pending_request_;
  std::future<Cut> pending_;
};

}  // namespace ddp
