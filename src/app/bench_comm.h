// `ddptrain bench-comm`: how fast ddptrain's gradient synchronisation is, in two tables.
//
// 1. Per message size, like nccl-tests: time, algorithm bandwidth (bytes / time) and bus
//    bandwidth (2(n-1)/n x algbw) of the communicator's all-reduce, against the raw blocking
//    MPI_Allreduce of the same bytes (the floor for the MPI backend).
// 2. For a real model: ms per training step with no gradient sync (the compute floor), with one
//    sync after backward, and with overlap, and the fraction of communication hidden by overlap:
//    (t_after - t_overlap) / (t_after - t_none).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ddp/dist/communicator.h"

namespace ddp {

struct BenchCommOptions {
  int64_t min_bytes = 8 << 10;
  int64_t max_bytes = 64 << 20;
  int iters = 20;
  int warmup = 3;
  std::string model = "seed_cnn";
  int64_t batch = 64;
  int steps = 20;
  double bucket_mb = 25.0;
  std::string device = "cpu";
};

// Parses `bench-comm` arguments (--min-bytes, --max-bytes, --iters, --model, --batch, --steps,
// --bucket-mb); throws InputError for unknown ones.
BenchCommOptions parse_bench_comm_args(const std::vector<std::string>& args);

// Runs both tables on every rank; rank 0 prints them. Collective: every rank calls it.
void run_bench_comm(Communicator& comm, const BenchCommOptions& options);

}  // namespace ddp
