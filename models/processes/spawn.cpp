// processes/spawn: one fork() per unit, as Python's multiprocessing.Process.
//
// Every task and every tree unit is a real child process. Results come back through a MAP_SHARED
// region the parent maps before forking (one 8-byte slot per unit); exit statuses come back
// through waitpid() and every one is checked.
//
// A run's processes are children of a process created for that run (the bulk or scatter
// supervisor, the tree's root unit), never of the caller: waitpid(-1) then reaps exactly this
// run's children and can never steal the exit status of another child of the caller (a pool's
// workers, a node).
//
// Remote jobs: a coordinator's call is a process of its own, as a bulk task is (its own
// connection, handshake, one call, exit; a failed call's message in the run's shared failure
// record); a node forks a process per connection, the classic forking server.
#include <sys/prctl.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "models/bulk_task.hpp"
#include "models/graph_validation.hpp"
#include "models/model.hpp"
#include "models/processes/futex_sync.hpp"
#include "models/processes/shared_memory.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench {
namespace {

using detail::cache_line;
using detail::process_limits;
using detail::reap;
using detail::shared_region;

// The first thing that went wrong in a run, recorded by the process that saw it (first writer
// wins) and turned into an exception by the caller, the only one allowed to allocate.
struct failure_record {
  enum kind_type : std::uint32_t {
    none,
    fork_failed,
    out_of_memory,
    unit_failed,
    wait_failed,
    call_failed,  // a remote call failed: `message` says why (node, task)
    call_limit,   // a remote call ran out of descriptors: `message` names the limit
  };

  std::atomic<std::uint32_t> kind{none};
  std::atomic<std::uint32_t> written{0};  // the fields below are complete
  int error = 0;            // errno of fork() or waitpid()
  pid_t pid = 0;            // the unit that failed
  int status = 0;           // its wait status
  std::uint64_t alive = 0;  // this run's processes alive when fork() failed or was refused
  process_limits limits;
  char message[1024] = {};  // call_failed, call_limit: what the calling process caught
};

// The head of a run's shared region; the per-unit result slots follow it.
struct run_header {
  alignas(cache_line) std::atomic<std::uint32_t> failed{0};  // polled before every fork
  alignas(cache_line) std::atomic<std::uint64_t> alive{0};   // forked and not yet reaped
  detail::memory_budget budget;                              // set before the first fork
  alignas(cache_line) failure_record failure;
};

constexpr std::size_t results_offset = detail::round_up(sizeof(run_header), cache_line);

// One run's shared state: the header, `units` result slots and optionally `units` pid slots
// (bulk only, to name the task whose process failed).
class run_region {
 public:
  run_region(std::uint64_t units, bool with_pids)
      : units_(units),
        region_(results_offset + units * sizeof(std::uint64_t) +
                (with_pids ? units * sizeof(pid_t) : 0)),
        header_(new (region_.data()) run_header{}),
        results_(region_.at<std::uint64_t>(results_offset)),
        pids_(with_pids ? region_.at<pid_t>(results_offset + units * sizeof(std::uint64_t))
                        : nullptr) {}

  run_header& header() const { return *header_; }
  std::uint64_t* results() const { return results_; }
  pid_t* pids() const { return pids_; }
  bool failed() const { return header_->failed.load(std::memory_order_relaxed) != 0; }

  // Called in children: async-signal-safe, the first failure wins, every failure stops forking.
  void record_fork_failure(int error, std::uint64_t alive) const noexcept {
    const process_limits limits = detail::read_process_limits();
    record(failure_record::fork_failed, [&](failure_record& f) {
      f.error = error;
      f.alive = alive;
      f.limits = limits;
    });
  }
  void record_out_of_memory(std::uint64_t alive) const noexcept {
    record(failure_record::out_of_memory, [&](failure_record& f) { f.alive = alive; });
  }
  void record_unit_failure(pid_t pid, int status) const noexcept {
    record(failure_record::unit_failed, [&](failure_record& f) {
      f.pid = pid;
      f.status = status;
    });
  }
  void record_wait_failure(int error) const noexcept {
    record(failure_record::wait_failed, [&](failure_record& f) { f.error = error; });
  }
  void record_call_failure(failure_record::kind_type kind, std::string_view message) const noexcept {
    record(kind, [&](failure_record& f) {
      const std::size_t n = std::min(message.size(), sizeof f.message - 1);
      std::memcpy(f.message, message.data(), n);
      f.message[n] = '\0';
    });
  }

