// A custom torch::nn model trained data-parallel with ddptrain's pieces, outside ddptrain:
// ddp::MpiRuntime (MPI start/stop), ddp::MpiCommunicator (collectives with deadlines),
// ddp::DistributedSampler (each rank's shard) and ddp::GradientSynchronizer (bucketed gradient
// averaging). Run with `mpirun -np N custom_model`, or alone.
//
// It learns y = x . w_true + noise with a small MLP, prints the loss per epoch on rank 0, and exits
// 0 only when the loss fell and every rank ends with bit-identical parameters.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "ddp/dist/distributed_sampler.h"
#include "ddp/dist/gradient_synchronizer.h"
#include "ddp/dist/mpi_communicator.h"
#include "ddp/dist/runtime.h"

namespace {

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl()
      : fc1(register_module("fc1", torch::nn::Linear(8, 32))),
        fc2(register_module("fc2", torch::nn::Linear(32, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(TinyNet);

int run(const ddp::ProcessInfo& p) {
  ddp::MpiCommunicator comm(MPI_COMM_WORLD, std::chrono::seconds(60));
  torch::manual_seed(1234 + p.rank);  // different on purpose: the broadcast below makes them equal

  // Every rank builds the same dataset (fixed seed) and reads only its own shard of it.
  constexpr int64_t kSamples = 1024, kBatch = 32, kEpochs = 5;
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor x = torch::randn({kSamples, 8}, gen);
  torch::Tensor y =
      x.matmul(torch::linspace(-1, 1, 8).unsqueeze(1)) + 0.01 * torch::randn({kSamples, 1}, gen);

  TinyNet model;
  std::vector<torch::Tensor> params = model->parameters();
  // The synchronizer first checks that every rank has the same parameter shapes; then every
  // rank starts from rank 0's weights.
  ddp::SyncOptions options;
  options.cap_bytes = 4096;  // small buckets, so that this tiny model has several
  options.first_cap_bytes = 1024;
  ddp::GradientSynchronizer sync(comm, params, options);
  ddp::broadcast_tensors(comm, params, /*root=*/0);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.05).momentum(0.9));
  ddp::DistributedSampler sampler(kSamples, p.rank, p.world_size, /*shuffle=*/true, /*seed=*/0);

  double first_loss = 0, last_loss = 0;
  for (int64_t epoch = 0; epoch < kEpochs; ++epoch) {
    sampler.set_epoch(epoch);
    const std::vector<int64_t> idx = sampler.indices();
    torch::Tensor index = torch::tensor(idx, torch::kLong);
    torch::Tensor loss_sum = torch::zeros({1}, torch::kDouble);
    for (int64_t start = 0; start < static_cast<int64_t>(idx.size()); start += kBatch) {
      torch::Tensor b = index.slice(0, start, std::min<int64_t>(start + kBatch, idx.size()));
      opt.zero_grad();
      torch::Tensor loss = torch::mse_loss(model->forward(x.index_select(0, b)), y.index_select(0, b));
      sync.prepare();  // every rank: buckets are all-reduced while backward runs
      loss.backward();
      sync.finalize();  // every rank: wait for them; .grad now holds the average
      opt.step();
      loss_sum += loss.detach().to(torch::kDouble) * b.size(0);
    }
    comm.all_reduce(loss_sum, ddp::ReduceOp::kSum);  // every rank, same order
    const double mean = loss_sum.item<double>() / static_cast<double>(sampler.total_size());
    if (epoch == 0) first_loss = mean;
    last_loss = mean;
    if (p.rank == 0)
      std::printf("custom_model: epoch %lld | loss %.5f\n", static_cast<long long>(epoch + 1), mean);
  }

  // Every rank: gather the flattened parameters and compare them with rank 0's.
  std::vector<torch::Tensor> flat;
  for (const auto& t : params) flat.push_back(t.detach().reshape(-1));
  torch::Tensor all = comm.all_gather(torch::cat(flat));
  bool identical = true;
  for (int r = 1; r < p.world_size; ++r) identical = identical && torch::equal(all[r], all[0]);
  const bool learned = last_loss < 0.5 * first_loss;
  if (p.rank == 0) {
    std::printf("custom_model: %d ranks | loss %.5f -> %.5f | replicas %s\n", p.world_size, first_loss,
                last_loss, identical ? "identical" : "DIFFER");
  }
  return identical && learned ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ddp::MpiRuntime mpi(&argc, &argv);
  try {
    return run(mpi.info());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_model: rank %d: %s\n", mpi.info().rank, e.what());
    mpi.abort(1);
  }
}
