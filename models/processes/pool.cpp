// processes/pool: W worker processes forked once, the seeds' multiprocessing.Pool.
//
// The workers are forked in the constructor, so everything a later job needs lives in one
// MAP_SHARED arena mapped before the fork (same address in every process, so plain pointers into
// it are valid everywhere): a control block, a bounded MPMC ring of task descriptors (Dmitry
// Vyukov's, sequence number per cell) and the tree's per-node state. A job's parameters are copied
// into the control block; its compute function and context were built before the pool, as the
// contract requires, so the workers' copies of them are the caller's.
//
// Idle workers sleep on a process-shared futex (an eventcount: a sequence word plus a sleeper
// count, so a producer makes no system call while everyone is busy); the caller sleeps on the
// job's completion futex, waking every 100 ms to check that no worker has died.
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "models/model.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench {
namespace {

using detail::cache_line;
using detail::futex_wait;
using detail::futex_wake;

// Descriptors the ring holds at once. A tree job pushes each of its units once, so trees of up
// to this many units (1,111,111 for a million leaves) always fit; a bulk producer waits for room.
// The cells are touched only as they are used: 16 bytes per slot, 64 MiB at most.
constexpr std::uint64_t ring_capacity = std::uint64_t{1} << 22;
constexpr std::uint64_t ring_mask = ring_capacity - 1;

// A descriptor is one word: a bulk task's index, or a tree unit's breadth-first number with its
// level in the top byte.
constexpr int level_shift = 56;
constexpr std::uint64_t unit_mask = (std::uint64_t{1} << level_shift) - 1;
constexpr std::uint32_t max_levels = 64;

// A worker out of work polls the ring this many pause rounds (about 50 us here) before it
// sleeps: a job or tree step arriving meanwhile skips a futex wake-up (measured: a one-task job
// round trip drops from ~6 us to ~1 us). Only when every worker has a CPU of its own:
// oversubscribed, a spinning worker takes the CPU from one with work.
constexpr std::uint32_t idle_spin_rounds = 2000;

// How long the caller sleeps before checking that every worker is still alive.
constexpr timespec health_check_period{0, 100'000'000};
// How long a producer waiting for ring space sleeps at most (a wake-up the workers' unfenced
// check missed costs this, with a full ring of millions of tasks still queued behind it).
constexpr timespec space_wait_period{0, 1'000'000};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

struct cell {
  // The cell's sequence number minus its index: the zero pages of a fresh mapping are then an
  // initialised ring, and the 64 MiB are only touched as far as jobs reach.
  std::atomic<std::uint64_t> sequence;
  std::uint64_t task;
};

// Continuation passing: an internal unit's children add their results into `sum`; the one that
// brings `pending` to zero completes the unit (and maybe its parent), so no task ever waits.
struct tree_node {
  std::atomic<std::uint64_t> sum;
  std::atomic<std::uint32_t> pending;
};

struct tree_shape {
  std::uint32_t fanout = 0;
  std::uint64_t level_first_unit[max_levels] = {};
  std::uint64_t level_unit_size[max_levels] = {};
};

enum class job_kind : std::uint32_t { bulk, tree };

struct control_block {
  // The ring's two ends, each on its own cache line.
  alignas(cache_line) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(cache_line) std::atomic<std::uint64_t> dequeue_pos{0};

  // Eventcount for idle workers: `work_seq` is the futex word, bumped only when someone sleeps.
  alignas(cache_line) std::atomic<std::uint32_t> work_seq{0};
  std::atomic<std::uint32_t> sleepers{0};
  std::atomic<std::uint32_t> shutdown{0};
  std::uint32_t idle_spin = 0;  // cpu_relax() rounds a worker polls the ring before sleeping

  // A bulk producer waiting for room in a full ring.
  alignas(cache_line) std::atomic<std::uint32_t> space_seq{0};
  std::atomic<std::uint32_t> producer_waiting{0};

  // The current job, written by the caller before its first push (the push publishes it).
  alignas(cache_line) job_kind kind = job_kind::bulk;
  bulk_job bulk;
  tree_shape tree;

  // Completion: bulk workers add their share of results and tasks; the last one, or the tree's
  // root, stores the result and wakes the caller.
  alignas(cache_line) std::atomic<std::uint64_t> bulk_sum{0};
  std::atomic<std::uint64_t> bulk_remaining{0};
  alignas(cache_line) std::atomic<std::uint32_t> done{0};
  std::uint64_t result = 0;
};

constexpr std::size_t cells_offset = detail::round_up(sizeof(control_block), 4096);
constexpr std::size_t nodes_offset = cells_offset + ring_capacity * sizeof(cell);
constexpr std::size_t arena_bytes = nodes_offset + ring_capacity * sizeof(tree_node);

// The pointers into the arena, used by the caller and (as forked copies) by every worker.
class shared_pool {
 public:
  explicit shared_pool(const detail::shared_region& arena)
      : control_(new (arena.data()) control_block{}),
        cells_(arena.at<cell>(cells_offset)),
        nodes_(arena.at<tree_node>(nodes_offset)) {}

