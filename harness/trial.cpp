#include "harness/trial.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "harness/interrupts.hpp"
#include "harness/output.hpp"
#include "harness/params.hpp"
#include "harness/topology.hpp"
#include "models/wire/token.hpp"
#include "workloads/remote_setup.hpp"
#include "models/system_limits.hpp"
#include "workloads/observe.hpp"

namespace cmbench {
namespace {

using clock = std::chrono::steady_clock;

std::int64_t ns_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

std::string signal_text(int sig) {
  const char* name = strsignal(sig);
  return "signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")";
}

// What the harness shares with one trial (workloads/observe.hpp): the page with the workload's
// gauge of units alive, and the pipes of the sample handshake. All close-on-exec but the trial's
// own ends, which it keeps across its exec.
class observe_link {
 public:
  observe_link() {
    page_fd_ = ::memfd_create("cmbench-trial-page", MFD_CLOEXEC);
    if (page_fd_ < 0 || ::ftruncate(page_fd_, sizeof(observe::trial_page)) != 0) return;
    void* at = ::mmap(nullptr, sizeof(observe::trial_page), PROT_READ | PROT_WRITE, MAP_SHARED, page_fd_, 0);
    if (at == MAP_FAILED) return;
    mapped_ = at;
    if (::pipe2(request_, O_CLOEXEC) != 0 || ::pipe2(reply_, O_CLOEXEC) != 0) return;
    page_ = new (at) observe::trial_page{};
  }
  ~observe_link() {
    for (int fd : {page_fd_, request_[0], request_[1], reply_[0], reply_[1]}) {
      if (fd >= 0) ::close(fd);
    }
    if (mapped_ != nullptr) ::munmap(mapped_, sizeof(observe::trial_page));
  }
  observe_link(const observe_link&) = delete;
  observe_link& operator=(const observe_link&) = delete;

  bool ok() const { return page_ != nullptr; }
  std::vector<int> trial_fds() const { return ok() ? std::vector<int>{page_fd_, request_[1], reply_[0]} : std::vector<int>{}; }
  // In the forked child before exec: keep the trial's ends open across it.
  void keep_across_exec() const noexcept {
    if (!ok()) return;
    for (int fd : {page_fd_, request_[1], reply_[0]}) ::fcntl(fd, F_SETFD, 0);
  }
  // In the parent after the fork: its copies of the trial's ends would keep a pipe open forever.
  void close_trial_ends() {
    if (!ok()) return;
    ::close(std::exchange(request_[1], -1));
    ::close(std::exchange(reply_[0], -1));
  }
  int request_fd() const { return ok() ? request_[0] : -1; }
  std::int64_t units_alive() const { return ok() ? page_->units_alive.load() : 0; }
  // Reads one request; false when the trial closed its end.
  bool take_request() const {
    char c;
    ssize_t n;
    do n = ::read(request_[0], &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1;
  }
  // The trial may have died meanwhile: cmbench ignores SIGPIPE, so the write then just fails.
  void answer() const {
    const char c = 'd';
    ssize_t n;
    do n = ::write(reply_[1], &c, 1);
    while (n < 0 && errno == EINTR);
  }

 private:
  int page_fd_ = -1;
  int request_[2] = {-1, -1};
  int reply_[2] = {-1, -1};
  void* mapped_ = nullptr;
  observe::trial_page* page_ = nullptr;  // set once the page and both pipes exist
};

// A trial's directory is TMPDIR/cmbench-trial-PID-XXXXXX, PID the harness's: one left by a harness
// killed outright (SIGKILL runs no handler) is known as stale by the next run, which removes it.
constexpr std::string_view trial_dir_prefix = "cmbench-trial-";

void remove_stale_trial_dirs(const std::string& root) {
  static bool swept = false;  // once per harness: its own directories are never stale
  if (swept) return;
  swept = true;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(trial_dir_prefix)) continue;
    const std::string rest = name.substr(trial_dir_prefix.size());
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == getpid()) continue;
    // Stale only once no process has that pid. Any live one may be running trials: a cmbench,
    // or a program that links the harness and runs trials itself (the tests do), whatever its
    // name or user; a pid reused by something else only delays the clean-up.
    if (!process_is_gone(pid)) continue;
    std::filesystem::remove_all(entry.path(), ec);
  }
}

std::int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Forks the trial: `self_exe trial --request REQUEST --result RESULT_PATH` in its own process
// group, dying with cmbench. Returns its pid, or -1 with errno.
pid_t start_trial(const std::string& self_exe, const std::string& request_text, const std::string& result_path,
                  const observe_link& link) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
  // If cmbench dies without its handler running (SIGKILL), the trial goes with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout belongs to the summary table
  link.keep_across_exec();
  execl(self_exe.c_str(), self_exe.c_str(), "trial", "--request", request_text.c_str(), "--result",
        result_path.c_str(), static_cast<char*>(nullptr));
  std::fprintf(stderr, "cmbench: cannot exec %s: %s\n", self_exe.c_str(), std::strerror(errno));
  _exit(127);
}

