// Graph jobs on one io_context run by several threads (coroutines/asio-pool). Every unit is one
// co_spawned asio::awaitable that loops over job.next() and co_awaits the operation it returns,
// as on coroutines/asio and asio-mt (asio_graph.hpp, whose channels and mutexes this reuses); what
// differs is that every handler, and so every step of a unit, may run on any of the loop's
// threads:
// - a channel is asio-mt's concurrent_channel over a message ring; a woken unit's resumption goes
//   to the loop's one queue and whichever thread takes it resumes the unit;
// - the barrier's timer is shared by units on every thread, and a timer is not thread-safe, so
//   arrivals, waits and the release take the barrier's mutex (asio-mt gives each loop its own
//   timer, touched only by that loop's thread);
// - no strand: a unit is one coroutine with one operation at a time, so its own steps never run
//   at once, and everything units share is thread-safe (channels, the job's std::mutexes) or
//   locked (the barrier, the blocked-send count is an atomic).
#pragma once

#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration
#include "models/coroutines/asio_graph.hpp"

#include <asio/error.hpp>
#include <asio/experimental/append.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/model.hpp"

namespace cmbench::detail {

inline constexpr std::string_view pool_model_name = "coroutines/asio-pool";

// The barrier of all units on a shared loop: a count and one steady_timer at time_point::max()
// that the parked units async_wait on and the release cancels, all under one mutex. An arrival
// counts itself and, unless it is the last, starts its wait under the same lock, so a release
// can never come between the two and miss it (on asio-mt a loop's release is posted to that
// loop's one thread, which orders it after the wait instead).
class pool_barrier {
 public:
  pool_barrier(const loop_executor& executor, std::uint32_t units) : executor_(executor), units_(units) {}

  // co_await arrive(as_tuple(use_loop_task)): completes with no error for the last unit to arrive
  // (posted to the loop, since a handler may not run inside its initiation), which then holds and
  // calls release(); with operation_aborted for the others once released, or at once after abort().
  template <class Token>
  auto arrive(Token&& token) {
    return asio::async_initiate<Token, void(asio::error_code)>(
        [this](auto handler) {
          std::unique_lock lock(mutex_);
          if (!aborted_ && ++arrived_ < units_) {
            // Made on first use, as on the other coroutine models: the first timer of an
            // io_context starts its reactor, and from then on an idle thread waits in epoll and
            // every post to the loop may have to interrupt it with a write to an eventfd.
            if (!release_) release_.emplace(executor_, loop_timer::time_point::max());
            release_->async_wait(std::move(handler));
            return;
          }
          const asio::error_code result = aborted_ ? asio::error::operation_aborted : asio::error_code{};
          arrived_ = 0;
          lock.unlock();
          asio::post(asio::experimental::append(std::move(handler), result));
        },
        token);
  }

  // The last arriver's hold: only it touches this timer, and the barrier's mutex orders one
  // round's last arriver after the previous one's, whichever threads they run on.
  loop_timer& hold_for(std::chrono::nanoseconds hold) {
    if (!hold_) hold_.emplace(executor_);
    hold_->expires_after(hold);
    return *hold_;
  }

  // Wakes every parked unit: cancelling the timer queues each waiter for whichever thread is free.
  void release() {
    std::lock_guard lock(mutex_);
    if (release_) release_->cancel();  // no timer: nobody has waited yet
  }

  // The job failed: wakes every parked unit and completes every later arrival at once.
  void abort() noexcept {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    try {
      if (release_) release_->cancel();
    } catch (...) {
      // cancel() allocates nothing; if Asio ever throws here the waiters stay parked
    }
  }

