// The ddptrain command line: `ddptrain <command> [options]`. main() only sets up the process and
// calls run_cli; everything it does is here so that it can be tested.
#pragma once

#include <string>
#include <vector>

#include "ddp/runtime.h"

namespace ddp {

// Runs one command; returns the process exit code. Throws ddp::Error on failure.
int run_cli(const std::vector<std::string>& args, const ProcessInfo& process);

std::string usage();
// "nccl" or "mpi" for dist.backend `requested` ("auto", "mpi", "nccl") on `device` ("cpu",
// "cuda:N"); throws InputError when nccl is asked for without a GPU or without NCCL in the build.
std::string choose_backend(const std::string& requested, const std::string& device, bool nccl_in_build);
std::string version_string();

}  // namespace ddp
