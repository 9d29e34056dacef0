// Graph jobs on Asio coroutines, shared by coroutines/asio (Shared = false: one loop, one thread)
// and coroutines/asio-mt (Shared = true: one loop per thread); coroutines/asio-pool (one loop run
// by several threads) adds its own state and barrier in asio_pool_graph.hpp. Every unit is one
// co_spawned asio::awaitable that loops over job.next() and co_awaits the operation it returns.
//
// Channels are Asio's experimental channels with the job's capacity. A channel carries the index
// of a slot in a per-channel ring of message slots: the sender copies its message into the next
// slot and sends the index, the receiver takes the index and copies the slot into its own buffer.
// The ring has capacity + 2 slots, because besides the `capacity` buffered messages one more may
// be parked in the sender's pending async_send and one more may have been taken by the receiver
// without being copied out yet (Asio posts receive completions). The sender only writes a slot
// after its previous send completed, and that completion happens-after (through the channel's
// lock) the receiver asking for a message that came capacity + 1 sends earlier, i.e. after the
// receiver copied out the message capacity + 2 sends earlier: the slot being reused.
// The channel's buffer is a ring that grows to the capacity once and is then reused, instead of
// the default std::deque (512 bytes up front per channel, and a node freed and allocated again
// every few messages): a message costs no allocation in the steady state.
#pragma once

#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/basic_channel.hpp>
#include <asio/experimental/basic_concurrent_channel.hpp>
#include <asio/experimental/channel_traits.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "models/graph_validation.hpp"
#include "models/memory_limits.hpp"
#include "models/model.hpp"

namespace cmbench::detail {

// A FIFO ring for a channel's buffered payloads: what Asio's channel needs of its container
// (push_back, front, pop_front, size, clear). Grows by doubling, never shrinks.
template <class T>
class payload_ring {
 public:
  payload_ring() = default;
  payload_ring(payload_ring&&) noexcept = default;
  payload_ring& operator=(payload_ring&&) noexcept = default;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& front() noexcept { return *slots_[head_]; }

  void push_back(T&& value) { emplace(std::move(value)); }
  void push_back(const T& value) { emplace(value); }

  void pop_front() noexcept {
    slots_[head_].reset();
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }

  void clear() noexcept {
    while (size_ > 0) pop_front();
  }

 private:
  template <class U>
  void emplace(U&& value) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)].emplace(std::forward<U>(value));
    ++size_;
  }

  void grow() {
    std::vector<std::optional<T>> bigger(slots_.empty() ? 2 : 2 * slots_.size());
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i].emplace(std::move(*slots_[(head_ + i) & (slots_.size() - 1)]));
    }
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<std::optional<T>> slots_;  // a power of two long
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// Asio's channel traits with the ring as the buffer (the documented customisation point).
template <class... Signatures>
struct ring_channel_traits : asio::experimental::channel_traits<Signatures...> {
  template <class... NewSignatures>
  struct rebind {
    using other = ring_channel_traits<NewSignatures...>;
  };
  template <class Element>
  struct container {
    using type = payload_ring<Element>;
  };
};

// A channel of the job: Asio's channel of slot indices plus the slots.
template <bool Shared>
class graph_channel {
 public:
  using signal_type = std::conditional_t<
      Shared,
      asio::experimental::basic_concurrent_channel<loop_executor, ring_channel_traits<>,
                                                   void(asio::error_code, std::uint32_t)>,
      asio::experimental::basic_channel<loop_executor, ring_channel_traits<>,
                                        void(asio::error_code, std::uint32_t)>>;

  graph_channel(const loop_executor& executor, const graph_job& job, std::byte* slots)
      : signal(executor, job.capacity),
        slots_(slots),
        slot_count_(job.capacity + 2),
        bytes_(job.message_bytes) {}

  signal_type signal;

