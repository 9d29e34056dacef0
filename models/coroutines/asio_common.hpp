// What coroutines/asio, coroutines/asio-mt and coroutines/asio-pool share: coroutines typed on the
// io_context executor, the wait group a parent suspends on until its co_spawned children complete,
// and the per-task and per-unit coroutines. The models differ only in how many loops run them and
// how many threads run each loop.
#pragma once

// A standard header before any Asio header: Asio picks its frame allocator (aligned_alloc or
// operator new) from _GLIBCXX_HAVE_ALIGNED_ALLOC, which only <c++config.h> defines. Translation
// units that disagree free one allocator's memory with the other's (AddressSanitizer reports an
// alloc-dealloc mismatch), so every file here includes this header before any Asio header.
#include <cstddef>

#include <asio/async_result.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/multiple_exceptions.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "models/memory_limits.hpp"
#include "models/model.hpp"

#if !defined(ASIO_HAS_STD_ALIGNED_ALLOC)
#error "an Asio header was included before asio_common.hpp: Asio's allocator choice would differ"
#endif

namespace cmbench::detail {

// Everything is typed on the concrete io_context executor instead of the default
// any_io_executor: no type-erased call on every post, dispatch and work-count change.
using loop_executor = asio::io_context::executor_type;
template <class T>
using loop_task = asio::awaitable<T, loop_executor>;
inline constexpr asio::use_awaitable_t<loop_executor> use_loop_task{};
using loop_timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                              asio::wait_traits<std::chrono::steady_clock>,
                                              loop_executor>;

// A wait group: the parent counts each co_spawned child in, each child's completion handler
// counts itself out with its result, and the parent suspends once in wait() until the count is
// zero. Why this rather than the alternatives in Asio 1.22: an experimental::channel costs the
// parent one receive (a suspension or a handler hop) per child plus a buffer, and
// experimental::make_parallel_group only takes a compile-time number of operations (the ranged
// overload came in 1.24). Here a child costs one decrement, and the parent one suspension.
//
// Shared: children may complete on other threads (asio-mt's other loops, asio-pool's other
// threads), so the count, the sum and the error are atomics; otherwise plain integers (one loop
// thread touches them).
template <bool Shared>
class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Before each co_spawn. The parent's own count (the initial 1) keeps the group open while it is
  // still spawning, so an early child can never see zero.
  void add() noexcept {
    if constexpr (Shared) {
      pending_.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++pending_;
    }
  }

  // co_spawn threw: that child never started and its handler will never run.
  void undo_add() noexcept {
    if constexpr (Shared) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      --pending_;
    }
  }

  // A child's completion (its co_spawn handler). The first error wins; later ones are dropped.
  void arrive(std::exception_ptr error, std::uint64_t value) {
    if (error) {
      if constexpr (Shared) {
        if (!failed_.exchange(true, std::memory_order_relaxed)) error_ = std::move(error);
      } else {
        if (!error_) error_ = std::move(error);
      }
    } else if constexpr (Shared) {
      sum_.fetch_add(value, std::memory_order_relaxed);
    } else {
      sum_ += value;
    }
    // The parent's frame (and *this) may be gone once it resumes: nothing after this line.
    if (release()) asio::dispatch(take_waiter());
  }

  // The parent's only suspension. Call it before spawning the first child and co_await the
  // result after the last: making the awaitable allocates, and a failure must not unwind a frame
  // that children already point into. No work guard is kept for the stored handler: every child
  // still running holds outstanding work on its loop until its handler has run.
  loop_task<void> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<loop_executor>&, void()>(
        [this](waiter_type handler) {
          waiter_.emplace(std::move(handler));
          // Every child already arrived (possible when they run on other loops). We are on the
          // waiter's own loop, so dispatch resumes it inline without allocating, as Asio's own
          // co_spawn entry point does with its initial dispatch.
          if (release()) asio::dispatch(take_waiter());
        },
        use_loop_task);
  }

  // After wait(): the sum of the children's results, or the first child's exception.
  std::uint64_t result() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (Shared) {
      return sum_.load(std::memory_order_relaxed);
    } else {
      return sum_;
    }
  }

 private:
  using waiter_type =
      asio::async_result<asio::use_awaitable_t<loop_executor>, void()>::handler_type;
  using count_type = std::conditional_t<Shared, std::atomic<std::uint64_t>, std::uint64_t>;

  // True for whoever brings the count to zero: that one resumes the parent.
  bool release() noexcept {
    if constexpr (Shared) {
      // acq_rel: the resumer sees every child's sum and error, and the stored waiter.
      return pending_.fetch_sub(1, std::memory_order_acq_rel) == 1;
    } else {
      return --pending_ == 0;
    }
  }

  waiter_type take_waiter() {
    waiter_type waiter = std::move(*waiter_);
    waiter_.reset();
    return waiter;
  }

  count_type pending_{1};
  count_type sum_{0};
  std::conditional_t<Shared, std::atomic<bool>, bool> failed_{false};
  std::exception_ptr error_;
  std::optional<waiter_type> waiter_;
};

