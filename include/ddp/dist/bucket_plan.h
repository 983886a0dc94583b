// Assignment of parameters to gradient buckets (pure; no tensors, no MPI).
//
// Gradients become ready roughly in reverse parameter order during backward, so buckets are
// filled from the last parameter to the first. The first bucket is capped at `first_cap_bytes`
// (small, so that communication starts early), the others at `cap_bytes`. A parameter is never
// split; one larger than the cap gets a bucket of its own. Every rank computes the same plan from
// the same parameter list (checked at start-up by the gradient synchronizer).
#pragma once

#include <cstdint>
#include <vector>

namespace ddp {

struct Bucket {
  std::vector<int64_t> params;  // Parameter indices, in the order gradients arrive.
  int64_t numel = 0;            // Sum of their numels.
};

std::vector<Bucket> plan_buckets(const std::vector<int64_t>& numels, int64_t element_bytes, int64_t cap_bytes,
                                 int64_t first_cap_bytes);

}  // namespace ddp
