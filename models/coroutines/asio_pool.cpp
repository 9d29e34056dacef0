// coroutines/asio-pool: one io_context run by W threads, Asio's most common multi-threaded pattern
// (Asio's and Beast's multi-threaded servers: `io_context ioc{W}`, W threads calling ioc.run()).
// Beside coroutines/asio-mt (one io_context per thread): here every handler goes through the one
// scheduler queue, under its mutex, and runs on whichever thread takes it.
#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration
#include "models/coroutines/asio_jobs.hpp"
#include "models/coroutines/asio_pool_graph.hpp"
#include "models/coroutines/asio_remote.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <latch>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "models/floors/probe_support.hpp"
#include "models/floors/probes.hpp"
#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/thread_limits.hpp"

namespace cmbench {
namespace detail {
namespace {

// The loop: one io_context (concurrency hint W: Asio then locks its queue, and a post from one of
// its threads goes to the shared queue, waking an idle thread, rather than to that thread's
// private queue) run by W threads, kept alive between jobs by a work guard. Everything a job
// touches lives here, so that if Asio ever throws out of a thread's run() the loop can be stopped
// and destroyed (with the frames suspended in it) and built afresh.
class shared_loop : public job_tracker {
 public:
  // If a thread (or the memory for the loop) cannot be had, the threads already started are
  // stopped and joined before the limit_error leaves: a joinable std::thread destroyed with the
  // vector would call std::terminate.
  explicit shared_loop(unsigned count) : io_(static_cast<int>(count)), guard_(io_.get_executor()) {
    try {
      threads_.reserve(count);
      for (unsigned i = 0; i < count; ++i) threads_.emplace_back([this] { run(); });
    } catch (const std::system_error& e) {
      // Read while the loop's threads are alive: they are what the thread counts count.
      const std::string why = describe_thread_failure_safely(e);
      const std::size_t started = threads_.size();
      halt();
      throw limit_error(std::string(pool_model_name) + ": could only start " + std::to_string(started) + " of " +
                        std::to_string(count) + " threads running the io_context: " + why);
    } catch (const std::bad_alloc&) {
      const std::size_t started = threads_.size();
      halt();
      throw limit_error(std::string(pool_model_name) + ": out of memory setting up " + std::to_string(count) +
                        " threads running the io_context (" + std::to_string(started) + " started; " +
                        describe_address_space() + ")");
    }
  }

  shared_loop(const shared_loop&) = delete;
  shared_loop& operator=(const shared_loop&) = delete;

  ~shared_loop() { halt(); }

  // Stops every thread; the io_context (and the frames queued in it) stays until destruction, so
  // objects bound to it can still be destroyed first.
  void halt() {
    if (failed()) io_.stop();  // the failed job's handlers are destroyed with the io_context
    guard_.reset();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  loop_executor executor() { return io_.get_executor(); }

 private:
  // When a thread fails, the others go on running the loop until the caller stops it.
  void run() { run_loop(io_); }

  asio::io_context io_;
  asio::executor_work_guard<loop_executor> guard_;
  std::vector<std::thread> threads_;
};

// Tree placement on the shared loop: as asio-mt spreads the children of big subtrees round-robin
// over its loops, the same children are posted here (labelled with another share than their
// parent's), so an idle thread takes them from the queue; a subtree smaller than `grain` leaves
// runs inline on its parent's thread. Every join is atomic all the same: a child that never
// suspends (a leaf) posts its completion, and any thread may run it.
struct pool_shares {
  static constexpr bool multi_loop = true;
  static constexpr bool shared_loop = true;
  loop_executor loop;
  unsigned count;
  std::uint64_t grain;

