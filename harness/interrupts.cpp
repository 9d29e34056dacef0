#include "harness/interrupts.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace cmbench::interrupts {
namespace {

volatile sig_atomic_t running_group = 0;
char running_result[256] = {};
char running_dir[256] = {};
char lock_file[512] = {};

extern "C" void stop_child_and_exit(int sig) {
  const pid_t group = running_group;
  if (group > 0) kill(-group, SIGKILL);
  if (running_result[0] != '\0') unlink(running_result);
  if (running_dir[0] != '\0') rmdir(running_dir);
  if (lock_file[0] != '\0') unlink(lock_file);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install() {
  static const bool installed = [] {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      struct sigaction action {};
      action.sa_handler = stop_child_and_exit;
      sigemptyset(&action.sa_mask);
      sigaction(sig, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

void set_group(pid_t group) { running_group = group; }

void set_files(const std::string& result_path, const std::string& dir) {
  // The handler reads these: clear first, so it never sees half a path.
  running_result[0] = '\0';
  running_dir[0] = '\0';
  std::snprintf(running_dir, sizeof(running_dir), "%s", dir.c_str());
  std::snprintf(running_result, sizeof(running_result), "%s", result_path.c_str());
}

void set_lock_file(const std::string& path) {
  lock_file[0] = '\0';  // cleared first, as above
  if (path.size() + 1 > sizeof(lock_file)) return;
  std::snprintf(lock_file + 1, sizeof(lock_file) - 1, "%s", path.c_str() + (path.empty() ? 0 : 1));
  std::atomic_signal_fence(std::memory_order_seq_cst);
  lock_file[0] = path.empty() ? '\0' : path[0];
}

}  // namespace cmbench::interrupts
