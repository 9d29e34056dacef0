// A graph job's units as parked actors on a pool of W threads, shared by threads/pool and
// threads/tbb. A pool must run any number of units on any number of workers (a 503-unit ring on
// one worker, a million units waiting at the barrier), so a unit never blocks its worker on a
// channel or the barrier: it parks, and the unit that changes what it waits for makes it runnable
// again through the runtime (a work item on the pool's queue, a task of a task_group).
//
// Per unit: its unit_state, the action it is parked on, two flags (a 64-byte record) and its
// message buffer (message_bytes), nothing else: a parked unit is not on any list. A channel has
// one sender and one receiver (the contract's rule), so one parked-sender and one
// parked-receiver slot per channel suffice; the barrier is a counter, and its last arriver
// resumes every other unit, since all of them are parked there.
//
// Hand-off: a unit made runnable goes to the runtime at once, like any task submitted to it (a
// work item on threads/pool's shared FIFO queue, a task_group task for threads/tbb), while its
// waker goes on. Whichever worker the runtime gives it to runs it: there is no "run the woken
// unit next on this worker" slot, which neither ThreadPoolExecutor nor oneTBB has.
//
// The runtime provides:
//   void schedule(std::uint32_t unit);      make a parked unit runnable (one task)
//   void resume_all_but(std::uint32_t u);   the barrier opened: every unit but u is runnable
//   void all_finished();                    the last unit finished
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/model.hpp"

namespace cmbench::detail {

inline constexpr std::uint32_t no_unit = std::numeric_limits<std::uint32_t>::max();

// Mutex guards each channel and is the type of the job's mutexes: both are held for a few
// instructions by one worker and never across a park, so a blocking mutex costs one atomic each
// way uncontended and sleeps (instead of burning the other core) when its holder is preempted.
template <class Runtime, class Mutex>
class parked_graph {
 public:
  // Allocates every unit up front; memory exhaustion is this model's real limit on units.
  parked_graph(const graph_job& job, Runtime& runtime, std::string_view model) : job_(job), runtime_(runtime) {
    if (job.capacity == 0 || job.message_bytes < 16 || job.message_bytes % 8 != 0) {
      throw std::invalid_argument("graph job: capacity must be >= 1, message_bytes >= 16 and a multiple of 8");
    }
    const std::size_t words = job.message_bytes / 8;
    slot_lines_ = (std::size_t{job.capacity} * job.message_bytes + sizeof(cache_line) - 1) / sizeof(cache_line);
    // All of it is touched as the units start: past the budget, the OOM killer would end the run.
    const std::uint64_t bytes =
        std::uint64_t{job.units} * (sizeof(unit_record) + job.message_bytes) +
        std::uint64_t{job.channels} * (sizeof(channel) + slot_lines_ * sizeof(cache_line)) +
        std::uint64_t{job.mutexes} * sizeof(Mutex);
    check_memory_need(model,
                      "a graph of " + with_thousands(job.units) + " units, " + with_thousands(job.channels) +
                          " channels and " + with_thousands(job.mutexes) +
                          " mutexes (unit records, messages, channel slots)",
                      bytes);
    try {
      units_ = std::make_unique<unit_record[]>(job.units);
      messages_ = std::make_unique<std::uint64_t[]>(std::size_t{job.units} * words);  // zeroed
      channels_ = std::make_unique<channel[]>(job.channels);
      slots_ = std::make_unique_for_overwrite<cache_line[]>(slot_lines_ * job.channels);
      mutexes_ = std::make_unique<Mutex[]>(job.mutexes);
    } catch (const std::bad_alloc&) {
      throw limit_error(std::string(model) + ": out of memory allocating " + std::to_string(job.units) +
                        " units of " + std::to_string(sizeof(unit_record) + job.message_bytes) + " bytes (" +
                        describe_address_space() + ")");
    }
    for (std::uint32_t u = 0; u < job.units; ++u) units_[u].state.unit = u;
  }

  parked_graph(const parked_graph&) = delete;
  parked_graph& operator=(const parked_graph&) = delete;

  // Runs unit u until it parks or finishes.
  void run(std::uint32_t u) { run_until_parked(u); }

  std::uint32_t units() const { return job_.units; }
  bool all_finished() const { return finished_.load(std::memory_order_acquire) == job_.units; }

  // Call once every unit has finished.
  graph_result result() const {
    graph_result r;
    r.checksum = checksum_.load(std::memory_order_relaxed);
    for (std::uint32_t c = 0; c < job_.channels; ++c) r.blocked_sends += channels_[c].blocked_sends;
    return r;
  }

  // Bytes this runtime keeps per unit (the record and its message buffer).
  static constexpr std::size_t record_bytes = 64;