// The memory of a trial's process group, sampled by the harness while the trial runs: the
// samples a per-unit figure may use (the highest, the one with the most units the workload
// counted alive, the one the workload asked for) and what the sampling cost.
class memory_sampler {
 public:
  memory_sampler(pid_t group, const observe_link& link) : group_(group), link_(link) {}

  memory_sample sample() {
    const auto start = clock::now();
    const std::int64_t cpu_start = thread_cpu_ns();
    // The gauge is read on both sides of the scan (which can take a second with thousands of
    // processes), and the lower kept: only units alive throughout the scan are counted.
    const std::int64_t alive_before = link_.units_alive();
    const system::group_memory m = system::process_group_memory(group_);
    memory_sample taken{true,      m.rss_bytes, m.pss_bytes, m.processes, m.threads,
                        std::min(alive_before, link_.units_alive()), ns_between(start, clock::now())};
    sampler_cpu_ += thread_cpu_ns() - cpu_start;
    ++samples_;
    peak_rss_ = std::max(peak_rss_, m.rss_bytes);
    peak_processes_ = std::max(peak_processes_, m.processes);
    if (!peak_.taken || m.pss_bytes > peak_.pss_bytes) peak_ = taken;
    if (!most_alive_.taken || taken.units_alive > most_alive_.units_alive ||
        (taken.units_alive == most_alive_.units_alive && m.pss_bytes > most_alive_.pss_bytes)) {
      most_alive_ = taken;
    }
    return taken;
  }
  // The sample the workload asked for, with every unit alive.
  void sample_all_alive() { all_alive_ = sample(); }

  void record_in(trial_result& result) const {
    result.peak_rss_bytes = std::max(result.peak_rss_bytes, peak_rss_);
    // The trial's own high-water mark is RSS; PSS has only the samples (and is at most RSS).
    result.peak_pss_bytes = std::max(peak_.pss_bytes, result.pss_before_bytes);
    result.peak_processes = std::max<std::int64_t>(peak_processes_, 1);
    result.at_peak = peak_;
    result.at_most_alive = most_alive_;
    result.at_all_alive = all_alive_;
    result.memory_samples = samples_;
    result.sampler_cpu_ns = sampler_cpu_;
  }

 private:
  pid_t group_;
  const observe_link& link_;
  memory_sample peak_;
  memory_sample most_alive_;
  memory_sample all_alive_;
  std::int64_t peak_rss_ = 0;
  std::int64_t peak_processes_ = 0;
  std::int64_t samples_ = 0;
  std::int64_t sampler_cpu_ = 0;
};

struct trial_end {
  int status = 0;  // as waitpid() gave it
  bool timed_out = false;
};

// Waits for the trial to end, sampling its memory and answering its requests for a sample, or
// kills its process group at `deadline`.
trial_end watch_trial(pid_t pid, const observe_link& link, clock::time_point deadline, memory_sampler& sampler) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  // Sampling costs a CPU the trial may use: keep it under ~5% of one, however many processes the
  // trial has (smaps_rollup of thousands of them takes 100 ms and more). A workload that needs the
  // memory at a precise moment asks for a sample then (observe.hpp) and waits for it.
  std::chrono::milliseconds interval{20};
  trial_end end;
  auto next_sample = clock::now();
  int request_fd = link.request_fd();
  for (bool exited = false; !exited;) {
    auto now = clock::now();
    if (now >= next_sample) {
      const memory_sample taken = sampler.sample();
      interval = std::max(std::chrono::milliseconds{20}, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                             std::chrono::nanoseconds{taken.cost_ns * 20}));
      now = clock::now();
      next_sample = now + interval;
    }
    if (now >= deadline) {
      end.timed_out = true;
      kill(-pid, SIGKILL);
      waitpid(pid, &end.status, 0);
      break;
    }
    const auto wait_for = std::min<clock::duration>(next_sample - now, deadline - now);
    pollfd p[2] = {{pidfd, POLLIN, 0}, {request_fd, POLLIN, 0}};
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait_for).count() + 1;
    const int timeout_ms = static_cast<int>(wait_ms);
    if (pidfd >= 0) {
      poll(p, 2, timeout_ms);
    } else {
      poll(p + 1, 1, timeout_ms);
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0) {
      if ((p[1].revents & (POLLERR | POLLNVAL)) == 0 && link.take_request()) {
        sampler.sample_all_alive();
        link.answer();
      } else {
        request_fd = -1;  // every process of the trial closed it: nothing more will ask
      }
    }
    exited = waitpid(pid, &end.status, WNOHANG) == pid;
  }
  if (pidfd >= 0) close(pidfd);
  return end;
}

