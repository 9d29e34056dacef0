// processes/pool: W worker processes forked once, the seeds' multiprocessing.Pool.
//
// The workers are forked in the constructor, before any job is known, so what every job needs
// lives in one MAP_SHARED arena mapped before the fork (same address in every process, so plain
// pointers into it are valid everywhere): a control block and a bounded MPMC ring of task
// descriptors (Dmitry Vyukov's, sequence number per cell; 64 MiB of address space, touched only
// as far as jobs reach). A job's parameters are copied into the control block; its compute
// function and context were built before the pool, as the contract requires, so the workers'
// copies of them are the caller's.
//
// What only some jobs need, and in a size only the job knows (a tree's per-node state, a graph's
// units, channels and mutexes), lives in a job area: a memfd created before the fork, so every
// worker holds it. For each tree or graph job the caller sizes the file to what that job needs
// (after checking it against the memory budget and RLIMIT_AS: models/memory_limits.hpp), and a
// worker that pops the job's first task maps it, unless it already maps that much from an earlier
// job (its own address, so the area is addressed by offsets, and futexes in it are keyed by the
// file's pages, which all processes share). After the job the caller truncates the file to zero:
// its pages go back, and the next job starts from zero pages, which is its initial state. So the
// pool maps what the job needs, not a fixed reservation (it used to reserve 2 GiB up front, which
// failed every job under a modest `ulimit -v`). A worker that cannot map the area exits with a
// code of its own; the caller reports it as the limit it is, naming RLIMIT_AS.
//
// Idle workers sleep on a process-shared futex (an eventcount: a sequence word plus a sleeper
// count, so a producer makes no system call while everyone is busy); the caller sleeps on the
// job's completion futex, waking every 100 ms to check that no worker has died.
//
// Graph units are parked actors, so any number of them runs on W workers: a unit's whole state
// (its unit_state, the operation it is parked on, its message buffer) lives in the job area. A
// runnable unit is its index pushed on the ring; the worker that pops it runs its steps until it
// has to wait, and then drops it: a unit waiting on a channel is remembered in the channel's one
// parked-sender or parked-receiver slot (decided under the channel's futex lock, so no wake-up is
// lost), a unit at the barrier only by the barrier's count. Whoever changes the channel, or
// arrives last, pushes the parked units back. See run_graph_units() for the hand-off.
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench {
namespace {

using detail::cache_line;
using detail::cpu_relax;
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

// The exit code of a worker that could not map a job's area (errno in control_block::area_error).
constexpr int area_map_failed_exit = 86;

// How long the caller sleeps before checking that every worker is still alive.
constexpr timespec health_check_period{0, 100'000'000};
// How long a producer waiting for ring space sleeps at most (a wake-up the workers' unfenced
// check missed costs this, with a full ring of millions of tasks still queued behind it).
constexpr timespec space_wait_period{0, 1'000'000};

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
  tree_job job;  // a copy: the caller's job object is not in shared memory
  std::uint32_t fanout = 0;
  std::uint64_t internal_units = 0;  // units above the leaves: the tree_nodes in the job area
  std::uint64_t level_first_unit[max_levels] = {};
  std::uint64_t level_unit_size[max_levels] = {};
};

// A graph unit in the job area, followed by its message buffer (message_bytes). All zero is a
// unit not yet started: the area is zero at the start of every job (fresh pages: the caller
// truncates the file after every job), so the caller writes nothing per unit.
struct graph_unit {
  unit_state state;
  std::uint32_t pending_target;  // the operation it parked on, retried when it is run again
  unit_op pending_op;
  std::uint8_t started;
};
static_assert(sizeof(graph_unit) == 56 && alignof(graph_unit) == 8);

// A channel: its lock, ring indices and the one unit of each side that may wait on it (a channel
// has one sender and one receiver), stored as unit + 1 so zero means nobody; then its slots.
struct graph_channel {
  detail::futex_mutex lock;
  std::uint32_t head;
  std::uint32_t size;
  std::uint32_t parked_sender;
  std::uint32_t parked_receiver;
};
constexpr std::size_t channel_header_bytes = detail::round_up(sizeof(graph_channel), 8);

struct alignas(cache_line) graph_mutex {
  detail::futex_mutex mutex;
};

// Where a graph job's pieces are in the job area, computed by the caller per job.
struct graph_shape {
  graph_job job;
  std::size_t unit_stride = 0;  // sizeof(graph_unit) + message_bytes
  std::size_t channels_offset = 0;
  std::size_t channel_stride = 0;  // whole cache lines, so two channels never share one
  std::size_t mutexes_offset = 0;
  std::size_t used_bytes = 0;  // rounded up to whole pages
};

enum class job_kind : std::uint32_t { bulk, tree, graph };

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
  graph_shape graph;
  std::size_t area_bytes = 0;  // the job area's size for this job (tree and graph jobs)
  std::atomic<int> area_error{0};  // errno of a worker's failed mmap of the job area

  // The graph's barrier count, and its sends that found their channel full.
  alignas(cache_line) std::atomic<std::uint32_t> graph_arrived{0};
  alignas(cache_line) std::atomic<std::uint64_t> graph_blocked_sends{0};

  // Completion: bulk workers (and graph workers, per finished unit) add their share of results
  // and tasks; the last one, or the tree's root, stores the result and wakes the caller.
  alignas(cache_line) std::atomic<std::uint64_t> bulk_sum{0};
  std::atomic<std::uint64_t> bulk_remaining{0};
  alignas(cache_line) std::atomic<std::uint32_t> done{0};
  std::uint64_t result = 0;
};

