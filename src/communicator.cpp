#include "ddp/communicator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>

namespace ddp {

void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root) {
  if (comm.size() == 1 || tensors.empty()) return;
  std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype;
  for (const auto& t : tensors) by_dtype[t.scalar_type()].push_back(t);
  c10::NoGradGuard no_grad;
  for (auto& [dtype, group] : by_dtype) {
    std::vector<at::Tensor> flat;
    for (auto& t : group) flat.push_back(t.reshape({-1}));
    at::Tensor buffer = at::cat(flat);
    comm.broadcast(buffer, root);
    int64_t offset = 0;
    for (auto& t : group) {
      t.copy_(buffer.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

}  // namespace ddp
