// coroutines/asio-mt: W event loops on W threads, one io_context per thread.
#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration
#include "models/coroutines/asio_graph.hpp"
#include "models/coroutines/asio_jobs.hpp"
#include "models/coroutines/asio_remote.hpp"

#include <asio/executor_work_guard.hpp>

#include <atomic>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/system_limits.hpp"
#include "models/thread_limits.hpp"

namespace cmbench {
namespace detail {
namespace {

// The loops: one io_context per thread (concurrency hint 1: only its own thread runs it, so posts
// from that thread go to its private queue), each kept alive between jobs by a work guard.
// Everything a job touches lives here, so that if Asio ever throws out of a loop's run() the
// whole set can be stopped and destroyed (with the frames suspended in it) and built afresh.
class loop_set : public job_tracker {
 public:
  // If a thread (or the memory for a loop) cannot be had, the threads already started are
  // stopped and joined before the limit_error leaves: a joinable std::thread destroyed with the
  // vector would call std::terminate.
  explicit loop_set(unsigned count) {
    unsigned started = 0;
    try {
      loops_.reserve(count);
      executors_.reserve(count);
      for (unsigned i = 0; i < count; ++i) {
        loops_.push_back(std::make_unique<loop>());
        executors_.push_back(loops_.back()->io.get_executor());
      }
      for (auto& l : loops_) {
        l->thread = std::thread([this, &l = *l] { run(l); });
        ++started;
      }
    } catch (const std::system_error& e) {
      // Read while the loops' threads are alive: they are what the thread counts count.
      const std::string why = describe_thread_failure_safely(e);
      halt();
      throw limit_error("coroutines/asio-mt: could only start " + std::to_string(started) + " of " +
                        std::to_string(count) + " event loop threads: " + why);
    } catch (const std::bad_alloc&) {
      halt();
      throw limit_error("coroutines/asio-mt: out of memory setting up " + std::to_string(count) +
                        " event loops (" + std::to_string(loops_.size()) + " made, " +
                        std::to_string(started) + " threads started; " +
                        describe_address_space() + ")");
    }
  }

  loop_set(const loop_set&) = delete;
  loop_set& operator=(const loop_set&) = delete;

  ~loop_set() { halt(); }

  // Stops every thread; the io_contexts (and the frames queued in them) stay until destruction,
  // so objects bound to them can still be destroyed first.
  void halt() {
    const bool abandon = failed();
    for (auto& l : loops_) {
      if (abandon) l->io.stop();  // the failed job's handlers are destroyed with the io_contexts
      l->guard.reset();
    }
    // Every thread stops before any io_context (and the frames queued in it) is destroyed.
    for (auto& l : loops_) {
      if (l->thread.joinable()) l->thread.join();
    }
  }

  unsigned size() const { return static_cast<unsigned>(executors_.size()); }
  const loop_executor* executors() const { return executors_.data(); }
  const loop_executor& executor(unsigned i) const { return executors_[i]; }

 private:
  struct loop {
    asio::io_context io{1};
    asio::executor_work_guard<loop_executor> guard{io.get_executor()};
    std::thread thread;
  };

  // A loop that fails runs nothing more, so no frame it holds is destroyed while another loop may
  // still touch it; the caller stops the other loops before destroying any io_context.
  void run(loop& l) { run_loop(l.io); }

  std::vector<std::unique_ptr<loop>> loops_;
  std::vector<loop_executor> executors_;
};

// Tree placement: children of big subtrees go round-robin across the loops, starting at the
// parent's; a subtree smaller than `grain` leaves stays on its parent's loop, where a child's
// spawn and completion are private-queue posts and its join needs no atomics.
struct spread_loops {
  static constexpr bool multi_loop = true;
  static constexpr bool shared_loop = false;  // one thread per loop
  const loop_executor* loops;
  unsigned count;
  std::uint64_t grain;

