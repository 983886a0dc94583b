// Helpers shared by the distributed tests (tests/dist/*_test.cpp, one file per GoogleTest suite):
// facts about MPI_COMM_WORLD, a replica's parameters and buffers as one tensor, and the small
// training config they start from. Every rank calls them alike.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <chrono>
#include <string>
#include <vector>

#include "ddp/config/config.h"
#include "test_files.h"

namespace ddp::testing {

// The deadline of every collective of the tests' communicators.
constexpr std::chrono::milliseconds kTimeout{120000};

int world_rank();
int world_size();

// Every parameter, flattened and concatenated in the module's order.
at::Tensor flat_params(torch::nn::Module& m);
// Every floating-point buffer (BatchNorm statistics) the same way, after one leading 0.
at::Tensor flat_buffers(torch::nn::Module& m);

// Synthetic data, one thread, logs and checkpoints in `dir`, a log line every 2 steps; then
// `overrides`. `faults` receives the fault.* keys.
Config small_config(const TempDir& dir, std::vector<std::string> overrides, FaultInjection* faults = nullptr);

// Rank 0's `mine` on every rank (MPI_COMM_WORLD): e.g. rank 0's temporary folder, so that all
// ranks train into one checkpoint.dir.
std::string rank0_string(const std::string& mine);

}  // namespace ddp::testing
