#include "dist_helpers.h"

#include <mpi.h>
#include <torch/torch.h>

namespace ddp::testing {

int world_rank() {
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

at::Tensor flat_params(torch::nn::Module& m) {
  std::vector<at::Tensor> parts;
  for (auto& p : m.parameters()) parts.push_back(p.detach().reshape({-1}));
  return torch::cat(parts);
}

at::Tensor flat_buffers(torch::nn::Module& m) {
  std::vector<at::Tensor> parts = {torch::zeros({1})};
  for (auto& b : m.buffers()) {
    if (b.is_floating_point()) parts.push_back(b.detach().reshape({-1}));
  }
  return torch::cat(parts);
}

Config small_config(const TempDir& dir, std::vector<std::string> overrides, FaultInjection* faults) {
  std::vector<std::string> base = {"log.dir=" + dir.path() + "/logs",
                                   "checkpoint.dir=" + dir.path() + "/ckpt", "data.dataset=synthetic",
                                   "train.threads=1", "log.every_steps=2"};
  base.insert(base.end(), overrides.begin(), overrides.end());
  return parse_config("", "dist_test", base, faults);
}

std::string rank0_string(const std::string& mine) {
  int len = static_cast<int>(mine.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string out(static_cast<size_t>(len), '\0');
  if (world_rank() == 0) out = mine;
  MPI_Bcast(out.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
  return out;
}

}  // namespace ddp::testing