  loop_executor executor(unsigned loop) const { return loops[loop]; }
  bool spreads(std::uint64_t child_leaves) const {
    return count > 1 && child_leaves >= grain;
  }
  unsigned child_loop(unsigned parent_loop, std::uint32_t child) const {
    return static_cast<unsigned>((parent_loop + child) % count);
  }
};

// Measured (1M leaves, fanout 10, 2 loops): spreading every child across the loops costs
// ~0.8 us a unit (a cross-thread post per child), keeping all on one loop ~0.3 us; spreading
// only subtrees of at least 1000 leaves (~0.3 ms of work each) gives ~0.16 us, and keeps trees
// as small as 10^4 leaves parallel.
constexpr std::uint64_t tree_grain = 1000;

}  // namespace
}  // namespace detail

class asio_mt {
 public:
  static constexpr model_info info{
      .family = "coroutines",
      .variant = "asio-mt",
      .description = "W Asio io_contexts on W threads, C++20 coroutines",
      .order = 31,
      .mechanism = {
          .summary = "one io_context (concurrency hint 1) per worker thread, started at setup with a work guard; "
                     "max_alive is ignored",
          .unit = "an asio::awaitable started with co_spawn; bulk tasks and graph units go round-robin to the loops, "
                  "each loop's driver starting its share inline",
          .tree = "children of large subtrees go round-robin across loops, small subtrees stay on their parent's "
                  "loop; a parent suspends on an atomic wait group",
          .channel = "an asio::experimental::concurrent_channel of the job's capacity carrying slot indices into a "
                     "capacity+2 message ring (no allocation per message); try_send / try_receive first, then "
                     "co_await async_send / async_receive",
          .mutex = "a std::mutex held by the loop thread between lock and unlock (no unit co_awaits while holding "
                   "one, so a contending loop waits only for the critical section)",
          .barrier = "an atomic count and one steady_timer per loop at time_point::max(); the last arriver co_awaits "
                     "the hold on a timer, then cancels every loop's timer on that loop",
          .wait = "a steady_timer async_wait; every wait parks the coroutine and an idle loop sleeps in the kernel "
                  "(no spin); the caller blocks on an atomic wait",
          .handoff = "the waker posts the parked coroutine to its own loop, often another thread's",
          .results = "each loop's driver sums its share in plain integers and the caller adds the W drivers' "
                     "results; only a tree parent with children on other loops sums atomically",
          .calls = "min(C, tasks) coroutines spread round robin over the loops, each taking the next task from an "
                   "atomic counter and calling its node (task t -> node t % nodes) on its own Asio socket to that node; one timer at the deadline shuts "
                   "every socket down",
          .serves = "an acceptor coroutine on loop 0 hands each accepted socket to the next loop round robin as a "
                    "coroutine of its own; each request's wait is a steady_timer async_wait on that loop",
      },
      .round_trip_floor = "asio_cross_loop_round_trip_cross_cpu",
      .waits = wait_capacity::every_task,
      .serves = wait_capacity::every_task,
  };

  explicit asio_mt(const model_config& config) : loops_(config.workers, model_name, "in an event loop") {}

  std::uint64_t run_bulk(const bulk_job& job) {
    return run_drivers([&job](unsigned loop, unsigned count) {
      return detail::bulk_driver(job, loop, count);
    });
  }

  graph_result run_graph(const graph_job& job) {
    detail::loop_set* loops = loops_.ready();
    graph_result result;
    // Bound to the loops: if a loop fails, it is destroyed after the threads stop and before the
    // io_contexts go (see job_loops::wait_job).
    auto graph =
        std::make_unique<detail::graph_state<true>>(job, loops->executors(), loops->size());
    try {
      result.checksum = run_drivers(
          [&graph](unsigned loop, unsigned /*count*/) {
            return detail::graph_driver(*graph, loop);
          },
          [&graph] { graph.reset(); });
    } catch (...) {
      // Report what made the job abort, not the cancellations it caused in the other units.
      if (!graph || !graph->abort_cause()) throw;
      drain_releases(graph);
      detail::job_result({0, graph->abort_cause()}, model_name);  // throws it
      throw;
    }
    drain_releases(graph);
    result.blocked_sends = graph->blocked_sends();  // the loops' writes were released by job_done
    return result;
  }

  std::uint64_t run_tree(const tree_job& job) {
    detail::loop_set* loops = loops_.begin_job();
    const detail::spread_loops placement{loops->executors(), loops->size(),
                                         detail::tree_grain};
    detail::job_outcome outcome;
    try {
      asio::co_spawn(loops->executor(0),
                     detail::make_tree_unit(placement, 0, 0, job.leaves, job),
                     [&outcome, loops](std::exception_ptr error, std::uint64_t value) {
                       outcome = {value, std::move(error)};
                       loops->job_done();
                     });
    } catch (...) {
      outcome.error = std::current_exception();
      loops->job_done();
    }
    loops_.wait_job();
    return detail::job_result(outcome, model_name);
  }