  // The fast paths are plain functions, so that their locals stay off the coroutine frame.
  // send: copies the message into the next slot and offers its index; false if the channel was
  // full, the caller then parks in async_send(parked_slot()).
  bool try_send(const std::byte* message) {
    parked_slot_ = next_slot_;
    next_slot_ = next_slot_ + 1 == slot_count_ ? 0 : next_slot_ + 1;
    std::memcpy(slot(parked_slot_), message, bytes_);
    return signal.try_send(asio::error_code{}, parked_slot_);
  }
  std::uint32_t parked_slot() const noexcept { return parked_slot_; }

  // receive: copies the oldest message out if there is one; false if empty, the caller then
  // parks in async_receive and hands the index it gets to copy_out.
  bool try_receive(std::byte* message) {
    return signal.try_receive(
        [this, message](asio::error_code, std::uint32_t index) { copy_out(index, message); });
  }
  void copy_out(std::uint32_t index, std::byte* message) const noexcept {
    std::memcpy(message, slot(index), bytes_);
  }

 private:
  std::byte* slot(std::uint32_t index) const noexcept {
    return slots_ + std::size_t{index} * bytes_;
  }

  std::byte* slots_;
  std::uint32_t slot_count_;
  std::uint32_t bytes_;
  std::uint32_t next_slot_ = 0;    // only the channel's one sender touches these two
  std::uint32_t parked_slot_ = 0;
};

// A job mutex on several loops: a std::mutex held by the loop thread for the critical section.
// A unit never co_awaits while it holds one, so a lock is held only for the few instructions
// between lock and unlock, and a contending loop waits that long, as a pool worker would. (An
// async semaphore that parks the coroutine instead, a concurrent_channel<void()> of capacity 1,
// took 3.4-4.1 us per update in contention's default run, with ~80,000 context switches: each
// hand-off resumed the parked unit on its own loop, often asleep in the kernel, for a critical
// section of ~20 ns.)
using graph_mutex = std::mutex;

// What each loop owns: timers are touched only by their loop's thread. They are made on first
// use: the first timer of an io_context starts its reactor, and from then on the scheduler polls
// epoll (a system call) every time its queue comes round, which would more than triple the cost
// of a channel hand-off in jobs that never use the barrier.
struct graph_loop {
  explicit graph_loop(const loop_executor& loop) : executor(loop) {}

  loop_timer& release() {
    if (!release_timer) release_timer.emplace(executor, loop_timer::time_point::max());
    return *release_timer;
  }
  loop_timer& hold_for(std::chrono::nanoseconds hold) {
    if (!hold_timer) hold_timer.emplace(executor);
    hold_timer->expires_after(hold);
    return *hold_timer;
  }

  loop_executor executor;
  std::optional<loop_timer> release_timer;  // the barrier: this loop's waiters wait until cancelled
  std::optional<loop_timer> hold_timer;     // the last arriver's `hold`, when it runs on this loop
  std::uint64_t blocked_sends = 0;
};

// What the state of every graph job holds, whether its units run on loops of one thread each
// (graph_state) or on one loop that several threads run (pool_graph, asio_pool_graph.hpp): the
// job's message buffers, channels and mutexes, its memory checks, and whether it aborted and why.
// Shared: the units run on several threads (concurrent channels, real mutexes).
template <bool Shared>
class graph_base {
 public:
  static constexpr bool concurrent = Shared;

  graph_base(const graph_base&) = delete;
  graph_base& operator=(const graph_base&) = delete;

  const graph_job& job() const { return job_; }
  graph_channel<Shared>& channel(std::uint32_t c) { return channels_[c]; }
  graph_mutex& mutex(std::uint32_t m) { return mutexes_[m]; }
  std::byte* message(std::uint32_t unit) {
    const std::size_t words = std::size_t{unit} * job_.message_bytes / 8;
    return reinterpret_cast<std::byte*>(messages_.data() + words);
  }

  // The drivers have made `made` units in all: throws limit_error when the frames of the units
  // still to come would not fit in memory.
  void check_memory(std::uint64_t made) const { watch_->check(made); }

  // After the job: what made it abort, if it did (read once every loop is done with the job).
  const std::exception_ptr& abort_cause() const noexcept { return cause_; }

