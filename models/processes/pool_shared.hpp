// What processes/pool's caller and its worker processes share, and the workers' side of it: a
// control block and a task ring in one MAP_SHARED arena mapped before the fork (same address in
// every process, so plain pointers into it are valid everywhere), and the per-job area
// (processes/job_area.hpp), which each worker maps itself.
//
// A task is one word on the ring: a bulk task's index, a tree unit (processes/pool_tree.hpp), a
// runnable graph unit's index (processes/pool_graph.hpp), a scatter lane or a serving worker's
// index (processes/pool_remote.hpp). A job's parameters are copied into
// the control block; its compute function and context were built before the pool, as the
// contract requires, so the workers' copies of them are the caller's.
//
// Idle workers sleep on an eventcount (processes/eventcount.hpp), so a producer makes no system
// call while every worker is busy; a bulk producer facing a full ring sleeps on its own futex
// word until a worker has drained half of it.
//
// Everything a worker calls here is plain code, atomics, futexes and the job's own functions:
// safe in the forked copy of a multi-threaded parent.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "models/bulk_task.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/processes/eventcount.hpp"
#include "models/processes/job_area.hpp"
#include "models/processes/mpmc_ring.hpp"
#include "models/processes/pool_graph.hpp"
#include "models/processes/pool_remote.hpp"
#include "models/processes/pool_tree.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench::detail::shm_pool {

// Tasks the ring holds at once. A tree job pushes each of its units once, so trees of up to this
// many units (1,111,111 for a million leaves) always fit; a bulk producer waits for room. The
// cells are touched only as they are used: 16 bytes per slot, 64 MiB at most.
using task_ring = mpmc_ring<std::uint64_t{1} << 22>;

enum class job_kind : std::uint32_t { bulk, tree, graph, scatter, serve };

struct control_block {
  task_ring::ends queue;

  // Idle workers sleep here until there is work or shutdown.
  alignas(cache_line) eventcount work;
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
  scatter_shape scatter;
  serve_shape serve;
  std::size_t area_bytes = 0;      // the job area's size for this job (tree and graph jobs)
  std::atomic<int> area_error{0};  // errno of a worker's failed mmap of the job area

  // A graph job's barrier, finished units and checksum; its blocked sends, summed by the worker
  // that finishes the last unit before it completes the job.
  parked_counters graph_counts;
  std::uint64_t graph_blocked_sends = 0;

  // A scatter or serve job's progress and first failure.
  remote_state remote;

  // Bulk completion: workers add their share of results and tasks; the last one completes.
  alignas(cache_line) std::atomic<std::uint64_t> bulk_sum{0};
  std::atomic<std::uint64_t> bulk_remaining{0};
  // Completion of any job: the result, then `done`, the futex word the caller sleeps on.
  alignas(cache_line) std::atomic<std::uint32_t> done{0};
  std::uint64_t result = 0;
};

constexpr std::size_t cells_offset = round_up(sizeof(control_block), 4096);
constexpr std::size_t arena_bytes = cells_offset + task_ring::cells_bytes;

// The pool as a process sees it: the arena's control block and ring, and (in a worker) its own
// mapping of the job area. The caller uses it to submit; each worker has its own copy.
class shared_pool {
 public:
  // `arena`: arena_bytes of zeroed shared memory.
  shared_pool(void* arena, int area_fd)
      : control_(new (arena) control_block{}),
        ring_(control_->queue, reinterpret_cast<task_ring::cell*>(static_cast<std::byte*>(arena) + cells_offset)),
        area_(area_fd) {}

  control_block& control() const noexcept { return *control_; }
  const task_ring& ring() const noexcept { return ring_; }

  // ---- submitting (caller and workers) ----

  bool try_push(std::uint64_t task) const noexcept { return ring_.try_push(task); }
  bool has_work() const noexcept { return !ring_.empty(); }

  // After a push: wake one sleeping worker, if any sleeps. One, not one per task: the woken
  // worker wakes the next if work remains (wake_another), so a burst of tasks does not make 64
  // oversubscribed workers runnable at once, starving the producer and each other.
  void notify() const noexcept { control_->work.notify_one(); }

  // Never fails for long: a graph unit is on the ring at most once and a job has at most
  // task_ring::capacity units; a full answer only means a popper between its claim and its release.
  void push_unit(std::uint32_t u) const noexcept {
    while (!try_push(u)) ::sched_yield();
  }

  void complete_job(std::uint64_t result) const noexcept {
    control_->result = result;
    control_->done.store(1, std::memory_order_release);
    futex_wake(control_->done, 1);
  }

  bool all_asleep(std::uint32_t workers) const noexcept {
    return control_->work.sleepers(std::memory_order_seq_cst) == workers;
  }

  // ---- a worker's side ----

