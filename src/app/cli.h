// The ddptrain command line: `ddptrain <command> [options]`. main() only sets up the process and
// calls run_cli; everything it does is here so that it can be tested.
#pragma once

#include <string>
#include <vector>

#include "ddp/dist/runtime.h"

namespace ddp {

// Runs one command; returns the process exit code. Throws ddp::Error on failure.
int run_cli(const std::vector<std::string>& args, const ProcessInfo& process);

std::string usage();

std::string version_string();

}  // namespace ddp