 private:
  struct unit_record {
    unit_state state;
    unit_action pending{};  // the operation it parked on, retried when resumed
    bool started = false;
    bool retry = false;  // `pending` is being retried after a wake-up
  };
  static_assert(sizeof(unit_record) == record_bytes);

  // One cache line per channel: the two units of a channel usually run on different workers,
  // and neighbouring channels (a pipeline's, a ring's) belong to other pairs.
  struct alignas(64) channel {
    Mutex lock;
    std::uint32_t head = 0, size = 0;
    std::uint32_t parked_sender = no_unit, parked_receiver = no_unit;
    std::uint64_t blocked_sends = 0;  // under `lock`; summed at the end, no shared counter
  };
  struct alignas(64) cache_line {
    std::byte bytes[64];
  };

  std::byte* message_of(std::uint32_t u) {
    return reinterpret_cast<std::byte*>(messages_.get() + std::size_t{u} * (job_.message_bytes / 8));
  }
  std::byte* slot_of(std::uint32_t c, std::uint32_t i) {
    return slots_[std::size_t{c} * slot_lines_].bytes + std::size_t{i} * job_.message_bytes;
  }

  // Record what u waits for; the caller then drops the lock it parked under and must not touch
  // u again: from that moment another worker may resume it.
  static void park(unit_record& r, unit_action action) {
    r.pending = action;
    r.retry = true;
  }

  // A parked unit this operation made runnable goes to the runtime, as a new task would.
  void wake(std::uint32_t woken) {
    if (woken != no_unit) runtime_.schedule(woken);
  }

  void run_until_parked(std::uint32_t u) {
    unit_record& r = units_[u];
    std::byte* const message = message_of(u);
    unit_action action;
    if (r.started) {
      action = r.pending;
    } else {
      r.started = true;
      action = job_.next(r.state, message);
    }
    for (;;) {
      switch (action.op) {
        case unit_op::send: {
          channel& c = channels_[action.target];
          std::unique_lock lock(c.lock);
          if (c.size == job_.capacity) {
            if (!r.retry) ++c.blocked_sends;  // once per send, however often it parks
            c.parked_sender = u;
            park(r, action);
            return;
          }
          std::memcpy(slot_of(action.target, (c.head + c.size) % job_.capacity), message, job_.message_bytes);
          ++c.size;
          const std::uint32_t woken = std::exchange(c.parked_receiver, no_unit);
          lock.unlock();
          wake(woken);
          break;
        }
        case unit_op::receive: {
          channel& c = channels_[action.target];
          std::unique_lock lock(c.lock);
          if (c.size == 0) {
            c.parked_receiver = u;
            park(r, action);
            return;
          }
          std::memcpy(message, slot_of(action.target, c.head), job_.message_bytes);
          c.head = (c.head + 1) % job_.capacity;
          --c.size;
          const std::uint32_t woken = std::exchange(c.parked_sender, no_unit);
          lock.unlock();
          wake(woken);
          break;
        }
        case unit_op::lock:
          mutexes_[action.target].lock();
          break;
        case unit_op::unlock:
          mutexes_[action.target].unlock();
          break;
        case unit_op::arrive:
          if (!r.retry) {
            // Read before counting in: after it the job may end and be destroyed at once.
            const std::uint32_t units = job_.units;
            park(r, action);  // before counting in: then the last arriver may resume u at once
            if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 < units) return;
            // Last to arrive: every other unit is parked here, and none can arrive again before
            // it is resumed below, so the counter can be reset for the next use.
            r.retry = false;
            arrived_.store(0, std::memory_order_relaxed);
            if (job_.hold.count() > 0) std::this_thread::sleep_for(job_.hold);
            if (job_.units > 1) runtime_.resume_all_but(u);
          }
          break;
        case unit_op::finish: {
          // Not the last: once counted, the job may end and be destroyed, so read first.
          const std::uint32_t units = job_.units;
          checksum_.fetch_add(r.state.result, std::memory_order_relaxed);
          if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == units) runtime_.all_finished();
          return;
        }
      }
      r.retry = false;
      action = job_.next(r.state, message);
    }
  }

  const graph_job& job_;
  Runtime& runtime_;
  std::size_t slot_lines_ = 0;  // cache lines of slots per channel
  std::unique_ptr<unit_record[]> units_;
  std::unique_ptr<std::uint64_t[]> messages_;  // one message buffer per unit, 8-byte aligned
  std::unique_ptr<channel[]> channels_;
  std::unique_ptr<cache_line[]> slots_;  // each channel's `capacity` messages, own cache lines
  std::unique_ptr<Mutex[]> mutexes_;
  alignas(64) std::atomic<std::uint32_t> arrived_{0};
  alignas(64) std::atomic<std::uint32_t> finished_{0};
  std::atomic<std::uint64_t> checksum_{0};
};

}  // namespace cmbench::detail