  void throw_if_aborted() const {
    if (aborted_.load(std::memory_order_acquire)) throw std::runtime_error("graph job aborted");
  }

 protected:
  // Channel c uses channel_executor(c) as its I/O executor. The derived state calls
  // watch_units() at the end of its construction.
  template <class ChannelExecutor>
  graph_base(const graph_job& job, std::string_view model, ChannelExecutor channel_executor)
      : job_(fits_in_memory(job, model)),
        messages_(std::size_t{job.units} * job.message_bytes / 8),
        slots_(std::size_t{job.channels} * (job.capacity + 2) * job.message_bytes / 8) {
    channels_.reserve(job.channels);
    auto* slots = reinterpret_cast<std::byte*>(slots_.data());
    const std::size_t ring_bytes = std::size_t{job.capacity + 2} * job.message_bytes;
    for (std::uint32_t c = 0; c < job.channels; ++c) {
      channels_.emplace_back(channel_executor(c), job, slots + c * ring_bytes);
    }
    if constexpr (Shared) {
      mutexes_ = std::vector<graph_mutex>(job.mutexes);
    }
  }

  ~graph_base() = default;

  // From here on, what grows is the units' frames.
  void watch_units(std::string_view model) { watch_.emplace(model, "units", job_.units); }

  // A unit failed (an allocation, most likely) or a spawn did: every parked unit must end too, or
  // the job would never complete. True for the first call, which keeps `cause` (the job reports it
  // rather than the cancellations it led to); the caller then cancels every parked operation.
  bool claim_abort(std::exception_ptr cause) noexcept {
    if (aborted_.exchange(true, std::memory_order_acq_rel)) return false;
    cause_ = std::move(cause);
    return true;
  }

  // Every parked and later channel operation fails: cancel() fails the parked operations, senders
  // included (close() in Asio 1.22 only fails parked receivers); close() then fails every later
  // operation. On one thread the caller is on the loop that owns every channel; concurrent
  // channels take their own lock.
  void close_channels() {
    for (auto& c : channels_) {
      c.signal.cancel();
      c.signal.close();
    }
  }

 private:
  // The job's buffers and channels, allocated here and touched as the units run: refused up
  // front when past the memory budget (or outside the contract). The units' frames are only
  // known once made: see check_memory().
  static const graph_job& fits_in_memory(const graph_job& job, std::string_view model) {
    validate_graph_job(job, model);
    const std::uint64_t bytes =
        std::uint64_t{job.units} * job.message_bytes +
        std::uint64_t{job.channels} *
            (sizeof(graph_channel<Shared>) + (std::uint64_t{job.capacity} + 2) * job.message_bytes) +
        std::uint64_t{job.mutexes} * sizeof(graph_mutex);
    check_memory_need(model,
                      "a graph of " + with_thousands(job.units) + " units and " + with_thousands(job.channels) +
                          " channels (messages, channel rings)",
                      bytes);
    return job;
  }

  const graph_job& job_;
  std::vector<std::uint64_t> messages_;  // one message buffer per unit, 8-byte aligned, zeroed
  std::vector<std::uint64_t> slots_;     // every channel's ring of capacity + 2 slots
  std::vector<graph_channel<Shared>> channels_;
  std::vector<graph_mutex> mutexes_;  // Shared only: on one thread a lock costs nothing
  std::atomic<bool> aborted_{false};
  std::exception_ptr cause_;  // written once, by the unit or driver that set aborted_
  std::optional<unit_memory_watch> watch_;  // set at the end of the derived construction
};

// The shared state of one graph job on loops of one thread each.
template <bool Shared>
class graph_state : public graph_base<Shared> {
 public:
  static constexpr bool shared_loop = false;  // a unit runs on its driver's loop, on one thread
  static constexpr std::string_view model_name = Shared ? "coroutines/asio-mt" : "coroutines/asio";

