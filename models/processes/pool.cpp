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
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
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
      if (control.kind == job_kind::graph) {
        pool.run_graph_unit(static_cast<std::uint32_t>(task));
      } else {
        pool.run_tree_unit(task);
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
      },
      .round_trip_floor = "process_pool_handoff_round_trip",
      .waits = wait_capacity::workers,
  };

  explicit processes_pool(const model_config& config)
      : arena_(map_arena()), pool_(arena_.data(), area_.fd()), owner_(::getpid()) {
    const unsigned count = std::max(config.workers, 1u);
    inherited_ = detail::read_shared_mappings();
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
    check_context_is_shared(job.context);
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

 private:
  // The workers see the job's context only if it lies in a MAP_SHARED mapping that existed when
  // they were forked: memory mapped later does not exist in them at all, and private memory is
  // their own copy. Without this check such a job would crash a worker or silently lose writes.
  // The mappings were read at fork time, so the check inside the measured region reads no file.
  void check_context_is_shared(const void* context) const {
    if (context == nullptr || detail::in_shared_mapping(inherited_, context)) return;
    throw std::invalid_argument(
        "processes/pool: the graph job's context is not in shared memory the worker processes "
        "inherited: it must be mapped MAP_SHARED before the model is constructed (the workers "
        "are forked then; see models/model.hpp)");
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
  std::string broken_;  // why the pool can no longer run jobs
  std::uint64_t space_timeouts_ = 0;
  std::size_t area_checked_bytes_ = 0;  // the largest job area checked against the memory limits
};

CMBENCH_REGISTER_MODEL(processes_pool);

}  // namespace cmbench
