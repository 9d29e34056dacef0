// coroutines/asio: one io_context run by one thread, C++20 coroutines (the seeds' asyncio).
#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration
#include "models/coroutines/asio_graph.hpp"

#include <memory>
#include <stdexcept>

#include "models/model.hpp"

namespace cmbench {
namespace detail {
namespace {

// Every tree unit on the one loop; children complete on the loop that waits for them.
struct one_loop {
  static constexpr bool multi_loop = false;
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
      "coroutines", "asio",
      "one Asio io_context on one thread, C++20 coroutines (asyncio)",
      "one io_context (concurrency hint 1) run on the calling thread; every task and tree unit is "
      "an asio::awaitable started with co_spawn, all in flight at once; waits are steady_timer "
      "async_waits; a parent suspends on a wait group until its children's co_spawn handlers "
      "count out; graph units are co_spawned awaitables looping over next(), started inline by a "
      "driver on the loop; a channel is an asio::experimental::channel of the job's capacity "
      "carrying slot indices into a capacity+2 message ring (bytes copied in on send, out on "
      "receive; its buffer a reused ring, no allocation per message), try_send/try_receive first, "
      "then co_await async_send/async_receive (a full try_send is one blocked send); a mutex "
      "costs nothing (one thread, and no unit co_awaits while holding one); the barrier is a "
      "steady_timer at time_point::max() that waiters async_wait on and the last arriver cancels "
      "after co_awaiting `hold` on a timer; every wait parks the coroutine (blocking, no spin); "
      "workers and max_alive are ignored (one thread)",
      "asio_post_round_trip", wait_capacity::every_task};

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