  // Loop l runs units l, l + loops, ...; channel c uses loop c % loops as its I/O executor.
  graph_state(const graph_job& job, const loop_executor* loops, unsigned loop_count)
      : graph_base<Shared>(job, model_name, [&](std::uint32_t c) { return loops[c % loop_count]; }) {
    loops_.reserve(loop_count);
    for (unsigned l = 0; l < loop_count; ++l) loops_.emplace_back(loops[l]);
    this->watch_units(model_name);
  }

  unsigned loop_count() const { return static_cast<unsigned>(loops_.size()); }
  graph_loop& loop(unsigned l) { return loops_[l]; }

  void count_blocked_send(unsigned loop) noexcept { ++loops_[loop].blocked_sends; }
  std::uint64_t blocked_sends() const {
    std::uint64_t sum = 0;
    for (const auto& l : loops_) sum += l.blocked_sends;
    return sum;
  }

  // True for the unit whose arrival completes the barrier; it resets the count for the next use.
  bool arrive() noexcept {
    if constexpr (Shared) {
      if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 < this->job().units) return false;
      arrived_.store(0, std::memory_order_relaxed);  // every other unit is parked: no race
      return true;
    } else {
      if (++arrived_ < this->job().units) return false;
      arrived_ = 0;
      return true;
    }
  }

  // Wakes every unit parked at the barrier: each loop cancels its own timer. `here` is the loop
  // of the caller, whose timer is cancelled directly; the others get a post. A loop whose units
  // all finished may still have that post queued when the job ends: see posted_releases().
  void release_barrier(unsigned here) {
    for (unsigned l = 0; l < loops_.size(); ++l) {
      if (l == here) {
        cancel_release(loops_[l]);
      } else {
        posted_releases_.store(true, std::memory_order_relaxed);
        asio::post(loops_[l].executor, [&loop = loops_[l]] { cancel_release(loop); });
      }
    }
  }

  // After the job: whether a release was posted to another loop. The caller then lets every
  // loop run what is queued before this state is destroyed.
  bool posted_releases() const noexcept {
    return posted_releases_.load(std::memory_order_relaxed);
  }

  // Fails every parked and later channel operation (see graph_base::claim_abort); barrier
  // waiters check the flag when the timer cancel wakes them.
  void abort(unsigned here, std::exception_ptr cause) noexcept {
    if (!this->claim_abort(std::move(cause))) return;
    try {
      this->close_channels();
      release_barrier(here);
    } catch (...) {
      // no memory to post a cancel: that loop's barrier waiters stay parked; nothing better to do
    }
  }

 private:
  static void cancel_release(graph_loop& loop) {
    if (loop.release_timer) loop.release_timer->cancel();  // no timer: nobody waits on this loop
  }

  std::vector<graph_loop> loops_;
  std::conditional_t<Shared, std::atomic<std::uint32_t>, std::uint32_t> arrived_{0};
  std::atomic<bool> posted_releases_{false};
};

