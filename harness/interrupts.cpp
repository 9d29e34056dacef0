#include "harness/interrupts.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace cmbench::interrupts {
namespace {

// The handler reads these, so only async-signal-safe calls touch them there.
volatile sig_atomic_t running_group = 0;
volatile sig_atomic_t deferring = 0;
volatile sig_atomic_t recorded = 0;
char running_result[256] = {};
char running_result_temp[280] = {};  // the trial writes result.json.tmp.PID first, then renames it
char running_dir[256] = {};
char lock_file[512] = {};
char report_temp[512] = {};

extern "C" void on_interrupt(int sig) {
  const pid_t group = running_group;
  if (group > 0) kill(-group, SIGKILL);
  if (deferring != 0 && recorded == 0) {
    recorded = sig;  // the suite's loop notices, keeps what finished and calls end()
    return;
  }
  if (running_result[0] != '\0') unlink(running_result);
  if (running_result_temp[0] != '\0') unlink(running_result_temp);
  if (running_dir[0] != '\0') rmdir(running_dir);
  if (lock_file[0] != '\0') unlink(lock_file);
  if (report_temp[0] != '\0') unlink(report_temp);
  signal(sig, SIG_DFL);
  raise(sig);
}

void copy_path(char* to, std::size_t size, const std::string& from) {
  to[0] = '\0';  // clear first, so the handler never sees half a path
  if (from.empty() || from.size() + 1 > size) return;
  std::snprintf(to + 1, size - 1, "%s", from.c_str() + 1);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  to[0] = from[0];
}

}  // namespace

void install() {
  static const bool installed = [] {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      struct sigaction action {};
      action.sa_handler = on_interrupt;
      sigemptyset(&action.sa_mask);
      // One interrupt at a time: a second waits until the first is recorded or has ended cmbench.
      for (const int other : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&action.sa_mask, other);
      sigaction(sig, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

void set_group(pid_t group) {
  running_group = group;
  // An interrupt recorded before the group was known could not kill it: do it now.
  if (group > 0 && recorded != 0) kill(-group, SIGKILL);
}

void set_files(const std::string& result_path, const std::string& dir) {
  copy_path(running_dir, sizeof(running_dir), dir);
  copy_path(running_result, sizeof(running_result), result_path);
  copy_path(running_result_temp, sizeof(running_result_temp), {});
}

void set_result_temp(const std::string& path) { copy_path(running_result_temp, sizeof(running_result_temp), path); }

void set_lock_file(const std::string& path) { copy_path(lock_file, sizeof(lock_file), path); }

void set_report_temp(const std::string& path) { copy_path(report_temp, sizeof(report_temp), path); }

void defer() {
  install();
  deferring = 1;
}

int requested() { return recorded; }

void end() {
  const int sig = recorded != 0 ? recorded : SIGTERM;
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  _exit(128 + sig);  // only if the signal was ignored before cmbench started (it never records one then)
}

std::string signal_name(int sig) {
  return sig == SIGINT    ? "SIGINT"
         : sig == SIGTERM ? "SIGTERM"
         : sig == SIGHUP  ? "SIGHUP"
                          : "signal " + std::to_string(sig);
}

}  // namespace cmbench::interrupts
