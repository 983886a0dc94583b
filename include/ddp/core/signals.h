// Stop requests by signal (SIGTERM, SIGINT, SIGUSR1; Slurm sends SIGUSR1 before a time limit).
//
// The first signal only records the request; the trainer agrees on it across ranks at the next
// step boundary (one tiny all-reduce), so all ranks stop after the same step, rank 0 saves a
// checkpoint, and the process exits with kExitStoppedBySignal. A second signal exits at once
// with 128 + signal number.
#pragma once

namespace ddp {

// "Stopped by a signal, checkpoint saved: requeue me" (EX_TEMPFAIL). launch/slurm.sbatch
// requeues the job when ddptrain exits with it.
constexpr int kExitStoppedBySignal = 75;

void install_stop_signal_handlers();
// 0, or the number of the first stop signal received by this process.
int stop_signal_received();

}  // namespace ddp