// The completion handler given to co_spawn for each child.
template <bool Shared>
struct arrive_at {
  wait_group<Shared>* group;
  void operator()(std::exception_ptr error, std::uint64_t value) const {
    group->arrive(std::move(error), value);
  }
};

// co_spawns make_child() on `executor` into `group`; false (with `error` set) if the spawn itself
// threw, e.g. std::bad_alloc for the frames: the caller stops spawning and still waits for the
// children already started, which point into its frame.
template <bool Shared, class MakeChild>
bool spawn_into(wait_group<Shared>& group, const loop_executor& executor, MakeChild&& make_child,
                std::exception_ptr& error) {
  group.add();
  try {
    asio::co_spawn(executor, std::forward<MakeChild>(make_child)(), arrive_at<Shared>{&group});
    return true;
  } catch (...) {
    group.undo_add();
    error = std::current_exception();
    return false;
  }
}

// One bulk task without waits: its rounds back to back.
inline loop_task<std::uint64_t> bulk_compute_task(const bulk_job& job, std::uint64_t task) {
  std::uint64_t sum = 0;
  for (std::uint32_t round = 0; round < job.rounds; ++round) sum += job.run_round(task, round);
  co_return sum;
}

// A bulk task without waits on a loop several threads run (asio-pool): it first re-posts itself,
// so that whichever thread is free runs it. co_spawn from a thread of the loop starts a task
// inline, so otherwise every task would run on the spawning thread, one after another.
inline loop_task<std::uint64_t> bulk_posted_compute_task(const bulk_job& job, std::uint64_t task) {
  co_await asio::post(use_loop_task);
  std::uint64_t sum = 0;
  for (std::uint32_t round = 0; round < job.rounds; ++round) sum += job.run_round(task, round);
  co_return sum;
}

// One bulk task with waits: each round suspends on its own timer, then computes on the loop (the
// order models/bulk_task.hpp keeps for the blocking models: begin_wait, the wait, the compute).
// A separate coroutine so that zero-wait tasks carry no timer in their frame.
inline loop_task<std::uint64_t> bulk_waiting_task(const bulk_job& job, std::uint64_t task) {
  loop_timer timer(co_await asio::this_coro::executor);
  std::uint64_t sum = 0;
  for (std::uint32_t round = 0; round < job.rounds; ++round) {
    job.begin_wait(task, round);
    timer.expires_after(job.wait);
    co_await timer.async_wait(use_loop_task);
    sum += job.run_round(task, round);
  }
  co_return sum;
}

// Spawns tasks first, first + stride, ... of the job on its own loop, all in flight at once, and
// returns the sum of their results. Spawning from inside the loop starts each task inline up to
// its first wait, so a task costs one post (its completion), not two as when the caller
// co_spawns every task from outside the loop before run(). SharedLoop: several threads run the
// loop (asio-pool); tasks complete on any of them, and a task without waits is posted instead, so
// that every thread takes tasks from the loop's queue.
template <bool SharedLoop = false>
loop_task<std::uint64_t> bulk_driver(const bulk_job& job, std::uint64_t first, std::uint64_t stride) {
  const loop_executor executor = co_await asio::this_coro::executor;
  const bool waits = job.wait.count() > 0;
  wait_group<SharedLoop> group;  // the tasks run and complete on this loop (on any of its threads)
  loop_task<void> all_done = group.wait();
  std::exception_ptr spawn_error;
  unsigned spawned_since_yield = 0;
  for (std::uint64_t task = first; task < job.tasks; task += stride) {
    const bool spawned = spawn_into(
        group, executor,
        [&] {
          return waits        ? bulk_waiting_task(job, task)
                 : SharedLoop ? bulk_posted_compute_task(job, task)
                              : bulk_compute_task(job, task);
        },
        spawn_error);
    if (!spawned) break;
    // A task that does not wait finishes inside co_spawn and posts its completion; yielding
    // now and then runs those completions (and recycles their memory) instead of queueing up
    // one per task. Tasks that wait stay in flight: this only lets finished ones report.
    // SharedLoop: the yield queues behind the tasks just posted, so this thread takes its share
    // of them before it spawns more (at most about 1024 tasks wait in the queue).
    if (++spawned_since_yield == 1024) {
      spawned_since_yield = 0;
      std::optional<loop_task<void>> yield;
      try {
        yield.emplace(asio::post(executor, use_loop_task));
      } catch (const std::bad_alloc&) {
        // no memory for the yield: skip it, the tasks are unaffected
      }
      if (yield) co_await std::move(*yield);
    }
  }
  co_await std::move(all_done);
  if (spawn_error) std::rethrow_exception(spawn_error);
  co_return group.result();
}

