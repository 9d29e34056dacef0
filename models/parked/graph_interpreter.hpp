// The parked-unit interpreter: runs a graph job's units (models/model.hpp) as parked actors, the
// way every pool-like model does (serial/baseline, threads/pool, threads/tbb, processes/pool).
// A pool must run any number of units on any number of workers (a 503-unit ring on one worker,
// a million units waiting at the barrier), so a unit never blocks its worker on a channel or the
// barrier: it parks, and the unit that changes what it waits for makes it runnable again through
// the model's runtime. A new pool-like model writes a runtime and picks a storage; it never
// writes its own send / receive / lock / arrive / finish.
//
// A unit is a 56-byte record (parked_unit: its unit_state and the operation it parked on) plus
// its message buffer, nothing else: a parked unit is on no list. A channel has one sender and one
// receiver (the contract's rule), so one parked-sender and one parked-receiver slot per channel
// suffice; the barrier is a counter, and its last arriver resumes every other unit, since all of
// them are parked there. All zero is the initial state of every record, channel and counter, so
// a storage in fresh zero pages (processes/pool's job area) needs no constructor run per unit.
//
// The runtime, a class of the model, provides (checked by parked_runtime below):
//   using mutex_type = ...;                  the lock of channels and the job's mutexes
//   void schedule(std::uint32_t unit);       a parked unit became runnable: hand it over as a new
//                                            task (a pool's shared queue, task_group::run, ...)
//   void resume_all_but(std::uint32_t unit); the barrier opened: every unit but `unit` (which
//                                            goes on) is runnable
//   void all_finished();                     the last unit finished (called once per job)
// and calls run(unit) for each runnable unit: first every unit once, then each unit it is
// handed. A unit is handed to the runtime at most once per park, so it runs on one worker at a
// time.
//
// Hand-off: a unit made runnable goes to the runtime at once, like any task submitted to it,
// while its waker goes on. Whichever worker the runtime gives it to runs it: there is no "run the
// woken unit next on this worker" slot, which neither ThreadPoolExecutor, multiprocessing.Pool
// nor oneTBB has (tests/handoff_test.cpp checks the order).
//
// The mutex rules. A channel's lock is held by one worker for a few instructions (a check, a
// copy of one message, two stores) and never across a park: the parking unit records what it
// waits for, drops the lock and returns. A job mutex is held by a unit from its lock step to its
// unlock step, and the contract forbids send, receive and arrive in between, so it is never held
// across a park either. So the mutex may block its worker (it sleeps instead of burning the other
// core when its holder is preempted) and costs one atomic each way uncontended: std::mutex,
// tbb::mutex, a futex mutex in shared memory, or no_lock when every unit runs on one thread.
// Never call the runtime under a lock: the interpreter does not.
//
// The storage places the records; it provides (checked by parked_storage below):
//   const graph_job& job();
//   parked_unit& unit(u);  std::byte* message(u);        8-byte aligned, message_bytes long
//   parked_channel<mutex_type>& channel(c);  std::byte* slot(c, i);   slot i < capacity
//   mutex_type& mutex(m);  parked_counters& counters();
// parked/heap_graph.hpp is the storage of the thread models, processes/pool_graph.hpp that of a
// job area in shared memory (offsets, not pointers, as each process maps it at its own address).
#pragma once

#include <atomic>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>

#include "models/model.hpp"

namespace cmbench::detail {

// No unit: what a runtime that starts units [0, n) but one passes to start them all.
inline constexpr std::uint32_t no_unit = UINT32_MAX;

// A unit's record, followed or accompanied by its message buffer. All zero: not started.
struct parked_unit {
  unit_state state;
  std::uint32_t pending_target;  // the operation it parked on, retried when it runs again
  unit_op pending_op;
  std::uint8_t started;
};
static_assert(sizeof(parked_unit) == 56 && alignof(parked_unit) == 8);

// A channel's header; its `capacity` slots of message_bytes are wherever the storage puts them.
// A parked unit is stored as unit + 1, so zero means nobody.
template <class Mutex>
struct parked_channel {
  Mutex lock;
  std::uint32_t head = 0;
  std::uint32_t size = 0;
  std::uint32_t parked_sender = 0;
  std::uint32_t parked_receiver = 0;
  std::uint64_t blocked_sends = 0;  // under `lock`; summed at the end, no shared counter per send
};

// The job-wide counts, each on its own cache line (every worker touches them).
struct parked_counters {
  alignas(64) std::atomic<std::uint32_t> arrived{0};  // at the barrier, this round
  alignas(64) std::atomic<std::uint32_t> finished{0};
  std::atomic<std::uint64_t> checksum{0};