  // In the caller, once the run's top process has been reaped with `status`: throws the run's
  // failure if there was one. `unit_name` is "task" or "tree unit".
  void throw_if_failed(int status, const char* unit_name) const {
    const failure_record& f = header_->failure;
    if (f.written.load(std::memory_order_acquire) != 0) {
      switch (f.kind.load(std::memory_order_relaxed)) {
        case failure_record::fork_failed:
          throw limit_error("processes/spawn: " +
                            detail::describe_fork_failure(
                                f.error, detail::with_thousands(f.alive) + " processes alive",
                                f.limits));
        case failure_record::out_of_memory:
          throw limit_error("processes/spawn: " +
                            detail::describe_memory_limit(f.alive, header_->budget));
        case failure_record::call_failed:
          throw std::runtime_error("processes/spawn: " + std::string(f.message));
        case failure_record::call_limit:
          throw limit_error("processes/spawn: " + std::string(f.message));
        case failure_record::unit_failed:
          throw std::runtime_error("processes/spawn: " + std::string(unit_name) + name_pid(f.pid) +
                                   " " + detail::describe_status(f.status));
        default:
          throw std::runtime_error("processes/spawn: lost track of child processes: waitpid: " +
                                   std::string(std::strerror(f.error)));
      }
    }
    if (!detail::exited_cleanly(status)) {
      throw std::runtime_error("processes/spawn: the run's top process " +
                               detail::describe_status(status));
    }
  }

 private:
  template <class Fill>
  void record(failure_record::kind_type kind, Fill fill) const noexcept {
    header_->failed.store(1, std::memory_order_relaxed);
    std::uint32_t expected = failure_record::none;
    if (header_->failure.kind.compare_exchange_strong(expected, kind)) {
      fill(header_->failure);
      header_->failure.written.store(1, std::memory_order_release);
    }
  }

  std::string name_pid(pid_t pid) const {
    std::string name;
    for (std::uint64_t i = 0; pids_ != nullptr && i < units_; ++i) {
      if (pids_[i] == pid) {
        name = " " + std::to_string(i);
        break;
      }
    }
    return name + " (pid " + std::to_string(pid) + ")";
  }

