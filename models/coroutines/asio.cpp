// coroutines/asio: one io_context run by one thread, C++20 coroutines (as Python's asyncio).
#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration
#include "models/coroutines/asio_graph.hpp"
#include "models/coroutines/asio_remote.hpp"

#include <memory>
#include <stdexcept>

#include "models/model.hpp"

namespace cmbench {
namespace detail {
namespace {

// Every tree unit on the one loop; children complete on the loop that waits for them.
struct one_loop {
  static constexpr bool multi_loop = false;
  static constexpr bool shared_loop = false;
  loop_executor loop;
  loop_executor executor(unsigned /*loop*/) const { return loop; }
  bool spreads(std::uint64_t /*child_leaves*/) const { return false; }
  unsigned child_loop(unsigned parent_loop, std::uint32_t /*child*/) const { return parent_loop; }
};

}  // namespace
}  // namespace detail

class asio_single {
 public:
  static constexpr model_info info{
      .family = "coroutines",
      .variant = "asio",
      .description = "one Asio io_context on one thread, C++20 coroutines (asyncio)",
      .order = 30,
      .mechanism = {
          .summary = "one io_context (concurrency hint 1) run on the calling thread; workers and max_alive are "
                     "ignored",
          .unit = "an asio::awaitable started with co_spawn, every task at once; graph units are started inline by "
                  "a driver on the loop, each looping over next()",
          .tree = "a parent co_spawns its children and suspends on a wait group until their completion handlers "
                  "count out",
          .channel = "an asio::experimental::channel of the job's capacity carrying slot indices into a capacity+2 "
                     "message ring (bytes copied in and out, no allocation per message); try_send / try_receive "
                     "first, then co_await async_send / async_receive",
          .mutex = "nothing to do: one thread, and no unit co_awaits while holding one",
          .barrier = "a steady_timer at time_point::max() that waiters async_wait on; the last arriver co_awaits the "
                     "hold on a timer, then cancels it",
          .wait = "a steady_timer async_wait; every wait parks the coroutine and the idle loop sleeps in the kernel "
                  "(no spin)",
          .handoff = "the woken coroutine is resumed by a post to the one loop",
          .results = "summed by the coroutines on the loop thread",
          .calls = "min(C, tasks) coroutines on the one loop, each pulling the next task from a shared counter and "
                   "calling its node (task t -> node t % nodes) on its own Asio socket to that node; async_write the request, async_read the result; one "
                   "timer at the deadline shuts every socket down",
          .serves = "an acceptor coroutine co_spawns a coroutine per connection on the one loop; each request's wait "
                    "is a steady_timer async_wait, so every connection's request is held at once",
      },
      .round_trip_floor = "asio_post_round_trip",
      .waits = wait_capacity::every_task,
      .serves = wait_capacity::every_task,
  };

  explicit asio_single(const model_config& /*config*/)
      : io_(std::make_unique<asio::io_context>(1)) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    return run([&] { return detail::bulk_driver(job, 0, 1); });
  }

  graph_result run_graph(const graph_job& job) {
    graph_result result;
    const asio::io_context::executor_type loop = io_->get_executor();
    // The channels and timers are bound to io_: if run() throws, they are destroyed (handing
    // their parked frames back to io_ for destruction) before io_ is replaced.
    auto graph = std::make_unique<detail::graph_state<false>>(job, &loop, 1);
    try {
      result.checksum =
          run([&] { return detail::graph_driver(*graph, 0); }, [&] { graph.reset(); });
    } catch (...) {
      // Report what made the job abort, not the cancellations it caused in the other units.
      if (!graph || !graph->abort_cause()) throw;
      detail::job_result({0, graph->abort_cause()}, "coroutines/asio");  // throws it
      throw;
    }
    result.blocked_sends = graph->blocked_sends();
    return result;
  }

  std::uint64_t run_tree(const tree_job& job) {
    const detail::one_loop placement{io_->get_executor()};
    return run([&] { return detail::make_tree_unit(placement, 0, 0, job.leaves, job); });
  }

  std::uint64_t run_scatter(const scatter_job& job) {
    const detail::loop_executor loop = io_->get_executor();
    return run([&] { return detail::scatter_driver<false>(job, detail::remote_loops{&loop, 1}); });
  }

  // The acceptor and every connection on the one loop, run on the calling thread until the stop
  // descriptor ends them all (the loop then runs out of work).
  void serve(const serve_job& job) {
    detail::node_run node(job);
    const detail::loop_executor loop = io_->get_executor();
    try {
      asio::co_spawn(loop, detail::accept_loop(node, detail::remote_loops{&loop, 1}), detail::acceptor_done{&node});
      io_->run();
      io_->restart();
    } catch (...) {
      // As run(): Asio threw out of run(); the frames pointing into `node` go with the loop.
      node.failure = std::current_exception();
      io_ = std::make_unique<asio::io_context>(1);
    }
    if (node.failure) detail::rethrow_job_error(node.failure, "coroutines/asio", "while serving");
  }

 private:
  // co_spawns the job's root coroutine and runs the loop on this thread until no work is left.
  template <class MakeRoot, class BeforeReset = void (*)()>
  std::uint64_t run(MakeRoot&& make_root, BeforeReset before_reset = [] {}) {
    detail::job_outcome outcome;
    bool completed = false;
    try {
      asio::co_spawn(io_->get_executor(), std::forward<MakeRoot>(make_root)(),
                     [&](std::exception_ptr error, std::uint64_t value) {
                       outcome = {value, std::move(error)};
                       completed = true;
                     });
      io_->run();
      io_->restart();
    } catch (...) {
      // Asio itself threw out of run() (it could not allocate an operation): suspended frames
      // point into this call, so destroy them with the loop and start a fresh one.
      outcome.error = std::current_exception();
      completed = true;
      before_reset();
      io_ = std::make_unique<asio::io_context>(1);
    }
    // A loop that ran out of work without the root's completion lost a handler.
    if (!completed) throw std::runtime_error("coroutines/asio: the event loop lost a completion");
    return detail::job_result(outcome, "coroutines/asio");
  }

  std::unique_ptr<asio::io_context> io_;
};

CMBENCH_REGISTER_MODEL(asio_single);

}  // namespace cmbench
