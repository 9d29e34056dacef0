#include "harness/plan.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "harness/format.hpp"
#include "harness/interrupts.hpp"
#include "harness/params.hpp"

namespace cmbench {
namespace {

std::string seconds_text(double s) { return duration_text(std::chrono::duration<double>(s)); }

}  // namespace

double check_cost(const std::vector<run_record>& runs, int trials_per_run, std::chrono::milliseconds timeout,
                  unsigned cpus, bool accept_long_runs) {
  const double timeout_s = static_cast<double>(timeout.count()) / 1000.0;
  double total = 0;
  std::map<std::pair<const workload_entry*, param_values>, double> references;
  for (const auto& r : runs) {
    if (r.workload->cost == nullptr) continue;
    const cost_estimate c = r.workload->cost(r.params, r.model->info, cpus);
    references.emplace(std::make_pair(r.workload, r.params), c.reference_seconds);
    total += c.trial_seconds * trials_per_run;
    if (accept_long_runs) continue;
    const std::string what = r.workload->name + " on " + r.model->name + " (" + params_label(*r.workload, r.params) + ")";
    if (c.trial_seconds > timeout_s) {
      throw std::invalid_argument(what + " needs at least " + seconds_text(c.trial_seconds) +
                                  " per trial, past --timeout " + seconds_text(timeout_s) +
                                  ": raise --timeout, shrink the run, or pass --accept-long-runs");
    }
    if (c.reference_seconds > timeout_s) {
      throw std::invalid_argument("the reference checksum of " + what + " needs at least " +
                                  seconds_text(c.reference_seconds) + ", past --timeout " + seconds_text(timeout_s) +
                                  ": raise --timeout, shrink the run, or pass --accept-long-runs");
    }
  }
  for (const auto& [key, seconds] : references) total += seconds;
  if (!accept_long_runs && total > suite_seconds_limit) {
    throw std::invalid_argument("the runs selected need at least " + seconds_text(total) + " (" +
                                std::to_string(runs.size()) + " runs x " + std::to_string(trials_per_run) +
                                " trials), past " + seconds_text(suite_seconds_limit) +
                                ": select fewer, or pass --accept-long-runs");
  }
  return total;
}

std::uint64_t reference_in_child(const workload_entry& workload, const param_values& params,
                                 std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  interrupts::install();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error(std::string("cannot start the reference process: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    const std::uint64_t value = workload.reference(params);
    _exit(write(fds[1], &value, sizeof(value)) == sizeof(value) ? 0 : 1);
  }
  setpgid(pid, pid);
  interrupts::set_group(pid);
  close(fds[1]);
  std::uint64_t value = 0;
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got < sizeof(value)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;  // the deadline is checked above; a read now would block past it
    const ssize_t n = read(fds[0], reinterpret_cast<char*>(&value) + got, sizeof(value) - got);
    if (n == 0) break;
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  interrupts::set_group(0);
  if (got != sizeof(value)) {
    throw std::invalid_argument("the reference checksum of " + workload.name + " (" + params_label(workload, params) +
                                ") was not computed within --timeout " +
                                seconds_text(static_cast<double>(timeout.count()) / 1000.0) +
                                ": raise --timeout or shrink the run");
  }
  return value;
}

}  // namespace cmbench