  std::uint64_t units_;
  shared_region region_;
  run_header* header_;
  std::uint64_t* results_;
  pid_t* pids_;
};

// Reaps one child of this process (every child is this run's) and checks how it ended.
// Returns false when there was nothing to reap (WNOHANG) or nothing left (ECHILD).
bool reap_one(const run_region& run, int options) noexcept {
  int status = 0;
  const pid_t pid = reap(-1, status, options);
  if (pid > 0) {
    if (!detail::exited_cleanly(status)) run.record_unit_failure(pid, status);
    return true;
  }
  if (pid < 0) run.record_wait_failure(errno);  // SIGCHLD ignored: the kernel reaped them
  return false;
}

// ---- bulk: a supervisor process forks one child per task ----

[[noreturn]] void run_task(const bulk_job& job, std::uint64_t task, std::uint64_t* results) noexcept {
  results[task] = run_blocking_task(job, task);  // the parent's waitpid() orders this write before its read
  ::_exit(0);           // no atexit handlers, no stdio flush, never back into the caller's stack
}

// Forks run_unit(task) for every task, at most max_alive alive at once (0: no cap), and reaps
// them all. Shared by bulk tasks and a coordinator's remote calls.
template <class RunUnit>
[[noreturn]] void supervise_tasks(std::uint64_t tasks, std::uint64_t max_alive, const run_region& run,
                                  RunUnit run_unit) noexcept {
  std::uint64_t alive = 0;
  for (std::uint64_t task = 0; task < tasks && !run.failed();) {
    // Reap what has finished before forking more, as multiprocessing does on every start():
    // a zombie holds its pid, so an uncapped run would otherwise exhaust pid_max with
    // processes that are already done.
    while (alive > 0 && reap_one(run, WNOHANG)) --alive;
    if (max_alive != 0 && alive >= max_alive) {
      if (!reap_one(run, 0)) break;
      --alive;
      continue;
    }
    if (alive >= run.header().budget.max_processes) {
      run.record_out_of_memory(alive);
      break;
    }
    const pid_t pid = ::fork();
    if (pid == 0) run_unit(task);
    if (pid < 0) {
      run.record_fork_failure(errno, alive);
      break;
    }
    run.pids()[task++] = pid;
    ++alive;
  }
  // On failure, stop forking and let the children already started finish: every one is reaped.
  while (alive > 0 && reap_one(run, 0)) --alive;
  ::_exit(run.failed() ? 1 : 0);
}

[[noreturn]] void supervise_bulk(const bulk_job& job, std::uint64_t max_alive, const run_region& run) noexcept {
  supervise_tasks(job.tasks, max_alive, run, [&](std::uint64_t task) { run_task(job, task, run.results()); });
}

// ---- scatter: a supervisor process forks one child per remote call ----

// The body of call `task`'s process: its own connection to its node (task t -> node t % nodes),
// the handshake, the call, the value in the task's slot, exit. What it caught goes into the
// run's failure record (the first one wins), which stops the supervisor forking.
[[noreturn]] void run_call(const scatter_job& job, std::uint64_t task, const run_region& run) noexcept {
  try {
    wire::call_connection connection(job, task % job.nodes.size());
    run.results()[task] = connection.call(job, task);  // ordered before the parent's read by waitpid()
  } catch (const std::exception& e) {
    if (out_of_descriptors(e)) {
      run.record_call_failure(failure_record::call_limit,
                              "a call's process cannot open its connection: " + std::string(e.what()) + " (" +
                                  describe_descriptor_limit(e) + ")");
    } else {
      run.record_call_failure(failure_record::call_failed, e.what());
    }
    ::_exit(1);
  }
  ::_exit(0);
}

[[noreturn]] void supervise_scatter(const scatter_job& job, std::uint64_t max_alive, const run_region& run) noexcept {
  supervise_tasks(job.tasks, max_alive, run, [&](std::uint64_t task) { run_call(job, task, run); });
}

// ---- serve: the calling process accepts, and forks a process per connection ----

// The body of a connection's process: the handshake, then each request in turn (its wait a
// blocking sleep), until the peer closes, a frame is bad, or stop_fd becomes readable. The
// parent's SIGTERM at stop ends it at once when it is idle or in a handshake; a request it has
// started reading is served and counted to its end first (SIGTERM blocked meanwhile).
[[noreturn]] void serve_connection(const serve_job& job, int fd, const std::string& peer, pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::signal(SIGTERM, SIG_DFL);  // whatever the caller's handler was
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_UNBLOCK, &term, nullptr);
  ::close(job.listen_fd);  // this process's copy: only the parent accepts
  try {
    if (wire::accept_handshake(job, fd, peer)) {
      while (wire::wait_readable_or_stop(fd, job.stop_fd)) {
        ::sigprocmask(SIG_BLOCK, &term, nullptr);
        const auto request = wire::read_request(job, fd, peer);
        if (!request || !wire::answer(job, fd, *request, [](std::uint32_t ms) {
              std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            })) {
          break;
        }
        ::sigprocmask(SIG_UNBLOCK, &term, nullptr);  // a SIGTERM that came meanwhile ends it here
      }
    }
  } catch (const std::exception& e) {
    if (job.log != nullptr) job.log(job.context, "dropped " + peer + ": " + e.what());
    ::_exit(1);
  }
  ::_exit(0);
}

struct connection_process {
  pid_t pid = 0;
  std::string peer;
};

// Reaps the connection processes that have ended, logging any that did not end cleanly unless
// the node is stopping (it ended them itself).
void reap_connections(const serve_job& job, std::vector<connection_process>& children, bool stopping) {
  for (std::size_t i = children.size(); i-- > 0;) {
    int status = 0;
    const pid_t pid = reap(children[i].pid, status, WNOHANG);
    if (pid == 0) continue;
    if (pid > 0 && !detail::exited_cleanly(status) && !stopping && job.log != nullptr) {
      job.log(job.context, "connection from " + children[i].peer + ": its process " + detail::describe_status(status));
    }
    children[i] = std::move(children.back());
    children.pop_back();
  }
}