// One graph unit of a graph_state or a pool_graph (asio_pool_graph.hpp), on `loop`. Its frame
// holds the unit's state and a few pointers (the fast paths are plain functions so that their
// locals stay off it); parked, the unit also owns the operation it waits on (a channel op or a
// timer wait) and that operation's awaitable frame.
// On a shared loop the unit first posts itself, so whichever thread is free starts it (co_spawn
// from a thread of the loop would run it inline on the driver's thread, and units that never
// park, as contention's, would all run there one after another).
template <class Graph>
loop_task<std::uint64_t> graph_unit(Graph& g, std::uint32_t unit, unsigned loop) {
  if constexpr (Graph::shared_loop) co_await asio::post(use_loop_task);
  const graph_job& job = g.job();
  std::byte* const message = g.message(unit);
  unit_state state;
  state.unit = unit;
  for (;;) {
    const unit_action action = job.next(state, message);
    switch (action.op) {
      case unit_op::send:
        if (!g.channel(action.target).try_send(message)) {
          g.count_blocked_send(loop);  // full: counted once, however long it waits
          auto& c = g.channel(action.target);
          co_await c.signal.async_send(asio::error_code{}, c.parked_slot(), use_loop_task);
        }
        break;
      case unit_op::receive:
        if (!g.channel(action.target).try_receive(message)) {
          g.channel(action.target)
              .copy_out(co_await g.channel(action.target).signal.async_receive(use_loop_task),
                        message);
        }
        break;
      case unit_op::lock:
        // Held by the thread running the unit, which never co_awaits before its unlock: a
        // contending thread waits only for the critical section, as a pool worker does. One
        // thread: nothing else runs between a unit's lock and unlock; the lock has nothing to do.
        if constexpr (Graph::concurrent) g.mutex(action.target).lock();
        break;
      case unit_op::unlock:
        if constexpr (Graph::concurrent) g.mutex(action.target).unlock();
        break;
      case unit_op::arrive:
        // The release completes the others' waits with operation_aborted: as_tuple takes it as
        // a value instead of an exception per unit.
        if constexpr (Graph::shared_loop) {
          g.throw_if_aborted();
          const auto [woken] = co_await g.barrier().arrive(asio::experimental::as_tuple(use_loop_task));
          g.throw_if_aborted();
          if (!woken) {  // no error: this unit arrived last
            if (job.hold.count() > 0) co_await g.barrier().hold_for(job.hold).async_wait(use_loop_task);
            g.barrier().release();
          }
        } else if (!g.arrive()) {
          g.throw_if_aborted();
          co_await g.loop(loop).release().async_wait(asio::experimental::as_tuple(use_loop_task));
          g.throw_if_aborted();
        } else {
          if (job.hold.count() > 0) {
            co_await g.loop(loop).hold_for(job.hold).async_wait(use_loop_task);
          }
          g.release_barrier(loop);
        }
        break;
      case unit_op::finish:
        co_return state.result;
    }
  }
}

// The loop of a unit on a shared loop: there is only one, loop 0, so it takes no room in a unit's
// completion handler (kept in the co_spawn frame of every unit).
struct only_loop {
  only_loop(unsigned /*loop*/) noexcept {}
  operator unsigned() const noexcept { return 0; }
};

// A unit's completion (on a shared loop, on whichever thread finished it): a failed unit aborts
// the job (the others would wait for it forever), then it counts out of its driver's wait group.
template <class Graph>
struct unit_done {
  Graph* graph;
  wait_group<Graph::shared_loop>* group;
  [[no_unique_address]] std::conditional_t<Graph::shared_loop, only_loop, unsigned> loop;
  void operator()(std::exception_ptr error, std::uint64_t value) const {
    if (error) graph->abort(loop, error);
    group->arrive(std::move(error), value);
  }
};

// Spawns units loop, loop + loops, ... on this loop and returns the sum of their results once all
// have finished. On loops of one thread each, each unit starts inline and runs until it first
// parks, and completes on this loop; on a shared loop (one driver) each posts itself before its
// first step and completes on whichever thread.
template <class Graph>
loop_task<std::uint64_t> graph_driver(Graph& g, unsigned loop) {
  const loop_executor executor = co_await asio::this_coro::executor;
  wait_group<Graph::shared_loop> group;
  loop_task<void> all_done = group.wait();
  std::exception_ptr spawn_error;
  std::uint64_t made = 0;
  for (std::uint32_t unit = loop; unit < g.job().units; unit += g.loop_count()) {
    group.add();
    try {
      // Every loop's driver makes about as many.
      if (unit_memory_watch::due(++made)) g.check_memory(made * g.loop_count());
      asio::co_spawn(executor, graph_unit(g, unit, loop), unit_done<Graph>{&g, &group, loop});
    } catch (...) {
      group.undo_add();
      spawn_error = std::current_exception();
      g.abort(loop, spawn_error);  // the units already started would wait for the missing ones
      break;
    }
  }
  co_await std::move(all_done);
  if (spawn_error) std::rethrow_exception(spawn_error);
  co_return group.result();
}

}  // namespace cmbench::detail