  std::uint64_t run_scatter(const scatter_job& job) {
    detail::loop_set* loops = loops_.begin_job();
    detail::job_outcome outcome;
    try {
      asio::co_spawn(loops->executor(0),
                     detail::scatter_driver<true>(job, detail::remote_loops{loops->executors(), loops->size()}),
                     [&outcome, loops](std::exception_ptr error, std::uint64_t value) {
                       outcome = {value, std::move(error)};
                       loops->job_done();
                     });
    } catch (...) {
      outcome.error = std::current_exception();
      loops->job_done();
    }
    loops_.wait_job();
    return detail::job_result(outcome, model_name);
  }

  // The acceptor on loop 0, the connections round robin over every loop; the caller blocks until
  // the stop descriptor has ended them all.
  void serve(const serve_job& job) {
    detail::node_run node(job);  // before begin_job: nothing may throw between it and the hand-off
    detail::loop_set* loops = loops_.begin_job();
    node.on_all_done([](void* set) { static_cast<detail::loop_set*>(set)->job_done(); }, loops);
    try {
      asio::co_spawn(loops->executor(0),
                     detail::accept_loop(node, detail::remote_loops{loops->executors(), loops->size()}),
                     detail::acceptor_done{&node});
    } catch (...) {
      node.failure = std::current_exception();
      node.leave();
    }
    loops_.wait_job();
    if (node.failure) detail::rethrow_job_error(node.failure, model_name, "while serving");
  }

 private:
  static constexpr std::string_view model_name = "coroutines/asio-mt";

  // Runs make_driver(loop, loops) on every loop and returns the sum of their results, once every
  // driver has finished. before_reset runs if a loop failed, after its thread stopped.
  template <class MakeDriver, class BeforeReset = void (*)()>
  std::uint64_t run_drivers(MakeDriver make_driver, BeforeReset before_reset = [] {}) {
    std::vector<detail::job_outcome> outcomes(loops_.workers());
    detail::loop_set* loops = loops_.begin_job();
    const unsigned count = loops->size();
    // The caller's own count keeps the job open while it spawns the drivers.
    std::atomic<unsigned> pending{1};
    std::exception_ptr spawn_error;
    for (unsigned i = 0; i < count && !spawn_error; ++i) {
      pending.fetch_add(1, std::memory_order_relaxed);
      try {
        asio::co_spawn(
            loops->executor(i), make_driver(i, count),
            [&outcomes, &pending, loops, i](std::exception_ptr error, std::uint64_t value) {
              outcomes[i] = {value, std::move(error)};
              if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) loops->job_done();
            });
      } catch (...) {
        pending.fetch_sub(1, std::memory_order_relaxed);
        spawn_error = std::current_exception();
      }
    }
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      loops->job_done();  // every driver finished before the caller let go
    }
    detail::job_outcome total{0, spawn_error};
    loops_.wait_job(before_reset);
    for (const auto& outcome : outcomes) {
      if (outcome.error && !total.error) total.error = outcome.error;
      total.value += outcome.value;
    }
    return detail::job_result(total, model_name);
  }

  // A barrier release posted to a loop whose units had all finished may still be queued there:
  // a fence posted to every loop after it (the queue is FIFO) has run once the release has.
  void drain_releases(std::unique_ptr<detail::graph_state<true>>& graph) {
    if (!graph->posted_releases()) return;
    detail::loop_set* loops = loops_.get();
    for (unsigned i = 0; i < loops->size(); ++i) {
      loops_.begin_job();
      try {
        asio::post(loops->executor(i), [loops] { loops->job_done(); });
      } catch (...) {
        loops->job_done();  // no memory for the fence: the wait below covers the others
      }
    }
    loops_.wait_job([&graph] { graph.reset(); });
  }

  detail::job_loops<detail::loop_set> loops_;
};

CMBENCH_REGISTER_MODEL(asio_mt);

}  // namespace cmbench
