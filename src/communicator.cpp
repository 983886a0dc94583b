#include "ddp/communicator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>
#include <sstream>

namespace ddp {

Staged::Staged(const at::Tensor& t, const at::Device& device) : target_(t) {
  buffer_ = (t.device() == device && t.is_contiguous()) ? t : t.to(device).contiguous();
}

void Staged::finish() {
  if (!buffer_.is_same(target_)) target_.copy_(buffer_);
}

std::string describe_collective(const char* name, int64_t sequence, const at::Tensor& t) {
  std::ostringstream s;
  s << name << " #" << sequence << " (" << t.numel() << " x " << t.dtype() << ", " << t.nbytes() << " B)";
  return s.str();
}

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