constexpr std::size_t cells_offset = detail::round_up(sizeof(control_block), 4096);
constexpr std::size_t arena_bytes = cells_offset + ring_capacity * sizeof(cell);

// The pointers into the arena, used by the caller and (as forked copies) by every worker, and the
// job area's file with this process's own mapping of it (workers only: the caller never maps it).
class shared_pool {
 public:
  shared_pool(const detail::shared_region& arena, int area_fd)
      : control_(new (arena.data()) control_block{}),
        cells_(arena.at<cell>(cells_offset)),
        area_fd_(area_fd) {}

  control_block& control() const { return *control_; }

  // In a worker: maps the job area as far as the current job needs, unless an earlier job's
  // mapping already covers it. False (errno set) if the mapping failed. Async-signal-safe.
  bool map_job_area() noexcept {
    const std::size_t bytes = control_->area_bytes;
    if (bytes <= area_mapped_) return true;
    if (area_ != nullptr) ::munmap(area_, area_mapped_);
    area_ = nullptr;
    area_mapped_ = 0;
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, area_fd_, 0);
    if (at == MAP_FAILED) return false;
    area_ = static_cast<std::byte*>(at);
    area_mapped_ = bytes;
    return true;
  }

  bool all_asleep(std::uint32_t workers) const noexcept {
    return control_->sleepers.load(std::memory_order_seq_cst) == workers;
  }

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
      if (job.wait.count() > 0) {
        job.begin_wait(task, round);
        std::this_thread::sleep_for(job.wait);
      }
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
      complete_unit(unit, tree.job.leaf_value(unit - tree.level_first_unit[level]));
      return;
    }
    tree_node& node = nodes()[unit];
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

  // Runs graph unit `u` until it parks or finishes. A unit it readies goes on the ring at once,
  // as any task does, for whichever worker pops it first (multiprocessing.Pool has no "run the
  // woken task next on this worker" slot, so neither does this pool).
  void run_graph_units(std::uint32_t u, std::uint64_t& sum, std::uint64_t& finished) const noexcept {
    run_graph_unit(u, sum, finished);
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
      tree_node& parent = nodes()[unit];
      parent.sum.fetch_add(value, std::memory_order_relaxed);
      // acq_rel: the last child sees every sibling's addition.
      if (parent.pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      value = parent.sum.load(std::memory_order_relaxed);
    }
    complete_job(value);
  }

  graph_unit& unit_at(std::uint32_t u) const noexcept {
    return *reinterpret_cast<graph_unit*>(area_ + std::size_t{u} * control_->graph.unit_stride);
  }
  graph_channel& channel_at(std::uint32_t c) const noexcept {
    const graph_shape& g = control_->graph;
    return *reinterpret_cast<graph_channel*>(area_ + g.channels_offset + c * g.channel_stride);
  }
  std::byte* slot_of(graph_channel& c, std::uint32_t i) const noexcept {
    return reinterpret_cast<std::byte*>(&c) + channel_header_bytes +
           std::size_t{i} * control_->graph.job.message_bytes;
  }
  detail::futex_mutex& mutex_at(std::uint32_t m) const noexcept {
    return reinterpret_cast<graph_mutex*>(area_ + control_->graph.mutexes_offset)[m].mutex;
  }

  // Never fails for long: a unit is on the ring at most once and a job has at most
  // ring_capacity units; a full answer only means a popper between its claim and its release.
  void push_unit(std::uint32_t u) const noexcept {
    while (!try_push(u)) ::sched_yield();
  }

  void run_graph_unit(std::uint32_t u, std::uint64_t& sum, std::uint64_t& finished) const noexcept {
    const graph_job& job = control_->graph.job;
    graph_unit& r = unit_at(u);
    std::byte* const message = reinterpret_cast<std::byte*>(&r) + sizeof(graph_unit);
    // The unit's state is only ever read here: a parked unit's worker has dropped it.
    auto park = [&r](unit_action action) {
      r.pending_op = action.op;
      r.pending_target = action.target;
    };

    unit_action action;
    bool retry = false;  // the operation it parked on, run again after a wake-up
    if (r.started != 0) {
      action = {r.pending_op, r.pending_target};
      retry = true;
    } else {
      r.started = 1;
      r.state.unit = u;
      action = job.next(r.state, message);
    }

    for (;;) {
      std::uint32_t woke = 0;  // unit + 1 this operation made runnable
      switch (action.op) {
        case unit_op::send: {
          graph_channel& c = channel_at(action.target);
          c.lock.lock();
          if (c.size == job.capacity) {
            park(action);
            c.parked_sender = u + 1;
            c.lock.unlock();
            if (!retry) control_->graph_blocked_sends.fetch_add(1, std::memory_order_relaxed);
            return;
          }
          std::uint32_t tail = c.head + c.size;
          if (tail >= job.capacity) tail -= job.capacity;
          std::memcpy(slot_of(c, tail), message, job.message_bytes);
          ++c.size;
          woke = std::exchange(c.parked_receiver, 0);
          c.lock.unlock();
          break;
        }
        case unit_op::receive: {
          graph_channel& c = channel_at(action.target);
          c.lock.lock();
          if (c.size == 0) {
            park(action);
            c.parked_receiver = u + 1;
            c.lock.unlock();
            return;
          }
          std::memcpy(message, slot_of(c, c.head), job.message_bytes);
          if (++c.head == job.capacity) c.head = 0;
          --c.size;
          woke = std::exchange(c.parked_sender, 0);
          c.lock.unlock();
          break;
        }
        case unit_op::lock:
          mutex_at(action.target).lock();
          break;
        case unit_op::unlock:
          mutex_at(action.target).unlock();
          break;
        case unit_op::arrive:
          if (!retry) {
            // Every other unit has arrived once the count reaches `units`, so the count is the
            // barrier's whole waiting list: the last arriver requeues every unit but itself.
            park(action);
            if (control_->graph_arrived.fetch_add(1, std::memory_order_acq_rel) + 1 < job.units) {
              return;
            }
            control_->graph_arrived.store(0, std::memory_order_relaxed);  // the next round's
            if (job.hold.count() > 0) std::this_thread::sleep_for(job.hold);
            for (std::uint32_t v = 0; v < job.units; ++v) {
              if (v == u) continue;
              push_unit(v);
              if ((v & 63) == 0) notify();
            }
            notify();
          }
          break;
        case unit_op::finish:
          sum += r.state.result;
          ++finished;
          return;
      }
      // The operation went through and the unit goes on; a unit it readied is queued for any worker.
      if (woke != 0) {
        push_unit(woke - 1);
        notify();
      }
      retry = false;
      action = job.next(r.state, message);
    }
  }

  // A tree's internal units, by breadth-first number (they come before the leaves).
  tree_node* nodes() const noexcept { return reinterpret_cast<tree_node*>(area_); }

  control_block* control_;
  cell* cells_;
  int area_fd_;
  std::byte* area_ = nullptr;  // this process's mapping of the job area
  std::size_t area_mapped_ = 0;
};

