#include "ddp/core/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <initializer_list>

namespace ddp {
namespace {

// The one piece of process-global state: a signal handler can reach nothing else.
std::atomic<int> g_stop_signal{0};

void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_stop_signal.compare_exchange_strong(expected, sig)) _exit(128 + sig);
  static const char kMsg[] =
      "ddptrain: stop requested by signal; finishing the step and saving a checkpoint "
      "(signal again to exit at once)\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

int stop_signal_received() { return g_stop_signal.load(); }

}  // namespace ddp