  control_block& control() const { return *control_; }

  bool try_push(std::uint64_t task) const noexcept {
    std::uint64_t pos = control_->enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & ring_mask];
      const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire) + (pos & ring_mask);
      const auto dif = static_cast<std::int64_t>(sequence - pos);
      if (dif == 0) {
        if (control_->enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.task = task;
          c.sequence.store(pos + 1 - (pos & ring_mask), std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = control_->enqueue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  bool try_pop(std::uint64_t& task) const noexcept {
    std::uint64_t pos = control_->dequeue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & ring_mask];
      const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire) + (pos & ring_mask);
      const auto dif = static_cast<std::int64_t>(sequence - (pos + 1));
      if (dif == 0) {
        if (control_->dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          task = c.task;
          c.sequence.store(pos + ring_capacity - (pos & ring_mask), std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // empty, or the next cell is still being written
      } else {
        pos = control_->dequeue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  bool has_work() const noexcept {
    return control_->enqueue_pos.load(std::memory_order_relaxed) !=
           control_->dequeue_pos.load(std::memory_order_relaxed);
  }

  // After a push: wake one sleeping worker, if any sleeps. The fence pairs with the one in
  // sleep_until_work(): either the worker sees the push, or we see the sleeper. One, not one per
  // task: the woken worker wakes the next if work remains (wake_another), so a burst of tasks does
  // not make 64 oversubscribed workers runnable at once, starving the producer and each other.
  void notify() const noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (control_->sleepers.load(std::memory_order_relaxed) != 0) wake_one();
  }

  // A worker that popped a task: if more are queued and someone sleeps, pass the wake-up on.
  // Unfenced, as it needs no guarantee: notify() already keeps one worker awake per push.
  void wake_another() const noexcept {
    if (control_->sleepers.load(std::memory_order_relaxed) != 0 && has_work()) wake_one();
  }

  bool spin_for_work(std::uint32_t iterations) const noexcept {
    for (std::uint32_t i = 0; i < iterations; ++i) {
      if (has_work()) return true;
      cpu_relax();
    }
    return false;
  }

  void wake_one() const noexcept {
    control_->work_seq.fetch_add(1, std::memory_order_release);
    futex_wake(control_->work_seq, 1);
  }

  void sleep_until_work() const noexcept {
    const std::uint32_t seq = control_->work_seq.load(std::memory_order_acquire);
    control_->sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!has_work() && control_->shutdown.load(std::memory_order_relaxed) == 0) {
      futex_wait(control_->work_seq, seq);  // returns at once if a push bumped work_seq
    }
    control_->sleepers.fetch_sub(1, std::memory_order_relaxed);
  }

  // A worker that popped: let a producer blocked on a full ring go once it is half empty.
  void wake_producer_if_drained() const noexcept {
    if (control_->producer_waiting.load(std::memory_order_relaxed) == 0) return;
    const std::uint64_t queued = control_->enqueue_pos.load(std::memory_order_relaxed) -
                                 control_->dequeue_pos.load(std::memory_order_relaxed);
    if (queued <= ring_capacity / 2 && control_->producer_waiting.exchange(0) != 0) {
      control_->space_seq.fetch_add(1, std::memory_order_release);
      futex_wake(control_->space_seq, 1);
    }
  }

  std::uint64_t run_bulk_task(std::uint64_t task) const noexcept {
    const bulk_job& job = control_->bulk;
    std::uint64_t sum = 0;
    for (std::uint32_t round = 0; round < job.rounds; ++round) {
      if (job.wait.count() > 0) std::this_thread::sleep_for(job.wait);
      sum += job.run_round(task, round);
    }
    return sum;
  }

  // A worker's share of a bulk job, handed in when it runs out of tasks: two shared atomic
  // operations per worker and job instead of two per task.
  void finish_bulk_tasks(std::uint64_t sum, std::uint64_t count) const noexcept {
    control_->bulk_sum.fetch_add(sum, std::memory_order_relaxed);
    if (control_->bulk_remaining.fetch_sub(count, std::memory_order_acq_rel) == count) {
      complete_job(control_->bulk_sum.load(std::memory_order_relaxed));
    }
  }

  void run_tree_unit(std::uint64_t task) const noexcept {
    const tree_shape& tree = control_->tree;
    const auto level = static_cast<std::uint32_t>(task >> level_shift);
    const std::uint64_t unit = task & unit_mask;
    const std::uint64_t size = tree.level_unit_size[level];
    if (size == 1) {
      complete_unit(unit, unit - tree.level_first_unit[level]);  // a leaf returns its index
      return;
    }
    tree_node& node = nodes_[unit];
    node.sum.store(0, std::memory_order_relaxed);
    node.pending.store(tree.fanout, std::memory_order_relaxed);  // published by the pushes
    const std::uint64_t first_child =
        (std::uint64_t{level + 1} << level_shift) | (unit * tree.fanout + 1);
    for (std::uint32_t c = 0; c < tree.fanout; ++c) {
      // Cannot spin for long: the caller admits only trees that fit in the ring whole.
      while (!try_push(first_child + c)) cpu_relax();
    }
    notify();
  }

  void complete_job(std::uint64_t result) const noexcept {
    control_->result = result;
    control_->done.store(1, std::memory_order_release);
    futex_wake(control_->done, 1);
  }

 private:
  void complete_unit(std::uint64_t unit, std::uint64_t value) const noexcept {
    const std::uint32_t fanout = control_->tree.fanout;
    while (unit != 0) {
      unit = (unit - 1) / fanout;
      tree_node& parent = nodes_[unit];
      parent.sum.fetch_add(value, std::memory_order_relaxed);
      // acq_rel: the last child sees every sibling's addition.
      if (parent.pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      value = parent.sum.load(std::memory_order_relaxed);
    }
    complete_job(value);
  }

  control_block* control_;
  cell* cells_;
  tree_node* nodes_;
};

[[noreturn]] void worker_main(const shared_pool& pool) noexcept {
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
  worker_main(pool);
}

}  // namespace

class processes_pool {
 public:
  static constexpr model_info info{
      "processes", "pool", "W worker processes forked once, the seeds' multiprocessing.Pool",
      "W pre-forked worker processes (PR_SET_PDEATHSIG); tasks as 8-byte descriptors through a "
      "shared-memory bounded MPMC ring (4M slots); bulk results summed per worker, tree units "
      "completed by their last child (pending count + partial sum per node in shared memory); "
      "idle workers and the waiting caller sleep on process-shared futexes; waits are blocking "
      "sleeps in the workers"};

  explicit processes_pool(const model_config& config)
      : arena_(arena_bytes, false), pool_(arena_), owner_(::getpid()) {
    const unsigned count = std::max(config.workers, 1u);
    pool_.control().idle_spin = count <= std::thread::hardware_concurrency() ? idle_spin_rounds : 0;
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

  std::uint64_t run_tree(const tree_job& job) {
    check_usable();
    control_block& control = pool_.control();
    control.kind = job_kind::tree;
    control.tree = shape_of(job);
    control.done.store(0, std::memory_order_relaxed);
    while (!pool_.try_push(0)) wait_for_space();  // the root: unit 0, level 0
    pool_.notify();
    return wait_until_done();
  }

 private:
  // Level sizes and first unit numbers, so a one-word descriptor gives a unit's leaf range.
  static tree_shape shape_of(const tree_job& job) {
    tree_shape shape;
    shape.fanout = job.fanout;
    std::uint64_t first_unit = 0;
    std::uint64_t units_on_level = 1;
    std::uint64_t size = job.leaves;
    for (std::uint32_t level = 0;; ++level) {
      if (level == max_levels || job.leaves == 0) {
        throw std::invalid_argument("processes/pool: tree leaves must be a power of the fanout");
      }
      shape.level_first_unit[level] = first_unit;
      shape.level_unit_size[level] = size;
      if (size == 1) break;
      if (job.fanout < 2 || size % job.fanout != 0) {
        throw std::invalid_argument("processes/pool: tree leaves must be a power of the fanout");
      }
      first_unit += units_on_level;
      units_on_level *= job.fanout;
      size /= job.fanout;
    }
    const std::uint64_t units = tree_units(job);
    if (units > ring_capacity) {
      throw limit_error("processes/pool: a tree of " + detail::with_thousands(units) +
                        " units does not fit the shared task ring (" +
                        detail::with_thousands(ring_capacity) + " descriptors)");
    }
    return shape;
  }

  std::uint64_t wait_until_done() {
    control_block& control = pool_.control();
    while (control.done.load(std::memory_order_acquire) == 0) {
      if (futex_wait(control.done, 0, &health_check_period) == ETIMEDOUT) check_workers();
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
    control.work_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(control.work_seq, INT_MAX);
    for (pid_t& pid : workers_) {
      int status = 0;
      if (pid > 0) detail::reap(pid, status);
      pid = 0;
    }
  }

  detail::shared_region arena_;
  shared_pool pool_;
  pid_t owner_;
  std::vector<pid_t> workers_;
  std::string broken_;  // why the pool can no longer run jobs
  std::uint64_t space_timeouts_ = 0;
};

CMBENCH_REGISTER_MODEL(processes_pool);

}  // namespace cmbench