  loop_executor executor(unsigned /*share*/) const { return loop; }
  bool spreads(std::uint64_t child_leaves) const { return count > 1 && child_leaves >= grain; }
  unsigned child_loop(unsigned parent_share, std::uint32_t child) const {
    return static_cast<unsigned>((parent_share + child) % count);
  }
};

// asio-mt's grain (subtrees of at least 1000 leaves, ~0.3 ms of work each, are spread): posting
// every child would add a post through the shared queue to every unit.
constexpr std::uint64_t pool_tree_grain = 1000;

// The floor of this model's hand-off: two handlers posting each other through one io_context run
// by two threads. Each post takes the queue's mutex and signals the other thread if it sleeps; the
// posting thread, back in run(), usually takes the handler itself before the woken one gets there,
// so the round trips mix same-thread and cross-thread hand-offs as the scheduler decides, as the
// model's do (a row's handoffs_crossed says how many of its own crossed).
struct pool_volley {
  asio::io_context* io;
  floors::round_trip_clock clock;
  floors::completion done;
};

struct pool_pong {
  pool_volley* v;
  std::uint64_t i;
  void operator()() const;
};

// Ping i posts pong i; pong i posts ping i + 1.
struct pool_ping {
  pool_volley* v;
  std::uint64_t i;
  void operator()() const {
    if (v->clock.ping(i)) {
      v->done.signal();
      return;
    }
    asio::post(*v->io, pool_pong{v, i});
  }
};

void pool_pong::operator()() const { asio::post(*v->io, pool_ping{v, i + 1}); }

std::int64_t asio_pool_post_round_trip_on(floors::placement where, std::uint64_t n,
                                          std::vector<std::uint32_t>* each) {
  const auto [cpu_a, cpu_b] = floors::cpus_for(where);
  asio::io_context io(2);
  auto guard = asio::make_work_guard(io);
  std::exception_ptr failures[2];
  std::latch running(2);
  std::vector<std::thread> threads;
  auto stop = [&] {
    guard.reset();
    for (auto& t : threads) t.join();
  };
  try {
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t, cpu = t == 0 ? cpu_a : cpu_b] {
        std::optional<floors::pinned> on;  // the thread ends unpinned with it
        try {
          on.emplace(cpu);
        } catch (...) {
          failures[t] = std::current_exception();
        }
        running.count_down();
        if (!failures[t]) io.run();
      });
    }
  } catch (...) {
    stop();  // the thread that started is not waited for: it runs until the guard goes
    throw;
  }
  // Both threads in (or about to enter) run() before the volley starts.
  running.wait();
  for (const auto& failure : failures) {
    if (failure) {
      stop();
      std::rethrow_exception(failure);
    }
  }
  pool_volley v{&io, floors::round_trip_clock(n, each), {}};
  asio::post(io, pool_ping{&v, 0});
  v.done.wait();
  stop();
  return v.clock.total();
}

}  // namespace
}  // namespace detail

class asio_pool {
 public:
  static constexpr model_info info{
      .family = "coroutines",
      .variant = "asio-pool",
      .description = "one Asio io_context run by W threads, C++20 coroutines",
      .order = 32,
      .mechanism = {
          .summary = "one io_context (concurrency hint W) run by W threads, as in Asio's multi-threaded servers; "
                     "max_alive is ignored",
          .unit = "an asio::awaitable started with co_spawn by one driver; a bulk task that waits starts inline "
                  "and arms its timer, one that does not first re-posts itself (co_await asio::post) so whichever "
                  "thread is free runs it; graph units are each first posted to the queue so whichever thread "
                  "is free starts it",
          .tree = "children of large subtrees are posted to the queue, small subtrees run inline on their "
                  "parent's thread; a parent suspends on an atomic wait group (children complete on any thread)",
          .channel = "an asio::experimental::concurrent_channel of the job's capacity carrying slot indices into a "
                     "capacity+2 message ring (no allocation per message); try_send / try_receive first, then "
                     "co_await async_send / async_receive; no strand: a unit is one coroutine with one operation "
                     "at a time",
          .mutex = "a std::mutex held by the running thread between lock and unlock (no unit co_awaits while "
                   "holding one, so a contending thread waits only for the critical section)",
          .barrier = "a count and one steady_timer at time_point::max() under a std::mutex (a timer is not "
                     "thread-safe); the last arriver co_awaits the hold on a timer, then cancels the timer under "
                     "the lock, which queues every waiter for whichever thread is free",
          .wait = "a steady_timer async_wait; every wait parks the coroutine and an idle thread sleeps on the "
                  "io_context's condition variable (one of them in epoll once a timer exists; no spin); the "
                  "caller blocks on an atomic wait",
          .handoff = "every handler goes through the io_context's one queue under its mutex: the waker posts the "
                     "parked coroutine's resumption there and whichever of the W threads (started at setup with a "
                     "work guard) pops it first runs it, often the waker's own once it parks",
          .results = "atomic sums across the threads",
          .calls = "min(C, tasks) coroutines on the one io_context, each taking the next task from an atomic counter "
                   "and calling its node (task t -> node t % nodes) on its own Asio socket to that node, with one "
                   "operation at a time (no strand); their "
                   "completions run on whichever thread is free; one timer at the deadline shuts every socket down",
          .serves = "an acceptor coroutine co_spawns a coroutine per connection on the one io_context, run by "
                    "whichever of the W threads is free; each request's wait is a steady_timer async_wait",
      },
      .round_trip_floor = "asio_pool_post_round_trip",
      .waits = wait_capacity::every_task,
      .serves = wait_capacity::every_task,
  };