// The address range of a MAP_SHARED mapping of this process, as /proc/self/maps shows it.
struct shared_mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
};

std::vector<shared_mapping> read_shared_mappings() {
  std::vector<shared_mapping> mappings;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // "7f00-7f80 rw-s 00000000 00:01 1234   /dev/zero (deleted)"
    std::istringstream fields(line);
    std::string range, perms;
    shared_mapping m;
    if (!(fields >> range >> perms)) continue;
    if (perms.size() < 4 || perms[3] != 's') continue;
    const std::size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    mappings.push_back(std::move(m));
  }
  return mappings;
}

[[noreturn]] void worker_main(shared_pool& pool) noexcept {
  control_block& control = pool.control();
  std::uint64_t sum = 0;    // this worker's share of the current bulk or graph job
  std::uint64_t count = 0;  // tasks or finished graph units behind `sum`
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
        pool.run_graph_units(static_cast<std::uint32_t>(task), sum, count);  // finished units
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
      .description = "W worker processes forked once, the seeds' multiprocessing.Pool",
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
          .barrier = "an arrival count in shared memory; the last arriver sleeps the hold, then requeues every unit",
          .wait = "a blocking sleep in the worker, so at most W waits at once; idle workers and the waiting caller "
                  "sleep on process-shared futexes (an idle worker polls the ring ~50 us first, only when every "
                  "worker has a CPU)",
          .handoff = "the unit that changes a channel pushes its parked peer's descriptor on the shared ring at once; "
                     "any worker may pop it (no run-next slot)",
          .results = "bulk sums per worker; tree and graph sums in the shared job area",
      },
      .round_trip_floor = "process_pool_handoff_round_trip",
      .waits = wait_capacity::workers,
  };

  explicit processes_pool(const model_config& config)
      : arena_(map_arena()), pool_(arena_, area_.fd()), owner_(::getpid()) {
    const unsigned count = std::max(config.workers, 1u);
    inherited_ = read_shared_mappings();
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
    control.graph = shape_of(job);
    size_job_area(control.graph.used_bytes,
                  "a graph of " + detail::with_thousands(job.units) + " units, " +
                      detail::with_thousands(job.channels) + " channels and " +
                      detail::with_thousands(job.mutexes) + " mutexes (unit state, messages, channel slots)");
    control.graph_arrived.store(0, std::memory_order_relaxed);
    control.graph_blocked_sends.store(0, std::memory_order_relaxed);
    control.bulk_sum.store(0, std::memory_order_relaxed);
    control.bulk_remaining.store(job.units, std::memory_order_relaxed);
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
    result.blocked_sends = control.graph_blocked_sends.load(std::memory_order_relaxed);
    release_job_area();
    return result;
  }

  std::uint64_t run_tree(const tree_job& job) {
    check_usable();
    control_block& control = pool_.control();
    control.kind = job_kind::tree;
    control.tree = shape_of(job);
    size_job_area(control.tree.internal_units * sizeof(tree_node),
                  "a tree of " + detail::with_thousands(tree_units(job)) + " units (" +
                      detail::with_thousands(control.tree.internal_units) + " with children)");
    control.done.store(0, std::memory_order_relaxed);
    while (!pool_.try_push(0)) wait_for_space();  // the root: unit 0, level 0
    pool_.notify();
    const std::uint64_t result = wait_until_done();
    release_job_area();
    return result;
  }

 private:
  // Level sizes and first unit numbers, so a one-word descriptor gives a unit's leaf range.
  static tree_shape shape_of(const tree_job& job) {
    tree_shape shape;
    shape.job = job;
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
      if (size == 1) {
        shape.internal_units = first_unit;  // numbered breadth-first: all before the leaves
        break;
      }
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

  // The workers see the job's context only if it lies in a MAP_SHARED mapping that existed when
  // they were forked: memory mapped later does not exist in them at all, and private memory is
  // their own copy. Without this check such a job would crash a worker or silently lose writes.
  // The mappings were read at fork time, so the check inside the measured region reads no file.
  void check_context_is_shared(const void* context) const {
    if (context == nullptr) return;
    const auto at = reinterpret_cast<std::uintptr_t>(context);
    for (const shared_mapping& m : inherited_) {
      if (at >= m.start && at < m.end) return;
    }
    throw std::invalid_argument(
        "processes/pool: the graph job's context is not in shared memory the worker processes "
        "inherited: it must be mapped MAP_SHARED before the model is constructed (the workers "
        "are forked then; see models/model.hpp)");
  }

  // Where a graph job's units, channels and mutexes go in the job area.
  static graph_shape shape_of(const graph_job& job) {
    if (job.step == nullptr || job.capacity == 0 || job.message_bytes < 16 ||
        job.message_bytes % 8 != 0) {
      throw std::invalid_argument(
          "processes/pool: a graph job needs a step, capacity >= 1 and message_bytes >= 16, a "
          "multiple of 8");
    }
    if (job.units > ring_capacity) {
      throw limit_error("processes/pool: a graph of " + detail::with_thousands(job.units) +
                        " units does not fit the shared task ring (" +
                        detail::with_thousands(ring_capacity) +
                        " descriptors, sized before the workers were forked)");
    }
    graph_shape shape;
    shape.job = job;
    shape.unit_stride = sizeof(graph_unit) + job.message_bytes;
    // 64-bit arithmetic throughout: 2^32 units or channels of 2^32 slots cannot wrap it.
    const std::uint64_t unit_bytes = std::uint64_t{job.units} * shape.unit_stride;
    shape.channel_stride = detail::round_up(
        channel_header_bytes + std::uint64_t{job.capacity} * job.message_bytes, cache_line);
    shape.channels_offset = detail::round_up(unit_bytes, cache_line);
    const std::uint64_t channel_bytes = std::uint64_t{job.channels} * shape.channel_stride;
    shape.mutexes_offset = shape.channels_offset + channel_bytes;
    const std::uint64_t total =
        shape.mutexes_offset + std::uint64_t{job.mutexes} * sizeof(graph_mutex);
    shape.used_bytes = detail::round_up(total, 4096);
    return shape;
  }

  // The fixed arena (control block and ring), mapped before the fork; a failure names its limit.
  static detail::shared_region map_arena() {
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
      const std::uint64_t pushed = control.enqueue_pos.load(std::memory_order_seq_cst);
      const auto workers = static_cast<std::uint32_t>(workers_.size());
      if (!pool_.all_asleep(workers) || pool_.has_work() ||
          control.done.load(std::memory_order_acquire) != 0) {
        idle_at = UINT64_MAX;
      } else if (idle_at != pushed) {
        idle_at = pushed;
      } else {
        throw std::logic_error(
            "processes/pool: graph job deadlocked: every worker is idle, " +
            detail::with_thousands(control.bulk_remaining.load()) + " units wait forever");
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
    control.work_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(control.work_seq, INT_MAX);
    for (pid_t& pid : workers_) {
      int status = 0;
      if (pid > 0) detail::reap(pid, status);
      pid = 0;
    }
  }

  // The job area's file: made before the fork, so every worker holds it.
  class job_area_file {
   public:
    job_area_file() : fd_(::memfd_create("cmbench-pool-job-area", MFD_CLOEXEC)) {
      if (fd_ >= 0) return;
      const int error = errno;
      if (error == EMFILE || error == ENFILE) {
        rlimit files{};
        ::getrlimit(RLIMIT_NOFILE, &files);
        throw limit_error(std::string("processes/pool: ") +
                          (error == EMFILE ? "RLIMIT_NOFILE" : "fs.file-max") +
                          ": cannot open the shared job area (memfd_create: " + std::strerror(error) +
                          "; RLIMIT_NOFILE=" +
                          (files.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                                           : std::to_string(files.rlim_cur)) +
                          ")");
      }
      throw std::system_error(error, std::generic_category(), "processes/pool: memfd_create");
    }
    ~job_area_file() { ::close(fd_); }
    job_area_file(const job_area_file&) = delete;
    job_area_file& operator=(const job_area_file&) = delete;
    int fd() const { return fd_; }

   private:
    int fd_;
  };

  job_area_file area_;
  detail::shared_region arena_;
  shared_pool pool_;
  pid_t owner_;
  std::vector<pid_t> workers_;
  std::vector<shared_mapping> inherited_;  // the caller's shared mappings at fork time
  std::string broken_;  // why the pool can no longer run jobs
  std::uint64_t space_timeouts_ = 0;
  std::size_t area_checked_bytes_ = 0;  // the largest job area checked against the memory limits
};

CMBENCH_REGISTER_MODEL(processes_pool);

}  // namespace cmbench