  // Maps the job area as far as the current job needs. False (errno set) if it cannot.
  bool map_job_area() noexcept { return area_.cover(control_->area_bytes); }

  bool try_pop(std::uint64_t& task) const noexcept { return ring_.try_pop(task); }

  // A worker that popped a task: if more are queued and someone sleeps, pass the wake-up on.
  // Unfenced, as it needs no guarantee: notify() already keeps one worker awake per push.
  void wake_another() const noexcept {
    if (control_->work.sleepers() != 0 && has_work()) control_->work.wake_one();
  }

  bool spin_for_work(std::uint32_t iterations) const noexcept {
    for (std::uint32_t i = 0; i < iterations; ++i) {
      if (has_work()) return true;
      cpu_relax();
    }
    return false;
  }

  void sleep_until_work() const noexcept {
    control_->work.sleep_unless(
        [this] { return has_work() || control_->shutdown.load(std::memory_order_relaxed) != 0; });
  }

  // A worker that popped: let a producer blocked on a full ring go once it is half empty.
  void wake_producer_if_drained() const noexcept {
    if (control_->producer_waiting.load(std::memory_order_relaxed) == 0) return;
    if (ring_.size() <= task_ring::capacity / 2 && control_->producer_waiting.exchange(0) != 0) {
      control_->space_seq.fetch_add(1, std::memory_order_release);
      futex_wake(control_->space_seq, 1);
    }
  }

  std::uint64_t run_bulk_task(std::uint64_t task) const noexcept { return run_blocking_task(control_->bulk, task); }

  // A worker's share of a bulk job, handed in when it runs out of tasks: two shared atomic
  // operations per worker and job instead of two per task.
  void finish_bulk_tasks(std::uint64_t sum, std::uint64_t count) const noexcept {
    control_->bulk_sum.fetch_add(sum, std::memory_order_relaxed);
    if (control_->bulk_remaining.fetch_sub(count, std::memory_order_acq_rel) == count) {
      complete_job(control_->bulk_sum.load(std::memory_order_relaxed));
    }
  }

  void run_tree_unit(std::uint64_t task) const noexcept {
    shm_pool::run_tree_unit(*this, control_->tree, reinterpret_cast<tree_node*>(area_.base()), task);
  }

  // Runs graph unit u until it parks or finishes.
  void run_graph_unit(std::uint32_t u) noexcept {
    graph_area area = graph();
    graph_interpreter<shared_pool, graph_area>(area, *this).run(u);
  }

  // A scatter lane: calls until none is left; the last lane to end completes the job.
  void run_scatter_lane() const noexcept {
    remote_state& remote = control_->remote;
    const std::uint64_t sum = shm_pool::run_scatter_lane(control_->scatter, remote, area_.base());
    remote.sum.fetch_add(sum, std::memory_order_relaxed);
    if (remote.running.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      complete_job(remote.sum.load(std::memory_order_relaxed));
    }
  }

  // Serving worker `worker`: serves until stop; the last to stop completes the job.
  void serve_connections(std::uint32_t worker) const noexcept {
    remote_state& remote = control_->remote;
    shm_pool::serve_connections(control_->serve, remote, worker, area_.base());
    if (remote.running.fetch_sub(1, std::memory_order_acq_rel) == 1) complete_job(0);
  }

  // ---- the interpreter's runtime (parked/graph_interpreter.hpp) ----

  // Graph mutexes block the worker process.
  using mutex_type = futex_mutex;

  // A unit made runnable goes on the ring at once, as any task does, for whichever worker pops
  // it first (multiprocessing.Pool has no "run the woken task next on this worker" slot, so
  // neither does this pool).
  void schedule(std::uint32_t unit) const noexcept {
    push_unit(unit);
    notify();
  }

  // The barrier opened: every other unit is parked there, and the count is the barrier's whole
  // waiting list, so every unit but `unit` goes back on the ring.
  void resume_all_but(std::uint32_t unit) const noexcept {
    for (std::uint32_t v = 0; v < control_->graph.job.units; ++v) {
      if (v == unit) continue;
      push_unit(v);
      if ((v & 63) == 0) notify();
    }
    notify();
  }

  // The last unit finished: every channel is still, so its counts can be summed here.
  void all_finished() noexcept {
    graph_area area = graph();
    const graph_result result = parked_result(area);
    control_->graph_blocked_sends = result.blocked_sends;
    complete_job(result.checksum);  // publishes graph_blocked_sends
  }

 private:
  graph_area graph() const noexcept { return {area_.base(), control_->graph, control_->graph_counts}; }

  control_block* control_;
  task_ring ring_;
  job_area_mapping area_;  // this process's mapping of the job area (workers only)
};

}  // namespace cmbench::detail::shm_pool