  explicit asio_pool(const model_config& config)
      : loop_(config.workers, detail::pool_model_name, "in an event loop thread") {}

  std::uint64_t run_bulk(const bulk_job& job) {
    return run_root([&job] { return detail::bulk_driver<true>(job, 0, 1); });
  }

  std::uint64_t run_tree(const tree_job& job) {
    const detail::pool_shares placement{loop_.ready()->executor(), loop_.workers(), detail::pool_tree_grain};
    return run_root([&] { return detail::make_tree_unit(placement, 0, 0, job.leaves, job); });
  }

  std::uint64_t run_scatter(const scatter_job& job) {
    const detail::loop_executor loop = loop_.ready()->executor();
    return run_root([&] { return detail::scatter_driver<true>(job, detail::remote_loops{&loop, 1}); });
  }

  // The acceptor and every connection on the one io_context, run by its W threads; the caller
  // blocks until the stop descriptor has ended them all.
  void serve(const serve_job& job) {
    detail::node_run node(job);  // before begin_job: nothing may throw between it and the hand-off
    detail::shared_loop* pool = loop_.begin_job();
    node.on_all_done([](void* loop) { static_cast<detail::shared_loop*>(loop)->job_done(); }, pool);
    const detail::loop_executor loop = pool->executor();
    try {
      asio::co_spawn(loop, detail::accept_loop(node, detail::remote_loops{&loop, 1}), detail::acceptor_done{&node});
    } catch (...) {
      node.failure = std::current_exception();
      node.leave();
    }
    loop_.wait_job();
    if (node.failure) detail::rethrow_job_error(node.failure, detail::pool_model_name, "while serving");
  }

  graph_result run_graph(const graph_job& job) {
    graph_result result;
    // Bound to the loop: if a thread fails, it is destroyed after the threads stop and before the
    // io_context goes (see job_loops::wait_job).
    auto graph = std::make_unique<detail::pool_graph>(job, loop_.ready()->executor());
    try {
      result.checksum =
          run_root([&graph] { return detail::graph_driver(*graph, 0); }, [&graph] { graph.reset(); });
    } catch (...) {
      // Report what made the job abort, not the cancellations it caused in the other units.
      if (!graph || !graph->abort_cause()) throw;
      detail::job_result({0, graph->abort_cause()}, detail::pool_model_name);  // throws it
      throw;
    }
    result.blocked_sends = graph->blocked_sends();  // the threads' writes were released by job_done
    return result;
  }

 private:
  // co_spawns the job's root coroutine from this thread, which does not run the loop, so it is
  // queued for whichever thread is free; blocks until its completion handler has run.
  // before_reset runs if a thread failed, after every thread stopped.
  template <class MakeRoot, class BeforeReset = void (*)()>
  std::uint64_t run_root(MakeRoot make_root, BeforeReset before_reset = [] {}) {
    detail::job_outcome outcome;
    detail::shared_loop* pool = loop_.begin_job();  // nothing may throw between this and the hand-off below
    try {
      asio::co_spawn(pool->executor(), make_root(), [&outcome, pool](std::exception_ptr error, std::uint64_t value) {
        outcome = {value, std::move(error)};
        pool->job_done();
      });
    } catch (...) {
      outcome.error = std::current_exception();
      pool->job_done();
    }
    loop_.wait_job(before_reset);
    return detail::job_result(outcome, detail::pool_model_name);
  }

  detail::job_loops<detail::shared_loop> loop_;
};

CMBENCH_REGISTER_MODEL(asio_pool);

CMBENCH_REGISTER_PROBE(asio_pool_post_round_trip,
                       "two handlers posting each other through one io_context run by 2 threads (the shared queue "
                       "and its wake-ups; either thread may run either handler)",
                       "round trip",
                       floors::placed<detail::asio_pool_post_round_trip_on, floors::placement::any>, true);
CMBENCH_REGISTER_PROBE(asio_pool_post_round_trip_same_cpu, "the same with both threads pinned to one CPU",
                       "round trip",
                       floors::placed<detail::asio_pool_post_round_trip_on, floors::placement::same_cpu>, true);
CMBENCH_REGISTER_PROBE(asio_pool_post_round_trip_cross_cpu,
                       "the same with the two threads pinned to two different CPUs", "round trip",
                       floors::placed<detail::asio_pool_post_round_trip_on, floors::placement::cross_cpu>, true);

}  // namespace cmbench
