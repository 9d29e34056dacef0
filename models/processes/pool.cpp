// processes/pool: W worker processes forked once, as Python's multiprocessing.Pool. This file is
// the pool's life cycle: forking the workers, their loop, submitting each kind of job and
// waiting for it, noticing a worker that died, and stopping them. What the processes share is
// in processes/pool_shared.hpp (control block, task ring, eventcount), with one file per job kind
// (pool_tree.hpp, pool_graph.hpp) and the per-job shared area (job_area.hpp).
//
// The workers are forked in the constructor, before any job is known, so what every job needs
// lives in one MAP_SHARED arena mapped before the fork: a control block and a bounded MPMC ring
// of task descriptors (processes/mpmc_ring.hpp; 64 MiB of address space, touched only as far as
// jobs reach). What only some jobs need, in a size only the job knows, lives in the job area,
// sized by the caller per job (after checking it against the memory budget and RLIMIT_AS:
// models/memory_limits.hpp) and truncated to zero after it, so the pool maps what the job needs,
// not a fixed reservation (it used to reserve 2 GiB up front, which failed every job under a
// modest `ulimit -v`). A worker that cannot map the area exits with a code of its own; the
// caller reports it as the limit it is, naming RLIMIT_AS.
//
// The caller sleeps on the job's completion futex, waking every 100 ms to check that no worker
// has died (and, for a graph, that the job has not deadlocked).
//
// Graph units are parked actors (parked/graph_interpreter.hpp), so any number of them runs on W
// workers: a runnable unit is its index on the ring; the worker that pops it runs its steps until
// it has to wait, and then drops it; whoever changes what it waits for pushes it back.
//
// Remote jobs run on the same workers (processes/pool_remote.hpp): a scatter job is min(C, W)
// lanes, each a worker calling one task after another on its own connections; a serve job makes
// every worker an iterative server on the listening socket, which the workers inherited when
// they were forked (so it must be open before the pool is made: serve() checks it).
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/processes/job_area.hpp"
#include "models/processes/maps_reader.hpp"
#include "models/processes/pool_graph.hpp"
#include "models/processes/pool_shared.hpp"
#include "models/processes/pool_tree.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench {
namespace {

using detail::futex_wait;
using detail::futex_wake;
using detail::shm_pool::control_block;
using detail::shm_pool::job_kind;
using detail::shm_pool::shared_pool;
using detail::shm_pool::task_ring;

// A worker out of work polls the ring this many pause rounds (about 50 us here) before it
// sleeps: a job or tree step arriving meanwhile skips a futex wake-up (measured: a one-task job
// round trip drops from ~6 us to ~1 us). Only when every worker has a CPU of its own:
// oversubscribed, a spinning worker takes the CPU from one with work.
constexpr std::uint32_t idle_spin_rounds = 2000;

// The exit code of a worker that could not map a job's area (errno in control_block::area_error).
constexpr int area_map_failed_exit = 86;

// How long the caller sleeps before checking that every worker is still alive.
constexpr timespec health_check_period{0, 100'000'000};
// How long a producer waiting for ring space sleeps at most (a wake-up the workers' unfenced
// check missed costs this, with a full ring of millions of tasks still queued behind it).
constexpr timespec space_wait_period{0, 1'000'000};

[[noreturn]] void worker_main(shared_pool& pool) noexcept {
  control_block& control = pool.control();
  std::uint64_t sum = 0;    // this worker's share of the current bulk job
  std::uint64_t count = 0;  // tasks behind `sum`
  for (;;) {
    std::uint64_t task = 0;
    if (pool.try_pop(task)) {
      pool.wake_producer_if_drained();
      pool.wake_another();
      if (control.kind == job_kind::bulk) {
        sum += pool.run_bulk_task(task);
        ++count;
        continue;
      }
      if (!pool.map_job_area()) {
        // The job cannot run here: say why and go; the caller sees this exit and names the limit.
        control.area_error.store(errno, std::memory_order_relaxed);
        ::_exit(area_map_failed_exit);
      }
      switch (control.kind) {
        case job_kind::graph:
          pool.run_graph_unit(static_cast<std::uint32_t>(task));
          break;
        case job_kind::scatter:
          pool.run_scatter_lane();
          break;
        case job_kind::serve:
          pool.serve_connections(static_cast<std::uint32_t>(task));
          break;
        default:
          pool.run_tree_unit(task);
          break;
      }
      continue;
    }
    if (count > 0) {
      pool.finish_bulk_tasks(sum, count);
      sum = count = 0;
    }
    if (control.shutdown.load(std::memory_order_acquire) != 0) ::_exit(0);
    if (pool.spin_for_work(control.idle_spin)) continue;
    pool.sleep_until_work();
  }
}

// The child side of fork(): only shared memory, futexes, the jobs' compute functions, sleeps and
// _exit(), all safe in the copy of a multi-threaded parent.
[[noreturn]] void worker_entry(const shared_pool& pool, pid_t parent) noexcept {
  // Die with the parent. PR_SET_PDEATHSIG fires when the thread that forked us exits, so the
  // pool must be built on a thread that outlives it (the harness's main thread does).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);  // the parent died before prctl() took effect
  shared_pool own = pool;  // this worker's own mapping of the job area
  worker_main(own);
}

// A descriptor as the workers were forked with it: its number and what it refers to.
struct inherited_descriptor {
  int fd = -1;
  dev_t device = 0;
  ino_t inode = 0;
};

// The caller's open descriptors, read before the workers are forked: each worker holds a copy.
std::vector<inherited_descriptor> read_open_descriptors() {
  std::vector<inherited_descriptor> open;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return open;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    struct stat st {};
    if (fd != ::dirfd(dir) && ::fstat(fd, &st) == 0) open.push_back({fd, st.st_dev, st.st_ino});
  }
  ::closedir(dir);
  return open;
}

}  // namespace

