#include "harness/trial.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cmbench {
namespace {

using clock = std::chrono::steady_clock;

std::int64_t ns_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + temp);
}

std::string signal_text(int sig) {
  const char* name = strsignal(sig);
  return "signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")";
}

// The trial running now, for the signal handler: interrupting cmbench (Ctrl-C reaches only the
// foreground process group, and each trial has its own) must stop the trial and everything it
// started, and leave no temporary files behind.
volatile sig_atomic_t running_trial_group = 0;
char running_trial_result[64] = {};
char running_trial_dir[64] = {};

extern "C" void stop_trial_and_exit(int sig) {
  const pid_t group = running_trial_group;
  if (group > 0) kill(-group, SIGKILL);
  if (running_trial_result[0] != '\0') unlink(running_trial_result);
  if (running_trial_dir[0] != '\0') rmdir(running_trial_dir);
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_interrupt_handlers() {
  static const bool installed = [] {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;  // nohup keeps SIGHUP
      struct sigaction action {};
      action.sa_handler = stop_trial_and_exit;
      sigemptyset(&action.sa_mask);
      sigaction(sig, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

}  // namespace

latency_record latency_record::of(const latency_histogram& h) {
  return latency_record{h.count(), h.sum(), h.min(), h.max(), h.nonzero_buckets()};
}

void latency_record::add_to(latency_histogram& h) const {
  for (const auto& [bucket, n] : buckets) h.add_bucket(bucket, n);
  h.add_summary(count, sum_ns, min_ns, max_ns);
}

int run_trial_here(const trial_request& request, const std::string& path) {
  trial_result result;
  try {
    const workload_entry* workload = find_workload(request.workload);
    const model_entry* model_entry = find_model(request.model);
    if (workload == nullptr) throw std::invalid_argument("unknown workload " + request.workload);
    if (model_entry == nullptr) throw std::invalid_argument("unknown model " + request.model);

    // Input first: a job built now is valid in every process the model forks.
    std::unique_ptr<prepared_run> prepared = workload->prepare(request.params);

    const auto setup_start = clock::now();
    std::unique_ptr<model_instance> model = model_entry->make(prepared->config());
    result.setup_ns = ns_between(setup_start, clock::now());

    const system::group_memory memory_before = system::process_group_memory(getpgrp());
    result.rss_before_bytes = memory_before.rss_bytes;
    result.pss_before_bytes = memory_before.pss_bytes;
    // CPU time, context switches and faults cover the wall clock's window and nothing else, for
    // every model: read just outside the two clock reads, over this process, what it reaped and
    // the group's other processes alive at either edge (a pool's forked workers). So setup and
    // teardown count for none, and a pool's workers count only for what they did in the window.
    const system::trial_counters before = system::read_counters_before(getpgrp());
    const auto start = clock::now();
    const std::uint64_t returned = prepared->run(*model);
    const auto stop = clock::now();
    const system::trial_counters after = system::read_counters_after(getpgrp(), before);
    result.usage = system::usage_between(before, after);
    result.checksum = prepared->checksum(returned);
    model.reset();  // teardown, outside the window: joins threads, reaps processes
    result.wall_ns = ns_between(start, stop);
    const run_observations seen = prepared->observe();
    result.observed = seen.metrics;
    if (seen.latency != nullptr) result.latency = latency_record::of(*seen.latency);
    result.ok = true;
  } catch (const limit_error& e) {
    result.error = e.what();
    result.limit_hit = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  result.peak_rss_bytes = system::current_usage().self_max_rss_bytes;
  try {
    write_file_atomically(path, nlohmann::json(result).dump());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cmbench trial: %s\n", e.what());
    return 3;
  }
  return 0;
}

trial_result run_trial_process(const trial_request& request, std::chrono::milliseconds timeout,
                               const std::string& self_exe) {
  trial_result failed;
  char dir_template[] = "/tmp/cmbench-trial-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    failed.error = std::string("cannot create a temporary directory: ") + std::strerror(errno);
    return failed;
  }
  const std::string dir = dir_template;
  const std::string result_path = dir + "/result.json";
  const std::string request_text = nlohmann::json(request).dump();

  // Orphaned descendants of the trial are re-parented to us, so we can reap them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  install_interrupt_handlers();
  std::snprintf(running_trial_result, sizeof(running_trial_result), "%s", result_path.c_str());
  std::snprintf(running_trial_dir, sizeof(running_trial_dir), "%s", dir.c_str());
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    failed.error = std::string("cannot start the trial process: ") + std::strerror(errno);
    rmdir(dir.c_str());
    return failed;
  }
  if (pid == 0) {
    setpgid(0, 0);
    // If cmbench dies without its handler running (SIGKILL), the trial goes with it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout belongs to the summary table
    execl(self_exe.c_str(), self_exe.c_str(), "trial", "--request", request_text.c_str(), "--result",
          result_path.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cmbench: cannot exec %s: %s\n", self_exe.c_str(), std::strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);  // both sides set it, so no sample or kill races the child's own call
  running_trial_group = pid;

  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const auto deadline = clock::now() + timeout;
  std::int64_t peak_rss = 0;
  std::int64_t peak_pss = 0;
  std::int64_t peak_processes = 0;
  // Sampling costs CPU on a machine the trial uses: keep it under ~5% of one CPU.
  std::chrono::milliseconds interval{20};
  int status = 0;
  bool exited = false;
  bool timed_out = false;
  while (!exited) {
    const auto sample_start = clock::now();
    const system::group_memory m = system::process_group_memory(pid);
    const auto sample_cost = clock::now() - sample_start;
    peak_rss = std::max(peak_rss, m.rss_bytes);
    peak_pss = std::max(peak_pss, m.pss_bytes);
    peak_processes = std::max(peak_processes, m.processes);
    // ... but with thousands of processes (smaps_rollup of each) sample at least every 200 ms,
    // so a peak held for `memory`'s hold_ms is seen.
    interval = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(sample_cost * 20),
                          std::chrono::milliseconds{20}, std::chrono::milliseconds{200});

    const auto now = clock::now();
    if (now >= deadline) {
      timed_out = true;
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    const auto wait_for = std::min<clock::duration>(interval, deadline - now);
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait_for).count()) + 1);
    } else {
      usleep(static_cast<useconds_t>(std::chrono::duration_cast<std::chrono::microseconds>(wait_for).count()));
    }
    const pid_t done = waitpid(pid, &status, WNOHANG);
    exited = done == pid;
  }
  if (pidfd >= 0) close(pidfd);
  // Nothing the trial started outlives it.
  kill(-pid, SIGKILL);
  running_trial_group = 0;
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }

  trial_result result;
  if (timed_out) {
    char text[64];
    std::snprintf(text, sizeof(text), "timeout after %g s", static_cast<double>(timeout.count()) / 1000.0);
    result.error = text;
    result.timed_out = true;
  } else if (WIFSIGNALED(status)) {
    result.error = "trial process killed by " + signal_text(WTERMSIG(status));
  } else {
    std::ifstream in(result_path);
    std::stringstream text;
    text << in.rdbuf();
    try {
      result = nlohmann::json::parse(text.str()).get<trial_result>();
    } catch (const std::exception&) {
      result = trial_result{};
      result.error = "trial process exited with status " + std::to_string(WEXITSTATUS(status)) +
                     " without a result";
    }
  }
  result.peak_rss_bytes = std::max(result.peak_rss_bytes, peak_rss);
  // The trial's own high-water mark is RSS; PSS has only the samples (and is at most RSS).
  result.peak_pss_bytes = std::max(peak_pss, result.pss_before_bytes);
  result.peak_processes = std::max<std::int64_t>(peak_processes, 1);
  running_trial_result[0] = '\0';
  running_trial_dir[0] = '\0';
  std::remove(result_path.c_str());
  rmdir(dir.c_str());
  return result;
}

}  // namespace cmbench