// The result file of a trial that exited; without one, why: the exit status, and the limit on
// open files where that was why it could not be read.
trial_result read_result_file(const std::string& result_path, int status) {
  errno = 0;
  std::ifstream in(result_path);
  const int open_error = in ? 0 : errno;
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str()).get<trial_result>();
  } catch (const std::exception&) {
  }
  trial_result result;
  result.error = "trial process exited with status " + std::to_string(WEXITSTATUS(status)) + " without a result";
  // Out of file descriptors (here or in the trial): say which limit, not only that it failed.
  if (open_error == EMFILE || open_error == ENFILE) {
    result.error += std::string(" (cannot open it: ") + std::strerror(open_error) + "; " +
                    describe_descriptor_limit(open_error) + ")";
  }
  return result;
}

// What the trial reported, or why it reported nothing: the timeout, a signal, an exit without a
// result. A SIGKILL the harness did not send, to the trial or one of its processes, while the OOM
// killer struck: memory was the limit, named as such and not repeated.
trial_result result_of(const std::string& result_path, const trial_end& end, std::chrono::milliseconds timeout,
                       const system::oom_kills& oom_before) {
  trial_result result;
  if (end.timed_out) {
    char text[64];
    std::snprintf(text, sizeof(text), "timeout after %g s", static_cast<double>(timeout.count()) / 1000.0);
    result.error = text;
    result.timed_out = true;
    return result;
  }
  if (WIFSIGNALED(end.status)) {
    result.error = "trial process killed by " + signal_text(WTERMSIG(end.status));
  } else {
    result = read_result_file(result_path, end.status);
  }
  if (!result.ok && !result.limit_hit) {
    const std::string oom = system::out_of_memory_error(
        oom_before, system::read_oom_kills(), WIFSIGNALED(end.status) && WTERMSIG(end.status) == SIGKILL, result.error);
    if (!oom.empty()) {
      result.error = oom;
      result.limit_hit = true;
    }
  }
  return result;
}

}  // namespace

latency_record latency_record::of(const latency_histogram& h) {
  return latency_record{h.count(), h.sum(), h.min(), h.max(), h.nonzero_buckets()};
}

void latency_record::add_to(latency_histogram& h) const {
  for (const auto& [bucket, n] : buckets) h.add_bucket(bucket, n);
  h.add_summary(count, sum_ns, min_ns, max_ns);
}

// A model out of file descriptors is at a named limit, as one out of threads or memory is. Around
// run() the count is read while the model still holds its descriptors; around make() a model that
// failed half-built has already closed its own, so the count is what the harness holds.
template <class F>
auto naming_descriptor_limits(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::system_error& e) {
    if (!out_of_descriptors(e)) throw;
    throw limit_error(std::string(e.what()) + " (" + describe_descriptor_limit(e) + ")");
  }
}

