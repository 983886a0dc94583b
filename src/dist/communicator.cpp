#include "ddp/dist/communicator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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

void throw_if_any_rank_failed(Communicator& comm, const std::string& error, bool input_error) {
  // Fixed-size records: [0] failed?, [1] input error?, then the host name and the message.
  constexpr int64_t kHost = 64, kMessage = 2048, kRecord = 2 + kHost + kMessage;
  at::Tensor mine = at::zeros({kRecord}, at::kByte);
  uint8_t* m = mine.data_ptr<uint8_t>();
  if (!error.empty()) {
    m[0] = 1;
    m[1] = input_error ? 1 : 0;
    char host[kHost] = {};
    gethostname(host, kHost - 1);
    std::copy_n(host, kHost - 1, m + 2);  // Zero-padded: gethostname wrote at most kHost - 1.
    std::copy_n(error.data(), std::min<size_t>(error.size(), kMessage - 1),
                m + 2 + kHost);  // Zero-padded too.
  }
  at::Tensor all = comm.all_gather(mine).contiguous();
  int failed = 0, first = -1;
  for (int r = 0; r < comm.size(); ++r) {
    if (all[r][0].item<uint8_t>() == 0) continue;
    ++failed;
    if (first < 0) first = r;
  }
  if (failed == 0) return;
  const uint8_t* rec = all[first].data_ptr<uint8_t>();
  const char* host = reinterpret_cast<const char*>(rec + 2);
  const char* text = reinterpret_cast<const char*>(rec + 2 + kHost);
  std::string message(text, strnlen(text, kMessage));
  if (failed < comm.size()) {
    std::ostringstream where;
    where << "rank " << first << " (host " << std::string(host, strnlen(host, kHost)) << ")";
    if (failed > 1) where << " and " << failed - 1 << " other rank(s)";
    message = where.str() + ": " + message;
  }
  if (rec[1]) throw InputError(message, /*same_on_all_ranks=*/true);
  throw Error(message, /*same_on_all_ranks=*/true);
}

std::string root_value(Communicator& comm, const std::string& mine) {
  at::Tensor len = at::tensor({static_cast<int64_t>(mine.size())}, at::kLong);
  comm.broadcast(len, 0);
  at::Tensor bytes = at::zeros({len.item<int64_t>() + 1}, at::kByte);
  if (comm.rank() == 0) std::memcpy(bytes.data_ptr(), mine.data(), mine.size());
  comm.broadcast(bytes, 0);
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(len.item<int64_t>()));
}

double root_value(Communicator& comm, double mine) {
  at::Tensor t = at::tensor({mine}, at::kDouble);
  comm.broadcast(t, 0);
  return t.item<double>();
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