 private:
  loop_executor executor_;
  std::uint32_t units_;
  std::mutex mutex_;
  std::uint32_t arrived_ = 0;
  bool aborted_ = false;
  std::optional<loop_timer> release_;
  std::optional<loop_timer> hold_;
};

// The shared state of one graph job on a shared loop.
class pool_graph {
 public:
  pool_graph(const graph_job& job, const loop_executor& executor)
      : job_(fits_in_memory(job)),
        messages_(std::size_t{job.units} * job.message_bytes / 8),
        slots_(std::size_t{job.channels} * (job.capacity + 2) * job.message_bytes / 8),
        mutexes_(job.mutexes),
        barrier_(executor, job.units) {
    channels_.reserve(job.channels);
    auto* slots = reinterpret_cast<std::byte*>(slots_.data());
    const std::size_t ring_bytes = std::size_t{job.capacity + 2} * job.message_bytes;
    for (std::uint32_t c = 0; c < job.channels; ++c) {
      channels_.emplace_back(executor, job, slots + c * ring_bytes);
    }
    // From here on, what grows is the units' frames.
    watch_.emplace(pool_model_name, "units", job.units);
  }

  pool_graph(const pool_graph&) = delete;
  pool_graph& operator=(const pool_graph&) = delete;

  // The job's buffers and channels, allocated here and touched as the units run: refused up
  // front when past the memory budget. The units' frames are only known once made: see
  // check_memory().
  static const graph_job& fits_in_memory(const graph_job& job) {
    validate_graph_job(job, pool_model_name);
    const std::uint64_t bytes =
        std::uint64_t{job.units} * job.message_bytes +
        std::uint64_t{job.channels} *
            (sizeof(graph_channel<true>) + (std::uint64_t{job.capacity} + 2) * job.message_bytes) +
        std::uint64_t{job.mutexes} * sizeof(graph_mutex);
    check_memory_need(pool_model_name,
                      "a graph of " + with_thousands(job.units) + " units and " + with_thousands(job.channels) +
                          " channels (messages, channel rings)",
                      bytes);
    return job;
  }

  // The driver has made `made` units (all of them are its): throws limit_error when the frames of
  // the units still to come would not fit in memory.
  void check_memory(std::uint64_t made) const { watch_->check(made); }

  const graph_job& job() const { return job_; }
  graph_channel<true>& channel(std::uint32_t c) { return channels_[c]; }
  graph_mutex& mutex(std::uint32_t m) { return mutexes_[m]; }
  pool_barrier& barrier() { return barrier_; }
  std::byte* message(std::uint32_t unit) {
    const std::size_t words = std::size_t{unit} * job_.message_bytes / 8;
    return reinterpret_cast<std::byte*>(messages_.data() + words);
  }