// How long a connection process may go on serving the request it is in after the node's stop:
// one still at it then is hung, and killed.
constexpr std::chrono::seconds stop_grace{3};  // well inside the node daemon's 5 s, so these are reaped (and their CPU counted) first

// At stop: SIGTERM to every connection process (an idle one ends at once, one in a request when
// it has served it), then reap them all; SIGKILL to any still alive after stop_grace.
void end_connections(const serve_job& job, std::vector<connection_process>& children) {
  reap_connections(job, children, false);  // the ones that ended before the stop, logged if they failed
  for (const connection_process& child : children) ::kill(child.pid, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + stop_grace;
  while (!children.empty() && std::chrono::steady_clock::now() < until) {
    reap_connections(job, children, true);
    if (!children.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (const connection_process& child : children) {
    if (job.log != nullptr) {
      job.log(job.context, "connection from " + child.peer + ": its process still serves a request " +
                               std::to_string(stop_grace.count()) + " s after the stop: killed");
    }
    ::kill(child.pid, SIGKILL);
    int status = 0;
    (void)reap(child.pid, status);
  }
  children.clear();
}

// ---- tree: every unit is a process that forks its children ----

// Units are numbered breadth-first: unit u's children are u * fanout + 1 ... u * fanout + fanout,
// so the result slots are one flat array of tree_units(job) entries.
[[noreturn]] void run_unit(const tree_job& job, const run_region& run, std::uint64_t unit,
                           std::uint64_t first, std::uint64_t size) noexcept {
  const std::uint32_t fanout = job.fanout;
  run_header& header = run.header();
  std::uint64_t* results = run.results();
  for (;;) {  // a forked child continues here as its own unit, without growing the stack
    if (size == 1) {
      results[unit] = job.leaf_value(first);
      ::_exit(0);
    }
    const std::uint64_t child_size = size / fanout;
    std::uint32_t started = 0;
    bool child = false;
    while (started < fanout && !run.failed()) {
      const std::uint64_t alive = header.alive.load(std::memory_order_relaxed);
      if (alive >= header.budget.max_processes) {
        run.record_out_of_memory(alive);
        break;
      }
      const pid_t pid = ::fork();
      if (pid == 0) {
        unit = unit * fanout + 1 + started;
        first += started * child_size;
        size = child_size;
        child = true;
        break;
      }
      if (pid < 0) {
        run.record_fork_failure(errno, header.alive.load(std::memory_order_relaxed));
        break;
      }
      // Counted once forked, so forks still in flight elsewhere do not inflate the count.
      header.alive.fetch_add(1, std::memory_order_relaxed);
      ++started;
    }
    if (child) continue;

    for (std::uint32_t c = 0; c < started; ++c) {
      if (!reap_one(run, 0)) break;
      header.alive.fetch_sub(1, std::memory_order_relaxed);
    }
    // A failure anywhere (here, below, or in another branch) fails every ancestor: exit code 1
    // travels up while the record names the cause.
    if (run.failed()) ::_exit(1);
    std::uint64_t sum = 0;
    for (std::uint32_t c = 0; c < fanout; ++c) sum += results[unit * fanout + 1 + c];
    results[unit] = sum;
    ::_exit(0);
  }
}

// ---- graph: a supervisor process forks one child per unit, all alive at once ----

struct alignas(cache_line) padded_futex_mutex {
  detail::futex_mutex mutex;
};

// Everything a graph job's units share, in one MAP_SHARED region mapped before the forks: the
// start gate, the barrier, the mutexes, the channels with their slots, and one message buffer per
// unit (each on its own cache lines; zero until the unit's first step, as mmap gives them).
// Result and pid slots live in the run_region.
class graph_region {
 public:
  explicit graph_region(const graph_job& job)
      : job_(job),
        message_stride_(detail::round_up(job.message_bytes, cache_line)),
        slots_stride_(detail::round_up(std::size_t{job.capacity} * job.message_bytes, cache_line)),
        mutexes_offset_(detail::round_up(sizeof(header), cache_line)),
        channels_offset_(mutexes_offset_ + std::size_t{job.mutexes} * sizeof(padded_futex_mutex)),
        slots_offset_(channels_offset_ + std::size_t{job.channels} * sizeof(detail::futex_channel)),
        messages_offset_(slots_offset_ + std::size_t{job.channels} * slots_stride_),
        region_(messages_offset_ + std::size_t{job.units} * message_stride_),
        header_(new (region_.data()) header{detail::futex_barrier(job.units, job.hold), {}, {0}}) {
    for (std::uint32_t m = 0; m < job.mutexes; ++m) new (&mutex(m)) padded_futex_mutex{};
    for (std::uint32_t c = 0; c < job.channels; ++c) {
      new (&channel(c)) detail::futex_channel(
          region_.at<std::byte>(slots_offset_ + c * slots_stride_), job.capacity, job.message_bytes);
    }
  }

  detail::futex_gate& gate() const { return header_->gate; }
  std::uint64_t blocked_sends() const { return header_->blocked_sends.load(); }

  // The body of unit u's process: wait for the gate, step the unit until it finishes, leave its
  // result in `result`.
  void run_unit(std::uint32_t u, std::uint64_t& result) const noexcept {
    if (!header_->gate.wait()) return;
    unit_state state;
    state.unit = u;
    std::byte* message = region_.at<std::byte>(messages_offset_ + std::size_t{u} * message_stride_);
    std::uint64_t blocked_sends = 0;
    for (;;) {
      const unit_action action = job_.next(state, message);
      switch (action.op) {
        case unit_op::send:
          blocked_sends += channel(action.target).send(message) ? 1 : 0;
          break;
        case unit_op::receive:
          channel(action.target).receive(message);
          break;
        case unit_op::lock:
          mutex(action.target).mutex.lock();
          break;
        case unit_op::unlock:
          mutex(action.target).mutex.unlock();
          break;
        case unit_op::arrive:
          header_->barrier.arrive_and_wait();
          break;
        case unit_op::finish:
          result = state.result;
          if (blocked_sends > 0) {
            header_->blocked_sends.fetch_add(blocked_sends, std::memory_order_relaxed);
          }
          return;
      }
    }
  }

 private:
  struct header {
    detail::futex_barrier barrier;
    detail::futex_gate gate;
    alignas(cache_line) std::atomic<std::uint64_t> blocked_sends;
  };

  padded_futex_mutex& mutex(std::uint32_t m) const {
    return region_.at<padded_futex_mutex>(mutexes_offset_)[m];
  }
  detail::futex_channel& channel(std::uint32_t c) const {
    return region_.at<detail::futex_channel>(channels_offset_)[c];
  }

  const graph_job& job_;
  std::size_t message_stride_;
  std::size_t slots_stride_;
  std::size_t mutexes_offset_;
  std::size_t channels_offset_;
  std::size_t slots_offset_;
  std::size_t messages_offset_;
  shared_region region_;
  header* header_;
};

// Die with the process that forked us (PR_SET_PDEATHSIG fires when the forking thread exits),
// so no unit outlives a killed trial; false if that process is already gone.
bool die_with_parent(pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  return ::getppid() == parent;
}

[[noreturn]] void run_graph_unit(const graph_region& graph, const run_region& run, std::uint32_t u,
                                 pid_t supervisor) noexcept {
  if (!die_with_parent(supervisor)) ::_exit(1);
  graph.run_unit(u, run.results()[u]);
  // A unit that ends cleanly clears its pid slot first, so the supervisor, which kills the units
  // still running when one fails, never signals a pid that may have been reaped and reused.
  std::atomic_ref<pid_t>(run.pids()[u]).store(0, std::memory_order_relaxed);
  ::_exit(0);
}

// Kills every unit still running: its pid slot is set (it has not ended cleanly) and it is not
// the unit that just failed (reaped, so its pid may be reused). Every other unit that failed was
// reaped after this ran once.
void kill_running_units(const run_region& run, std::uint32_t forked, pid_t reaped) noexcept {
  for (std::uint32_t u = 0; u < forked; ++u) {
    const pid_t pid = std::atomic_ref<pid_t>(run.pids()[u]).load(std::memory_order_relaxed);
    if (pid > 0 && pid != reaped) ::kill(pid, SIGKILL);
  }
}

[[noreturn]] void supervise_graph(const graph_job& job, const graph_region& graph,
                                  const run_region& run, pid_t caller) noexcept {
  if (!die_with_parent(caller)) ::_exit(1);
  const pid_t self = ::getpid();
  std::uint32_t forked = 0;
  for (; forked < job.units; ++forked) {
    // The units and this supervisor are alive together: stop at what memory can hold, before the
    // OOM killer would (fork() itself does not fail there). A lower kernel limit fails first.
    if (std::uint64_t{forked} + 2 > run.header().budget.max_processes) {
      run.record_out_of_memory(forked + 1);
      break;
    }
    const pid_t pid = ::fork();
    if (pid == 0) run_graph_unit(graph, run, forked, self);
    if (pid < 0) {
      run.record_fork_failure(errno, forked);
      break;
    }
    run.pids()[forked] = pid;  // before the gate opens, so before the unit can clear it
  }
  // Every unit exists, or the run is called off and the units forked leave before their first
  // step: none can be waiting for a unit that was never forked.
  graph.gate().open(!run.failed());
  bool killed = false;
  for (std::uint32_t reaped = 0; reaped < forked; ++reaped) {
    int status = 0;
    const pid_t pid = reap(-1, status);
    if (pid < 0) {
      run.record_wait_failure(errno);
      break;
    }
    if (!detail::exited_cleanly(status)) {
      run.record_unit_failure(pid, status);
      // Its peers may wait for it forever: end them all, the run has failed.
      if (!killed) kill_running_units(run, forked, pid);
      killed = true;
    }
  }
  ::_exit(run.failed() ? 1 : 0);
}

}  // namespace

class processes_spawn {
 public:
  static constexpr model_info info{
      .family = "processes",
      .variant = "spawn",
      .description = "one fork() per task, tree unit or graph unit, as Python's multiprocessing.Process",
      .order = 20,
      .mechanism = {
          .summary = "a child process fork()ed for every unit; everything shared is in a MAP_SHARED region mapped "
                     "before the forks",
          .unit = "a task: a child forked by a per-run supervisor process, at most max_alive alive, finished ones "
                  "reaped before each fork; a graph unit: a child forked by a supervisor, all alive at once "
                  "(PR_SET_PDEATHSIG), started together behind a futex gate",
          .tree = "each unit forks its children and waitpid()s them",
          .channel = "a single-producer single-consumer ring in shared memory whose sent / taken counters are "
                     "process-shared futex words, woken only when the peer announced a sleep",
          .mutex = "a futex mutex in shared memory (no system call uncontended)",
          .barrier = "a counter plus a generation futex word; the last arriver sleeps the hold",
          .wait = "a blocking sleep in the unit's own process; every other wait blocks in FUTEX_WAIT (no spinning)",
          .handoff = "FUTEX_WAKE of the peer's process",
          .results = "8-byte slots of the shared region; every exit status checked; a run stops with a limit error "
                     "at pid_max or RLIMIT_NPROC, or when its page tables would fill 7/8 of MemAvailable",
          .calls = "a child process per call forked by a per-run supervisor, at most C alive: its own connection and "
                   "handshake, one blocking call, its value in a shared slot, exit; a failure's message in shared "
                   "memory",
          .serves = "a forking server: the caller accepts and forks a process per connection, which serves its "
                    "requests in turn (a blocking sleep each); SIGTERM to them all at stop",
      },
      .round_trip_floor = "futex_round_trip_cross_cpu",
      .waits = wait_capacity::tasks,
      .serves = wait_capacity::tasks,
  };

  explicit processes_spawn(const model_config& config) : max_alive_(config.max_alive) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    if (job.tasks == 0) return 0;
    run_region run(job.tasks, true);
    run.header().budget = detail::read_memory_budget();
    const pid_t supervisor = fork_or_throw(0);
    if (supervisor == 0) supervise_bulk(job, max_alive_, run);
    const int status = wait_for(supervisor);
    run.throw_if_failed(status, "task");
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) sum += run.results()[task];
    return sum;
  }

  // Every unit is its own process and all are alive at once (they talk to each other, so
  // max_alive does not apply), forked by a supervisor process and started together behind a gate.
  graph_result run_graph(const graph_job& job) {
    if (job.units == 0) return {};
    validate_graph_job(job, "processes/spawn");
    run_region run(job.units, true);
    run.header().budget = detail::read_memory_budget();
    const graph_region graph(job);
    const pid_t caller = ::getpid();
    const pid_t supervisor = fork_or_throw(0);
    if (supervisor == 0) supervise_graph(job, graph, run, caller);
    const int status = wait_for(supervisor);
    run.throw_if_failed(status, "graph unit");
    graph_result result{0, graph.blocked_sends()};
    for (std::uint32_t u = 0; u < job.units; ++u) result.checksum += run.results()[u];
    return result;
  }

  // A process per call, at most in_flight alive (and max_alive, when set), forked by a supervisor
  // as bulk tasks are; each opens its own connection.
  std::uint64_t run_scatter(const scatter_job& job) {
    if (job.tasks == 0) return 0;
    if (job.nodes.empty()) throw std::invalid_argument("processes/spawn: a scatter job needs a node");
    std::uint64_t max_alive = std::max<std::uint32_t>(job.in_flight, 1);
    if (max_alive_ != 0) max_alive = std::min(max_alive, max_alive_);
    run_region run(job.tasks, true);
    run.header().budget = detail::read_memory_budget();
    const pid_t supervisor = fork_or_throw(0);
    if (supervisor == 0) supervise_scatter(job, max_alive, run);
    const int status = wait_for(supervisor);
    run.throw_if_failed(status, "call");
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) sum += run.results()[task];
    return sum;
  }

  // The forking server. Connection processes watch stop_fd themselves between requests; at stop
  // every one gets SIGTERM too (it may be in a handshake) and is reaped.
  void serve(const serve_job& job) {
    const pid_t self = ::getpid();
    std::vector<connection_process> children;
    for (;;) {
      reap_connections(job, children, false);
      wire::unique_fd fd = wire::accept_connection(job);
      if (!fd) {
        if (wire::stop_requested(job.stop_fd)) break;
        continue;
      }
      std::string peer = wire::peer_name(fd.get());
      const pid_t pid = ::fork();
      if (pid == 0) serve_connection(job, fd.get(), peer, self);
      if (pid < 0) {
        const int error = errno;
        if (job.log != nullptr) {
          job.log(job.context, "dropped " + peer + ": no process for it: " +
                                   detail::describe_fork_failure(error, std::to_string(children.size()) +
                                                                            " connection processes alive",
                                                                 detail::read_process_limits()));
        }
        continue;  // the connection closes here; the node serves everyone else
      }
      children.push_back({pid, std::move(peer)});
    }
    end_connections(job, children);
  }

  std::uint64_t run_tree(const tree_job& job) {
    check_tree(job);
    run_region run(tree_units(job), false);
    run.header().budget = detail::read_memory_budget();
    run.header().alive.store(1, std::memory_order_relaxed);  // the root
    const pid_t root = fork_or_throw(0);
    if (root == 0) run_unit(job, run, 0, 0, job.leaves);
    const int status = wait_for(root);
    run.throw_if_failed(status, "tree unit");
    return run.results()[0];
  }

 private:
  static pid_t fork_or_throw(std::uint64_t alive) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      throw limit_error("processes/spawn: " +
                        detail::describe_fork_failure(
                            error, detail::with_thousands(alive) + " processes alive",
                            detail::read_process_limits()));
    }
    return pid;
  }

  static int wait_for(pid_t pid) {
    int status = 0;
    if (reap(pid, status) != pid) {
      throw std::system_error(errno, std::generic_category(), "processes/spawn: waitpid");
    }
    return status;
  }

  // The breadth-first numbering needs a complete tree: leaves a power of fanout.
  static void check_tree(const tree_job& job) {
    std::uint64_t size = job.leaves;
    while (size > 1 && job.fanout >= 2 && size % job.fanout == 0) size /= job.fanout;
    if (job.leaves == 0 || size != 1) {
      throw std::invalid_argument("processes/spawn: tree leaves must be a power of the fanout");
    }
  }

  std::uint64_t max_alive_;
};

CMBENCH_REGISTER_MODEL(processes_spawn);

}  // namespace cmbench
