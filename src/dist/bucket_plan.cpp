#include "ddp/dist/bucket_plan.h"

#include "ddp/core/check.h"

namespace ddp {

std::vector<Bucket> plan_buckets(const std::vector<int64_t>& numels, int64_t element_bytes, int64_t cap_bytes,
                                 int64_t first_cap_bytes) {
  DDP_CHECK(element_bytes > 0 && cap_bytes > 0 && first_cap_bytes > 0, "bucket sizes must be positive");
  std::vector<Bucket> buckets;
  Bucket current;
  int64_t cap = first_cap_bytes;
  for (int64_t i = static_cast<int64_t>(numels.size()) - 1; i >= 0; --i) {
    const int64_t bytes = numels[i] * element_bytes;
    if (!current.params.empty() && (current.numel * element_bytes + bytes) > cap) {
      buckets.push_back(std::move(current));
      current = Bucket{};
      cap = cap_bytes;
    }
    current.params.push_back(i);
    current.numel += numels[i];
  }
  if (!current.params.empty()) buckets.push_back(std::move(current));
  return buckets;
}

}  // namespace ddp