  // Units on any thread find their channel full: one atomic count (only on that slow path).
  void count_blocked_send() noexcept { blocked_sends_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t blocked_sends() const noexcept { return blocked_sends_.load(std::memory_order_relaxed); }

  // A unit failed (an allocation, most likely) or a spawn did: every parked unit must end too,
  // or the job would never complete. Every parked and later channel operation fails (concurrent
  // channels take their own lock), and so does every barrier wait. `cause` is kept: the job
  // reports it rather than the cancellations it led to.
  void abort(std::exception_ptr cause) noexcept {
    if (aborted_.exchange(true, std::memory_order_acq_rel)) return;
    cause_ = std::move(cause);
    try {
      // cancel() fails the parked operations, senders included (close() in Asio 1.22 only fails
      // parked receivers); close() then fails every later operation.
      for (auto& c : channels_) {
        c.signal.cancel();
        c.signal.close();
      }
    } catch (...) {
      // nothing better to do: the barrier below still releases its waiters
    }
    barrier_.abort();
  }
  // After the job: what made it abort, if it did (read once the job's last handler has run).
  const std::exception_ptr& abort_cause() const noexcept { return cause_; }

  void throw_if_aborted() const {
    if (aborted_.load(std::memory_order_acquire)) throw std::runtime_error("graph job aborted");
  }

 private:
  const graph_job& job_;
  std::vector<std::uint64_t> messages_;  // one message buffer per unit, 8-byte aligned, zeroed
  std::vector<std::uint64_t> slots_;     // every channel's ring of capacity + 2 slots
  std::vector<graph_channel<true>> channels_;
  std::vector<graph_mutex> mutexes_;
  pool_barrier barrier_;
  std::atomic<std::uint64_t> blocked_sends_{0};
  std::atomic<bool> aborted_{false};
  std::exception_ptr cause_;  // written once, by the unit or driver that set aborted_
  std::optional<unit_memory_watch> watch_;  // set at the end of construction
};

// One graph unit. It first posts itself, so whichever thread is free starts it (co_spawn from a
// thread of the loop would run it inline on the driver's thread, and units that never park, as
// contention's, would all run there one after another). Its frame holds the unit's state and a few
// pointers (the fast paths are plain functions so that their locals stay off it); parked, the unit
// also owns the operation it waits on and that operation's awaitable frame.
inline loop_task<std::uint64_t> pool_graph_unit(pool_graph& g, std::uint32_t unit) {
  co_await asio::post(use_loop_task);
  const graph_job& job = g.job();
  std::byte* const message = g.message(unit);
  unit_state state;
  state.unit = unit;
  for (;;) {
    const unit_action action = job.next(state, message);
    switch (action.op) {
      case unit_op::send:
        if (!g.channel(action.target).try_send(message)) {
          g.count_blocked_send();  // full: counted once, however long it waits
          graph_channel<true>& c = g.channel(action.target);
          co_await c.signal.async_send(asio::error_code{}, c.parked_slot(), use_loop_task);
        }
        break;
      case unit_op::receive:
        if (!g.channel(action.target).try_receive(message)) {
          g.channel(action.target)
              .copy_out(co_await g.channel(action.target).signal.async_receive(use_loop_task), message);
        }
        break;
      case unit_op::lock:
        // Held by the thread running the unit, which never co_awaits before its unlock: a
        // contending thread waits only for the critical section, as a pool worker does.
        g.mutex(action.target).lock();
        break;
      case unit_op::unlock:
        g.mutex(action.target).unlock();
        break;
      case unit_op::arrive: {
        g.throw_if_aborted();
        // The release completes the others' waits with operation_aborted: as_tuple takes it as a
        // value instead of an exception per unit.
        const auto [woken] = co_await g.barrier().arrive(asio::experimental::as_tuple(use_loop_task));
        g.throw_if_aborted();
        if (!woken) {  // no error: this unit arrived last
          if (job.hold.count() > 0) co_await g.barrier().hold_for(job.hold).async_wait(use_loop_task);
          g.barrier().release();
        }
        break;
      }
      case unit_op::finish:
        co_return state.result;
    }
  }
}

// A unit's completion, on whichever thread finished it: a failed unit aborts the job (the others
// would wait for it forever), then it counts out of the driver's wait group.
struct pool_unit_done {
  pool_graph* graph;
  wait_group<true>* group;
  void operator()(std::exception_ptr error, std::uint64_t value) const {
    if (error) graph->abort(error);
    group->arrive(std::move(error), value);
  }
};

// Spawns every unit (each posts itself before its first step) and returns the sum of their
// results once all have finished, on whichever threads.
inline loop_task<std::uint64_t> pool_graph_driver(pool_graph& g) {
  const loop_executor executor = co_await asio::this_coro::executor;
  wait_group<true> group;
  loop_task<void> all_done = group.wait();
  std::exception_ptr spawn_error;
  std::uint64_t made = 0;
  for (std::uint32_t unit = 0; unit < g.job().units; ++unit) {
    group.add();
    try {
      if (unit_memory_watch::due(++made)) g.check_memory(made);
      asio::co_spawn(executor, pool_graph_unit(g, unit), pool_unit_done{&g, &group});
    } catch (...) {
      group.undo_add();
      spawn_error = std::current_exception();
      g.abort(spawn_error);  // the units already started would wait for the missing ones
      break;
    }
  }
  co_await std::move(all_done);
  if (spawn_error) std::rethrow_exception(spawn_error);
  co_return group.result();
}

}  // namespace cmbench::detail
