// Graph jobs on one io_context run by several threads (coroutines/asio-pool). Every unit is one
// co_spawned asio::awaitable that loops over job.next() and co_awaits the operation it returns,
// as on coroutines/asio and asio-mt (asio_graph.hpp, whose state, units and driver this reuses);
// what differs is that every handler, and so every step of a unit, may run on any of the loop's
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

// The shared state of one graph job on a shared loop: one loop, one driver, one barrier.
class pool_graph : public graph_base<true> {
 public:
  static constexpr bool shared_loop = true;  // a unit's steps run on whichever thread is free

  pool_graph(const graph_job& job, const loop_executor& executor)
      : graph_base<true>(job, pool_model_name, [&](std::uint32_t /*channel*/) { return executor; }),
        barrier_(executor, job.units) {
    watch_units(pool_model_name);
  }

  unsigned loop_count() const { return 1; }
  pool_barrier& barrier() { return barrier_; }

  // Units on any thread find their channel full: one atomic count (only on that slow path).
  void count_blocked_send(unsigned /*loop*/) noexcept { blocked_sends_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t blocked_sends() const noexcept { return blocked_sends_.load(std::memory_order_relaxed); }

  // Fails every parked and later channel operation (see graph_base::claim_abort), and so every
  // barrier wait.
  void abort(unsigned /*here*/, std::exception_ptr cause) noexcept {
    if (!claim_abort(std::move(cause))) return;
    try {
      close_channels();
    } catch (...) {
      // nothing better to do: the barrier below still releases its waiters
    }
    barrier_.abort();
  }

 private:
  pool_barrier barrier_;
  std::atomic<std::uint64_t> blocked_sends_{0};
};

}  // namespace cmbench::detail