class processes_pool {
 public:
  static constexpr model_info info{
      .family = "processes",
      .variant = "pool",
      .description = "W worker processes forked once, as Python's multiprocessing.Pool",
      .order = 21,
      .mechanism = {
          .summary = "W worker processes forked at setup (PR_SET_PDEATHSIG) pop 8-byte descriptors from one "
                     "shared-memory bounded MPMC ring (4M slots)",
          .unit = "a task: one descriptor; a graph unit: a parked actor (state + message) in a shared-memory job "
                  "area, run by any worker until it must wait; the area is a memfd made before the fork, sized per "
                  "job (checked against 7/8 of MemAvailable and RLIMIT_AS), mapped by each worker as needed and "
                  "truncated to zero after the job",
          .tree = "a unit is one descriptor; the last child to finish completes its parent (a pending count and a "
                  "partial sum per node in the job area)",
          .channel = "a bounded ring in shared memory under a per-channel futex lock, with one parked-sender and one "
                     "parked-receiver slot",
          .mutex = "a futex mutex in shared memory that blocks the worker (a unit never parks holding one)",
          .barrier = "an arrival count in shared memory; the last arriver sleeps the hold, then pushes every other "
                     "unit's descriptor on the shared ring (a wake-up every 64) and goes on itself",
          .wait = "a blocking sleep in the worker, so at most W waits at once; idle workers and the waiting caller "
                  "sleep on process-shared futexes (an idle worker polls the ring ~50 us first, only when every "
                  "worker has a CPU)",
          .handoff = "the unit that changes a channel pushes its parked peer's descriptor on the shared ring at once; "
                     "any worker may pop it (no run-next slot)",
          .results = "bulk sums per worker; tree sums in the job area's nodes; the graph checksum in the shared "
                     "control block, blocked sends counted per channel and summed by the worker that finishes the "
                     "last unit",
          .calls = "min(C, W) lanes on the shared ring; a worker with a lane claims call after call from a shared "
                   "counter, each a blocking call on its own connection to the node (opened at its first call "
                   "there); the first failure's message in the control block",
          .serves = "pre-forked workers on the listening socket they inherited: each polls it, the stop pipe and "
                    "its own connections and serves one request to its end at a time; a worker accepts only while "
                    "it holds no more connections than the least loaded",
      },
      .round_trip_floor = "process_pool_handoff_round_trip",
      .waits = wait_capacity::workers,
      .serves = wait_capacity::workers,
  };

