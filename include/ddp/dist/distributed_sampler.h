// Which dataset indices each rank reads in an epoch, with torch.utils.data.DistributedSampler's
// semantics (and, for the same seed and epoch, the same permutation as PyTorch's):
//   - the epoch order is randperm(N) from a generator seeded with seed + epoch (or 0..N-1);
//   - without drop_last the order is padded by repeating its start, so that every rank gets
//     ceil(N / world) samples; with drop_last the tail is cut to floor(N / world) per rank;
//   - rank r takes positions r, r + world, r + 2*world, ... of that order.
// The global order is a function of (seed, epoch, N) alone, not of the world size.
#pragma once

#include <cstdint>
#include <vector>

namespace ddp {

class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, int rank, int world_size, bool shuffle, uint64_t seed,
                     bool drop_last = false);

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  // This rank's dataset indices for the current epoch, num_samples() of them.
  std::vector<int64_t> indices() const;
  // Global position (in the padded epoch order) of this rank's i-th sample.
  int64_t global_position(int64_t i) const { return rank_ + i * world_size_; }
  int64_t num_samples() const { return num_samples_; }
  int64_t total_size() const { return num_samples_ * world_size_; }

 private:
  int64_t dataset_size_;
  int rank_;
  int world_size_;
  bool shuffle_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t num_samples_;
};

}  // namespace ddp
