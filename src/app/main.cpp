// ddptrain: parse, start, run, catch. Errors end the whole job: an error every rank hits the same
// way is printed once and all ranks exit 2; any other error is logged by the rank that hit it
// and the job is aborted, so no peer waits forever in a collective.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "app/cli.h"
#include "ddp/core/check.h"
#include "ddp/core/signals.h"
#include "ddp/dist/runtime.h"
#include "ddp/observe/logging.h"

int main(int argc, char** argv) {
  // glibc returns LibTorch's large per-step buffers to the OS and faults them in again every
  // step, which made training 2-3x slower on the 2-core development VM: keep freed memory in the heap.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  ddp::MpiRuntime mpi(&argc, &argv);
  const ddp::ProcessInfo& p = mpi.info();
  ddp::setup_logging(p.rank, p.world_size);
  ddp::install_stop_signal_handlers();
  try {
    return ddp::run_cli(std::vector<std::string>(argv + 1, argv + argc), p);
  } catch (const ddp::Error& e) {
    if (e.same_on_all_ranks()) {
      if (p.rank == 0) spdlog::error("{}", e.what());
      return 2;
    }
    spdlog::error("{} -- aborting all ranks", e.what());
  } catch (const std::exception& e) {
    spdlog::error("unexpected error: {} -- aborting all ranks", e.what());
  }
  spdlog::default_logger()->flush();
  mpi.abort(1);
}
