#include "ddp/dist/distributed_sampler.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "ddp/core/check.h"

namespace ddp {

DistributedSampler::DistributedSampler(int64_t dataset_size, int rank, int world_size, bool shuffle,
                                       uint64_t seed, bool drop_last)
    : dataset_size_(dataset_size), rank_(rank), world_size_(world_size), shuffle_(shuffle), seed_(seed) {
  DDP_CHECK(world_size > 0 && rank >= 0 && rank < world_size, "bad rank " << rank << " of " << world_size);
  DDP_CHECK(dataset_size > 0, "empty dataset");
  if (drop_last && dataset_size % world_size != 0) {
    num_samples_ = dataset_size / world_size;
  } else {
    num_samples_ = (dataset_size + world_size - 1) / world_size;
  }
  DDP_CHECK(num_samples_ > 0, "dataset of " << dataset_size << " samples is smaller than the " << world_size
                                            << " ranks with drop_last");
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> order(dataset_size_);
  if (shuffle_) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ + static_cast<uint64_t>(epoch_));
    at::Tensor perm = at::randperm(dataset_size_, gen, at::TensorOptions().dtype(at::kLong));
    const int64_t* p = perm.data_ptr<int64_t>();
    order.assign(p, p + dataset_size_);
  } else {
    for (int64_t i = 0; i < dataset_size_; ++i) order[i] = i;
  }
  const int64_t total = total_size();
  if (static_cast<int64_t>(order.size()) < total) {
    const int64_t n = dataset_size_;
    for (int64_t i = n; i < total; ++i) order.push_back(order[(i - n) % n]);
  } else {
    order.resize(total);
  }
  std::vector<int64_t> mine;
  mine.reserve(num_samples_);
  for (int64_t pos = rank_; pos < total; pos += world_size_) mine.push_back(order[pos]);
  return mine;
}

}  // namespace ddp