  explicit processes_pool(const model_config& config)
      : arena_(map_arena()), pool_(arena_.data(), area_.fd()), owner_(::getpid()) {
    const unsigned count = std::max(config.workers, 1u);
    inherited_ = detail::read_shared_mappings();
    inherited_fds_ = read_open_descriptors();
    pool_.control().idle_spin = count <= usable_cpu_count() ? idle_spin_rounds : 0;
    workers_.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) worker_entry(pool_, owner_);
      if (pid < 0) {
        const int error = errno;
        const detail::process_limits limits = detail::read_process_limits();
        stop_workers();
        throw limit_error("processes/pool: " +
                          detail::describe_fork_failure(
                              error,
                              std::to_string(i) + " of " + std::to_string(count) +
                                  " workers started",
                              limits));
      }
      workers_.push_back(pid);
    }
  }

  processes_pool(const processes_pool&) = delete;
  processes_pool& operator=(const processes_pool&) = delete;

  ~processes_pool() {
    // A forked copy of the caller (fork() then exit()) must not stop the owner's workers.
    if (::getpid() == owner_) stop_workers();
  }

  std::uint64_t run_bulk(const bulk_job& job) {
    if (job.tasks == 0) return 0;
    check_usable();
    control_block& control = pool_.control();
    control.kind = job_kind::bulk;
    control.bulk = job;  // a copy: the caller's job object is not in shared memory
    control.bulk_sum.store(0, std::memory_order_relaxed);
    control.bulk_remaining.store(job.tasks, std::memory_order_relaxed);
    control.done.store(0, std::memory_order_relaxed);

    // Check for sleepers after the first push, then once per 64 pushes and after the last.
    for (std::uint64_t task = 0; task < job.tasks; ++task) {
      while (!pool_.try_push(task)) wait_for_space();
      if ((task & 63) == 0 || task + 1 == job.tasks) pool_.notify();
    }
    return wait_until_done();
  }

  graph_result run_graph(const graph_job& job) {
    if (job.units == 0) return {};
    check_usable();
    check_shared(job.context, "the graph job's context");
    control_block& control = pool_.control();
    control.kind = job_kind::graph;
    control.graph = detail::shm_pool::shape_graph(job, task_ring::capacity);
    size_job_area(control.graph.used_bytes,
                  "a graph of " + detail::with_thousands(job.units) + " units, " +
                      detail::with_thousands(job.channels) + " channels and " +
                      detail::with_thousands(job.mutexes) + " mutexes (unit state, messages, channel slots)");
    control.graph_counts.reset();
    control.graph_blocked_sends = 0;
    control.done.store(0, std::memory_order_relaxed);

    // Every unit starts runnable, in index order; a worker creates its state on the first run.
    for (std::uint32_t u = 0; u < job.units; ++u) {
      while (!pool_.try_push(u)) wait_for_space();
      if ((u & 63) == 0 || u + 1 == job.units) pool_.notify();
    }
    graph_result result;
    try {
      result.checksum = wait_until_done(true);
    } catch (const std::logic_error&) {
      release_job_area();  // a deadlocked job leaves the pool usable
      throw;
    }
    result.blocked_sends = control.graph_blocked_sends;
    release_job_area();
    return result;
  }

  std::uint64_t run_tree(const tree_job& job) {
    check_usable();
    control_block& control = pool_.control();
    control.kind = job_kind::tree;
    control.tree = detail::shm_pool::shape_tree(job, task_ring::capacity);
    size_job_area(control.tree.internal_units * sizeof(detail::shm_pool::tree_node),
                  "a tree of " + detail::with_thousands(tree_units(job)) + " units (" +
                      detail::with_thousands(control.tree.internal_units) + " with children)");
    control.done.store(0, std::memory_order_relaxed);
    while (!pool_.try_push(detail::shm_pool::tree_root_task)) wait_for_space();
    pool_.notify();
    const std::uint64_t result = wait_until_done();
    release_job_area();
    return result;
  }

  // Lanes of calls on the workers: min(in_flight, workers, tasks) of them, so that many calls are
  // in flight at most.
  std::uint64_t run_scatter(const scatter_job& job) {
    if (job.tasks == 0) return 0;
    if (job.nodes.empty()) throw std::invalid_argument("processes/pool: a scatter job needs a node");
    check_usable();
    check_shared(job.context, "the scatter job's context");
    check_shared(job.counters, "the scatter job's counters");
    control_block& control = pool_.control();
    control.kind = job_kind::scatter;
    control.scatter = detail::shm_pool::shape_scatter(job);
    const std::vector<std::byte> area = detail::shm_pool::encode_scatter_area(job);
    write_job_area(area, 0, "a scatter job's " + std::to_string(job.nodes.size()) + " node addresses and token");
    const auto lanes = static_cast<std::uint32_t>(std::min<std::uint64_t>(
        {std::max<std::uint32_t>(job.in_flight, 1), workers_.size(), job.tasks}));
    control.remote.reset(lanes);
    control.done.store(0, std::memory_order_relaxed);
    for (std::uint32_t lane = 0; lane < lanes; ++lane) {
      while (!pool_.try_push(lane)) wait_for_space();
    }
    pool_.notify();
    const std::uint64_t sum = wait_for_remote_job();
    throw_remote_failure();
    return sum;
  }

  // Every worker serves on the listening socket until stop_fd is readable.
  void serve(const serve_job& job) {
    check_usable();
    check_inherited(job.listen_fd, "listening socket");
    check_inherited(job.stop_fd, "stop descriptor");
    check_shared(job.context, "the serve job's context");
    check_shared(job.counters, "the serve job's counters");
    control_block& control = pool_.control();
    const auto workers = static_cast<std::uint32_t>(workers_.size());
    control.kind = job_kind::serve;
    control.serve = detail::shm_pool::shape_serve(job, workers);
    // The connection counts start at zero: the area was truncated to zero after the last job.
    write_job_area(detail::shm_pool::encode_serve_area(job), control.serve.token_offset,
                   "the serving workers' connection counts and the token");
    control.remote.reset(workers);
    control.done.store(0, std::memory_order_relaxed);
    for (std::uint32_t worker = 0; worker < workers; ++worker) {
      while (!pool_.try_push(worker)) wait_for_space();
    }
    pool_.notify();
    // The workers close their copies of both as they stop: a later serve needs new ones.
    forget_inherited(job.listen_fd);
    forget_inherited(job.stop_fd);
    try {
      while (control.done.load(std::memory_order_acquire) == 0) {
        if (futex_wait(control.done, 0, &health_check_period) == ETIMEDOUT) replace_dead_servers(job);
      }
    } catch (...) {
      release_job_area();
      stop_workers();  // the others must not go on serving
      throw;
    }
    release_job_area();
    throw_remote_failure();
  }

 private:
  // The workers see a job's context (or counters) only if it lies in a MAP_SHARED mapping that
  // existed when they were forked: memory mapped later does not exist in them at all, and private
  // memory is their own copy. Without this check such a job would crash a worker or silently lose
  // writes. The mappings were read at fork time, so the check inside the measured region reads no file.
  void check_shared(const void* address, const char* what) const {
    if (address == nullptr || detail::in_shared_mapping(inherited_, address)) return;
    throw std::invalid_argument(
        "processes/pool: " + std::string(what) +
        " is not in shared memory the worker processes inherited: it must be mapped MAP_SHARED before the model "
        "is constructed (the workers are forked then; see models/model.hpp)");
  }

  // The workers serve on the caller's listening socket and watch its stop descriptor through the
  // copies they inherited at fork: both must have been open then, and be the same files now.
  void check_inherited(int fd, const char* what) const {
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      for (const inherited_descriptor& d : inherited_fds_) {
        if (d.fd == fd && d.device == st.st_dev && d.inode == st.st_ino) return;
      }
    }
    throw std::invalid_argument("processes/pool: the serve job's " + std::string(what) + " (descriptor " +
                                std::to_string(fd) +
                                ") is not one the worker processes inherited: it must be open before the model "
                                "is constructed (the workers are forked then, and each serves on its own copy)");
  }

  void forget_inherited(int fd) {
    std::erase_if(inherited_fds_, [fd](const inherited_descriptor& d) { return d.fd == fd; });
  }

  // A remote job's bytes in the job area (the caller writes the file, it never maps it).
  void write_job_area(const std::vector<std::byte>& bytes, std::size_t offset, const std::string& what) {
    size_job_area(offset + bytes.size(), what);
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pwrite(area_.fd(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = errno;
        release_job_area();
        throw std::system_error(error, std::generic_category(), "processes/pool: writing " + what + " into the job area");
      }
      done += static_cast<std::size_t>(n);
    }
  }

  // A serving worker that died (its connections died with it: their peers see them closed) is
  // logged and replaced, as a pre-forking server does: a new worker forked from the caller (so
  // it holds the listening socket and the stop descriptor too) takes the dead one's index. The
  // node serves on; only the stop ends it.
  void replace_dead_servers(const serve_job& job) {
    const detail::shm_pool::serve_shape& shape = pool_.control().serve;
    for (pid_t& pid : workers_) {
      int status = 0;
      if (pid <= 0 || detail::reap(pid, status, WNOHANG) != pid) continue;
      const pid_t dead = pid;
      pid = 0;
      std::vector<std::int32_t> pids(shape.workers);
      const ssize_t n = ::pread(area_.fd(), pids.data(), pids.size() * sizeof(std::int32_t),
                                static_cast<off_t>(shape.pids_offset));
      const auto slot = std::find(pids.begin(), pids.end(), dead);
      const pid_t fresh = ::fork();
      if (fresh == 0) worker_entry(pool_, owner_);
      const int fork_error = errno;
      if (fresh > 0) pid = fresh;
      if (job.log != nullptr) {
        job.log(job.context, "processes/pool: serving worker process " + std::to_string(dead) + " " +
                                 detail::describe_status(status) + ", its connections with it; " +
                                 (fresh > 0 ? "worker process " + std::to_string(fresh) + " takes its place"
                                            : "no process can take its place: " + std::string(std::strerror(fork_error))));
      }
      // The dead worker's index goes back on the ring for its successor (unless it died before
      // it took one: that one is still there).
      const bool had_index = n == static_cast<ssize_t>(pids.size() * sizeof(std::int32_t)) && slot != pids.end();
      if (fresh > 0 && had_index) {
        while (!pool_.try_push(static_cast<std::uint64_t>(slot - pids.begin()))) wait_for_space();
        pool_.notify();
      } else if (fresh < 0) {
        broken_ = "processes/pool: a serving worker process died and could not be replaced; the pool is unusable";
        if (had_index && pool_.control().remote.running.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          pool_.complete_job(0);
        }
      }
    }
  }

  std::uint64_t wait_for_remote_job() {
    std::uint64_t result = 0;
    try {
      result = wait_until_done();
    } catch (...) {
      release_job_area();
      throw;
    }
    release_job_area();
    return result;
  }

  void throw_remote_failure() const {
    const detail::shm_pool::remote_state& remote = pool_.control().remote;
    if (remote.written.load(std::memory_order_acquire) == 0) return;
    const std::string message = "processes/pool: " + std::string(remote.message);
    if (remote.kind.load(std::memory_order_relaxed) == detail::shm_pool::remote_state::limit) throw limit_error(message);
    throw std::runtime_error(message);
  }

  // The fixed arena (control block and ring), mapped before the fork; a failure names its limit.
  static detail::shared_region map_arena() {
    using detail::shm_pool::arena_bytes;
    try {
      return detail::shared_region(arena_bytes, false);
    } catch (const std::system_error& e) {
      if (e.code().value() == ENOMEM) {
        throw limit_error("processes/pool: RLIMIT_AS: cannot map the " + detail::with_thousands(arena_bytes / 1024) +
                          " KiB shared control block and task ring: " + e.code().message() + " (" +
                          describe_address_space() + ")");
      }
      throw;
    }
  }

  // Sizes the job area for the tree or graph job about to start (before its first push): the
  // workers map it when they pop the job's first task. The memory is checked the first time a
  // job needs more than any before it.
  void size_job_area(std::size_t bytes, const std::string& what) {
    if (bytes > area_checked_bytes_) {
      check_memory_need("processes/pool", what, bytes);
      area_checked_bytes_ = bytes;
    }
    if (::ftruncate(area_.fd(), static_cast<off_t>(bytes)) != 0) {
      const int error = errno;
      throw limit_error("processes/pool: cannot size the shared job area to " + detail::with_thousands(bytes) +
                        " bytes for " + what + ": " + std::strerror(error));
    }
    pool_.control().area_bytes = bytes;
  }

  // Gives the pages a job touched back, so the next job starts from zero pages (its initial
  // state) and an idle pool holds no job memory. The workers keep their mappings (nothing
  // touches them between jobs).
  void release_job_area() noexcept {
    if (::ftruncate(area_.fd(), 0) != 0) broken_ = "processes/pool: cannot clear the shared job area";
  }

  // A graph job deadlocks when its units wait on each other: every worker then sleeps with an
  // empty ring. Seen twice, a health-check period apart with no push in between, it is final.
  std::uint64_t wait_until_done(bool graph = false) {
    control_block& control = pool_.control();
    std::uint64_t idle_at = UINT64_MAX;  // enqueue position when everyone was last seen idle
    while (control.done.load(std::memory_order_acquire) == 0) {
      if (futex_wait(control.done, 0, &health_check_period) != ETIMEDOUT) continue;
      check_workers();
      if (!graph) continue;
      const std::uint64_t pushed = pool_.ring().pushed(std::memory_order_seq_cst);
      const auto workers = static_cast<std::uint32_t>(workers_.size());
      if (!pool_.all_asleep(workers) || pool_.has_work() ||
          control.done.load(std::memory_order_acquire) != 0) {
        idle_at = UINT64_MAX;
      } else if (idle_at != pushed) {
        idle_at = pushed;
      } else {
        throw std::logic_error(
            "processes/pool: graph job deadlocked: every worker is idle, " +
            detail::with_thousands(control.graph.job.units - control.graph_counts.finished.load()) +
            " units wait forever");
      }
    }
    return control.result;
  }

  void wait_for_space() {
    control_block& control = pool_.control();
    const std::uint32_t seq = control.space_seq.load(std::memory_order_acquire);
    control.producer_waiting.store(1, std::memory_order_seq_cst);
    if (futex_wait(control.space_seq, seq, &space_wait_period) == ETIMEDOUT &&
        ++space_timeouts_ % 100 == 0) {
      check_workers();
    }
  }

  void check_usable() const {
    if (!broken_.empty()) throw std::runtime_error(broken_);
  }

  // A worker that died mid-job took its task with it: the job can never finish, so say so.
  void check_workers() {
    for (pid_t& pid : workers_) {
      int status = 0;
      if (pid > 0 && detail::reap(pid, status, WNOHANG) == pid) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == area_map_failed_exit) {
          const int error = pool_.control().area_error.load(std::memory_order_relaxed);
          broken_ = "processes/pool: worker process " + std::to_string(pid) + " could not map the job's " +
                    detail::with_thousands(pool_.control().area_bytes) + "-byte shared area: " +
                    std::strerror(error) + " (" + (error == ENOMEM ? "RLIMIT_AS in the workers; the caller: " : "") +
                    describe_address_space() + "); the pool is unusable";
          pid = 0;
          throw limit_error(broken_);
        }
        broken_ = "processes/pool: worker process " + std::to_string(pid) + " " +
                  detail::describe_status(status) + " during a job; the pool is unusable";
        pid = 0;
        throw std::runtime_error(broken_);
      }
    }
  }

  void stop_workers() noexcept {
    control_block& control = pool_.control();
    if (!broken_.empty()) {
      // The job in flight will never finish: do not wait for the survivors to drain it.
      for (pid_t pid : workers_) {
        if (pid > 0) ::kill(pid, SIGKILL);
      }
    }
    control.shutdown.store(1, std::memory_order_seq_cst);
    control.work.wake_all();
    for (pid_t& pid : workers_) {
      int status = 0;
      if (pid > 0) detail::reap(pid, status);
      pid = 0;
    }
  }

  detail::job_area_file area_;  // first: the arena's pool holds its descriptor
  detail::shared_region arena_;
  shared_pool pool_;
  pid_t owner_;
  std::vector<pid_t> workers_;
  std::vector<detail::shared_mapping> inherited_;  // the caller's shared mappings at fork time
  std::vector<inherited_descriptor> inherited_fds_;  // the caller's descriptors at fork time
  std::string broken_;  // why the pool can no longer run jobs
  std::uint64_t space_timeouts_ = 0;
  std::size_t area_checked_bytes_ = 0;  // the largest job area checked against the memory limits
};

CMBENCH_REGISTER_MODEL(processes_pool);

}  // namespace cmbench