  // Before a job, for a storage reused across jobs.
  void reset() noexcept {
    arrived.store(0, std::memory_order_relaxed);
    finished.store(0, std::memory_order_relaxed);
    checksum.store(0, std::memory_order_relaxed);
  }
};

// The lock of a runtime whose units all run on one thread: nothing runs between a unit's lock and
// unlock, nor inside a channel operation, so there is nothing to exclude.
struct no_lock {
  void lock() noexcept {}
  void unlock() noexcept {}
};

template <class R>
concept parked_runtime = requires(R& runtime, std::uint32_t unit, typename R::mutex_type& mutex) {
  runtime.schedule(unit);
  runtime.resume_all_but(unit);
  runtime.all_finished();
  mutex.lock();
  mutex.unlock();
};

template <class S, class Mutex>
concept parked_storage = requires(S& storage, std::uint32_t i) {
  { storage.job() } -> std::convertible_to<const graph_job&>;
  { storage.unit(i) } -> std::same_as<parked_unit&>;
  { storage.message(i) } -> std::same_as<std::byte*>;
  { storage.channel(i) } -> std::same_as<parked_channel<Mutex>&>;
  { storage.slot(i, i) } -> std::same_as<std::byte*>;
  { storage.mutex(i) } -> std::same_as<Mutex&>;
  { storage.counters() } -> std::same_as<parked_counters&>;
};

// The job's result, once every unit has finished (by whoever can see the storage).
template <class Storage>
graph_result parked_result(Storage& storage) {
  graph_result result;
  result.checksum = storage.counters().checksum.load(std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < storage.job().channels; ++c) result.blocked_sends += storage.channel(c).blocked_sends;
  return result;
}

template <class Storage>
bool parked_all_finished(Storage& storage) {
  return storage.counters().finished.load(std::memory_order_acquire) == storage.job().units;
}

// Holds only two references, so a model may make one wherever it runs a unit (processes/pool's
// workers make one per task). Allocates nothing and takes no lock but the runtime's mutexes: it
// runs in forked children of multi-threaded parents too.
template <class Runtime, class Storage>
class graph_interpreter {
 public:
  graph_interpreter(Storage& storage, Runtime& runtime) noexcept : storage_(storage), runtime_(runtime) {}

  // Runs unit u until it parks or finishes.
  void run(std::uint32_t u) {
    static_assert(parked_runtime<Runtime>, "the runtime lacks schedule, resume_all_but, all_finished or mutex_type");
    static_assert(parked_storage<Storage, typename Runtime::mutex_type>, "the storage lacks a part");
    // Locals, not members: they stay in registers across the workload's steps (calls the
    // compiler cannot see into), instead of being reloaded through `this` after each one.
    Storage& storage = storage_;
    Runtime& runtime = runtime_;
    const graph_job& job = storage.job();
    parked_unit& r = storage.unit(u);
    std::byte* const message = storage.message(u);
    // A unit run again was parked: its pending operation is retried, and is not counted again.
    bool retry = r.started != 0;
    unit_action action;
    if (retry) {
      action = {r.pending_op, r.pending_target};
    } else {
      r.started = 1;
      r.state.unit = u;
      action = job.next(r.state, message);
    }
    for (;;) {
      std::uint32_t woken = 0;  // unit + 1 this operation made runnable
      switch (action.op) {
        case unit_op::send: {
          auto& c = storage.channel(action.target);
          c.lock.lock();
          if (c.size == job.capacity) {
            if (!retry) ++c.blocked_sends;  // once per send, however often it parks
            // A channel has one sender (models/model.hpp), parked here at most once.
            assert(c.parked_sender == 0 || c.parked_sender == u + 1);
            c.parked_sender = u + 1;
            park(r, action);
            c.lock.unlock();
            return;
          }
          std::uint32_t tail = c.head + c.size;
          if (tail >= job.capacity) tail -= job.capacity;
          std::memcpy(storage.slot(action.target, tail), message, job.message_bytes);
          ++c.size;
          woken = std::exchange(c.parked_receiver, 0);
          c.lock.unlock();
          break;
        }
        case unit_op::receive: {
          auto& c = storage.channel(action.target);
          c.lock.lock();
          if (c.size == 0) {
            assert(c.parked_receiver == 0 || c.parked_receiver == u + 1);  // one receiver, likewise
            c.parked_receiver = u + 1;
            park(r, action);
            c.lock.unlock();
            return;
          }
          std::memcpy(message, storage.slot(action.target, c.head), job.message_bytes);
          if (++c.head == job.capacity) c.head = 0;
          --c.size;
          woken = std::exchange(c.parked_sender, 0);
          c.lock.unlock();
          break;
        }
        case unit_op::lock:
          storage.mutex(action.target).lock();
          break;
        case unit_op::unlock:
          storage.mutex(action.target).unlock();
          break;
        case unit_op::arrive:
          if (!retry) {
            // Read before counting in: after it the last arriver may resume u, and the job may end.
            const std::uint32_t units = job.units;
            parked_counters& counters = storage.counters();
            park(r, action);  // before counting in: then the last arriver may resume u at once
            if (counters.arrived.fetch_add(1, std::memory_order_acq_rel) + 1 < units) return;
            // Last to arrive: every other unit is parked here, and none can arrive again before
            // it is resumed below, so the counter can be reset for the next use.
            counters.arrived.store(0, std::memory_order_relaxed);
            if (job.hold.count() > 0) std::this_thread::sleep_for(job.hold);
            if (units > 1) runtime.resume_all_but(u);
          }
          break;
        case unit_op::finish: {
          // Not the last: once counted, the job may end and its storage go, so read first.
          const std::uint32_t units = job.units;
          parked_counters& counters = storage.counters();
          counters.checksum.fetch_add(r.state.result, std::memory_order_relaxed);
          if (counters.finished.fetch_add(1, std::memory_order_acq_rel) + 1 == units) runtime.all_finished();
          return;
        }
      }
      // The operation went through and u goes on; a unit it readied goes to the runtime now.
      if (woken != 0) runtime.schedule(woken - 1);
      retry = false;
      action = job.next(r.state, message);
    }
  }

  graph_result result() const { return parked_result(storage_); }
  bool all_finished() const { return parked_all_finished(storage_); }

 private:
  // Record what u waits for, under the lock it parks on (or before counting in at the barrier):
  // once that is released, another worker may resume u, so the caller must not touch u again.
  static void park(parked_unit& r, unit_action action) noexcept {
    r.pending_op = action.op;
    r.pending_target = action.target;
  }

  Storage& storage_;
  Runtime& runtime_;
};

}  // namespace cmbench::detail