// Placement of tree units on loops, provided by each model:
//   static constexpr bool multi_loop;                       false: everything on one loop
//   static constexpr bool shared_loop;                      several threads run each loop (asio-pool)
//   loop_executor executor(unsigned loop) const;
//   bool spreads(std::uint64_t child_leaves) const;         children of this size go to other loops
//   unsigned child_loop(unsigned parent_loop, std::uint32_t child) const;
// On a shared loop, `loop` only labels a share of the tree: a child with another label than its
// parent's is posted (Hop) so that whichever thread is free runs it, since co_spawn from a thread
// of the loop would start it inline; and any child may complete on another thread.
template <class Placement, bool Spread, bool Hop = false>
loop_task<std::uint64_t> tree_unit(const Placement& placement, unsigned loop, std::uint64_t first,
                                   std::uint64_t leaves, const tree_job& job);

// The unit covering `leaves`, typed on whether its children run on other loops: a unit whose
// children all stay on its own loop joins them with plain integers, not atomics. `hop`: a spread
// child on a shared loop, posted before it starts.
template <class Placement>
loop_task<std::uint64_t> make_tree_unit(const Placement& placement, unsigned loop,
                                        std::uint64_t first, std::uint64_t leaves,
                                        const tree_job& job, bool hop = false) {
  if constexpr (Placement::multi_loop) {
    if (leaves > 1 && placement.spreads(leaves / job.fanout)) {
      if constexpr (Placement::shared_loop) {
        if (hop) return tree_unit<Placement, true, true>(placement, loop, first, leaves, job);
      }
      return tree_unit<Placement, true>(placement, loop, first, leaves, job);
    }
  }
  if constexpr (Placement::shared_loop) {
    if (hop) return tree_unit<Placement, false, true>(placement, loop, first, leaves, job);
  }
  return tree_unit<Placement, false>(placement, loop, first, leaves, job);
}

// One tree unit: a leaf returns the job's leaf value of its index; an inner unit co_spawns its `fanout` children as
// tasks, suspends until all of them complete and returns their sum.
template <class Placement, bool Spread, bool Hop>
loop_task<std::uint64_t> tree_unit(const Placement& placement, unsigned loop, std::uint64_t first,
                                   std::uint64_t leaves, const tree_job& job) {
  if constexpr (Hop) co_await asio::post(use_loop_task);
  if (leaves == 1) co_return job.leaf_value(first);
  const std::uint32_t fanout = job.fanout;
  const std::uint64_t child_leaves = leaves / fanout;
  wait_group<Spread || Placement::shared_loop> group;
  loop_task<void> all_done = group.wait();
  std::exception_ptr spawn_error;
  // A child spawned on this loop starts inline and spawns its whole subtree before co_spawn
  // returns, so when spreading, the children for other loops are spawned first (pass 0) and
  // those loops start working at once; the local ones follow (pass 1).
  for (int pass = Spread ? 0 : 1; pass < 2 && !spawn_error; ++pass) {
    for (std::uint32_t child = 0; child < fanout; ++child) {
      const unsigned child_loop = Spread ? placement.child_loop(loop, child) : loop;
      if ((child_loop == loop) != (pass == 1)) continue;
      const bool spawned = spawn_into(
          group, placement.executor(child_loop),
          [&] {
            if constexpr (Placement::shared_loop) {
              return make_tree_unit(placement, child_loop, first + child * child_leaves,
                                    child_leaves, job, child_loop != loop);
            } else {
              return make_tree_unit(placement, child_loop, first + child * child_leaves,
                                    child_leaves, job);
            }
          },
          spawn_error);
      if (!spawned) break;
    }
  }
  co_await std::move(all_done);
  if (spawn_error) std::rethrow_exception(spawn_error);
  co_return group.result();
}

// A job's outcome as delivered by its root coroutine's completion handler.
struct job_outcome {
  std::uint64_t value = 0;
  std::exception_ptr error;
};

// Rethrows a job's exception; running out of memory (which Asio may report as the first of its
// multiple_exceptions) becomes the limit_error the harness reports.
[[noreturn]] inline void rethrow_job_error(const std::exception_ptr& error, std::string_view model,
                                           std::string_view where = "while allocating coroutine frames") {
  try {
    std::rethrow_exception(error);
  } catch (const std::bad_alloc&) {
    throw limit_error(std::string(model) + ": out of memory (limit: memory) " + std::string(where) + " (" +
                      describe_address_space() + ")");
  } catch (const asio::multiple_exceptions& e) {
    if (e.first_exception()) rethrow_job_error(e.first_exception(), model, where);
    throw;
  }
}

inline std::uint64_t job_result(const job_outcome& outcome, std::string_view model) {
  if (!outcome.error) return outcome.value;
  rethrow_job_error(outcome.error, model);
}

}  // namespace cmbench::detail