int run_trial_here(const trial_request& request, const std::string& path) {
  trial_result result;
  try {
    const workload_entry* workload = find_workload(request.workload);
    const model_entry* model_entry = find_model(request.model);
    if (workload == nullptr) throw std::invalid_argument("unknown workload " + request.workload);
    if (model_entry == nullptr) throw std::invalid_argument("unknown model " + request.model);
    if (workload->remote) {
      // The coordinator's side runs on the row's model, or the one coordinator_model pins, or on
      // the baseline model (no units) when the workload's own code is the coordinator.
      model_entry = workload->own_coordinator.empty() ? &side_model(*model_entry, request.params, "coordinator_model")
                                                      : &baseline_model();
      remote_setup& setup = current_remote_setup();
      for (const std::string& text : request.nodes) {
        const endpoint e = parse_endpoint(text, "a node's address");
        setup.nodes.push_back({e.host, e.port});
      }
      for (const std::string& text : request.node_controls) {
        const endpoint e = parse_endpoint(text, "a node's control port");
        setup.controls.push_back({e.host, e.port});
      }
      const char* token = std::getenv(wire::token_env);
      setup.token = token == nullptr ? "" : token;
      setup.deadline = request.remote_deadline_ns != 0
                           ? clock::time_point(std::chrono::nanoseconds(request.remote_deadline_ns))
                           : clock::now() + std::chrono::milliseconds(request.remote_timeout_ms);
    }

    if (request.observe_fds.size() == 3) {
      observe::attach(request.observe_fds[0], request.observe_fds[1], request.observe_fds[2]);
    }
    // Input first: a job built now is valid in every process the model forks.
    std::unique_ptr<prepared_run> prepared = workload->prepare(request.params);

    const auto setup_start = clock::now();
    std::unique_ptr<model_instance> model =
        naming_descriptor_limits([&] { return model_entry->make(prepared->config()); });
    result.setup_ns = ns_between(setup_start, clock::now());

    const system::group_memory memory_before = system::process_group_memory(getpgrp());
    result.rss_before_bytes = memory_before.rss_bytes;
    result.pss_before_bytes = memory_before.pss_bytes;
    result.processes_before = memory_before.processes;
    result.threads_before = memory_before.threads;
    // CPU time, context switches and faults cover the wall clock's window and nothing else, for
    // every model: read just outside the two clock reads, over this process, what it reaped and
    // the group's other processes alive at either edge (a pool's forked workers). So setup and
    // teardown count for none, and a pool's workers count only for what they did in the window.
    const system::trial_counters before = system::read_counters_before(getpgrp());
    const auto start = clock::now();
    const std::uint64_t returned = naming_descriptor_limits([&] { return prepared->run(*model); });
    const auto stop = clock::now();
    const system::trial_counters after = system::read_counters_after(getpgrp(), before);
    result.usage = system::usage_between(before, after);
    result.checksum = prepared->checksum(returned);
    model.reset();  // teardown, outside the window: joins threads, reaps processes
    result.wall_ns = ns_between(start, stop);
    const run_observations seen = prepared->observe();
    result.observed = seen.metrics;
    if (seen.latency != nullptr) result.latency = latency_record::of(*seen.latency);
    result.gauge_used = observe::page().gauge_used.load() != 0;
    // Beyond the checksum: what the run did must be what the workload asked (every wait waited).
    const std::string failure = prepared->verify(model_entry->info, result.observed);
    result.ok = failure.empty();
    if (!failure.empty()) result.error = "verification failed: " + failure;
  } catch (const limit_error& e) {
    result.error = e.what();
    result.limit_hit = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  result.peak_rss_bytes = system::current_usage().self_max_rss_bytes;
  try {
    write_atomically(path, nlohmann::json(result).dump(), written_file::trial_result);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cmbench trial: %s\n", e.what());
    return 3;
  }
  return 0;
}

trial_result run_trial_process(const trial_request& request, std::chrono::milliseconds timeout,
                               const std::string& self_exe) {
  trial_result failed;
  const std::string root = temp_root();  // TMPDIR, else /tmp
  remove_stale_trial_dirs(root);
  std::string dir_template = root + "/" + std::string(trial_dir_prefix) + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {
    failed.error = "cannot create a temporary directory in " + root + " (TMPDIR): " + std::strerror(errno);
    return failed;
  }
  const std::string dir = dir_template;
  const std::string result_path = dir + "/result.json";
  observe_link link;
  trial_request sent = request;
  sent.observe_fds = link.trial_fds();

  // Whether the kernel's OOM killer struck during the trial: its counters before and after.
  const system::oom_kills oom_before = system::read_oom_kills();
  // Orphaned descendants of the trial are re-parented to us, so we can reap them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  interrupts::install();
  interrupts::set_files(result_path, dir);
  // The remote calls' deadline counts from now, before the trial's process starts, as its
  // timeout does (from just after): the time the process takes to start (most of a second under
  // a sanitizer on a busy machine) must not push the deadline past the timeout, or a hung node is
  // reported as a bare timeout instead of by name.
  const auto started = clock::now();
  if (sent.remote_timeout_ms > 0) {
    sent.remote_deadline_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  (started + std::chrono::milliseconds(sent.remote_timeout_ms)).time_since_epoch())
                                  .count();
  }
  const pid_t pid = start_trial(self_exe, nlohmann::json(sent).dump(), result_path, link);
  if (pid < 0) {
    failed.error = std::string("cannot start the trial process: ") + std::strerror(errno);
    interrupts::set_files({}, {});
    rmdir(dir.c_str());
    return failed;
  }
  setpgid(pid, pid);  // both sides set it, so no sample or kill races the child's own call
  interrupts::set_group(pid);
  interrupts::set_result_temp(temp_path_of(result_path, pid));
  link.close_trial_ends();
  memory_sampler sampler(pid, link);
  const trial_end end = watch_trial(pid, link, clock::now() + timeout, sampler);
  // Nothing the trial started outlives it.
  kill(-pid, SIGKILL);
  interrupts::set_group(0);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }

  trial_result result = result_of(result_path, end, timeout, oom_before);
  sampler.record_in(result);
  interrupts::set_files({}, {});
  // With whatever a killed trial left in it (its result.json.tmp, half written).
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

}  // namespace cmbench
