// serial/baseline: one thread, no concurrency. The reference answer and the 1x line.
#include <poll.h>

#include <chrono>
#include <deque>
#include <new>
#include <stdexcept>
#include <thread>

#include "models/bulk_task.hpp"
#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/parked/heap_graph.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench {
namespace {

std::uint64_t serial_tree(const tree_job& job, std::uint64_t first, std::uint64_t size) {
  if (size == 1) return job.leaf_value(first);
  const std::uint64_t child = size / job.fanout;
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < job.fanout; ++c) sum += serial_tree(job, first + c * child, child);
  return sum;
}

// The graph's units as parked actors (parked/graph_interpreter.hpp) interleaved by one run queue
// on the calling thread: a unit runs until it must wait (a full or empty channel, the barrier),
// parks, and is queued again when another unit changes what it waits for. Deterministic, no
// concurrency, so no locks.
class serial_graph {
 public:
  // Besides the records, a run-queue entry per unit and the deque's share around it: the queue
  // holds each unit at most once, and all of them at the start and when the barrier opens.
  explicit serial_graph(const graph_job& job)
      : storage_(job, "serial/baseline", 2 * sizeof(std::uint32_t)), graph_(storage_, *this) {}

  graph_result run() {
    for (std::uint32_t u = 0; u < storage_.job().units; ++u) ready_.push_back(u);
    while (!ready_.empty()) {
      const std::uint32_t u = ready_.front();
      ready_.pop_front();
      graph_.run(u);
    }
    if (!graph_.all_finished()) throw std::logic_error("graph job deadlocked: a unit waits forever");
    return graph_.result();
  }

  // The interpreter's runtime.
  using mutex_type = detail::no_lock;
  void schedule(std::uint32_t unit) { ready_.push_back(unit); }
  void resume_all_but(std::uint32_t unit) {
    for (std::uint32_t u = 0; u < storage_.job().units; ++u) {
      if (u != unit) ready_.push_back(u);
    }
  }
  void all_finished() {}

 private:
  detail::heap_graph<detail::no_lock> storage_;
  detail::graph_interpreter<serial_graph, detail::heap_graph<detail::no_lock>> graph_;
  std::deque<std::uint32_t> ready_;
};

// An iterative server: one poll() over the listening socket and every connection; each request
// is served to its end (its wait slept, its value computed, its reply written) before the next
// is looked at, so the node answers one request at a time whatever the number of connections.
// A connection's handshake is read only once its hello has started to arrive, so a client that
// says nothing holds nobody up; it is refused after the handshake timeout.
void serve_iteratively(const serve_job& job) {
  wire::polled_connections connections;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{job.stop_fd, POLLIN, 0}, {job.listen_fd, POLLIN, 0}});
    const int timeout_ms = connections.watch(fds);
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "serial/baseline: poll");
    }
    if (fds[0].revents != 0) return;
    connections.serve(job, fds, 2);
    if (fds[1].revents != 0) {
      if (wire::unique_fd fd = wire::try_accept_connection(job)) connections.add(std::move(fd));
    }
  }
}

}  // namespace

class serial_baseline {
 public:
  static constexpr model_info info{
      .family = "serial",
      .variant = "baseline",
      .description = "one thread, no concurrency: the reference and the 1x line",
      .order = 0,
      .baseline = true,
      .mechanism = {
          .summary = "everything on the calling thread, one unit after another",
          .unit = "a task is a loop iteration; a graph unit a state machine on one FIFO run queue",
          .tree = "a function call per unit, children called in turn (recursion)",
          .channel = "a ring buffer; a unit that finds it full or empty parks on it until another unit changes it",
          .mutex = "nothing to do: one thread, and no unit waits while holding one",
          .barrier = "an arrival count; the last arriver sleeps the hold, then requeues every other unit (in index "
                     "order) and goes straight on itself",
          .wait = "a blocking sleep on the calling thread, one at a time; nothing spins",
          .handoff = "the woken unit goes to the back of the run queue",
          .results = "summed on the calling thread as each unit returns",
          .calls = "one call at a time on the calling thread, a blocking socket per node, tasks round robin",
          .serves = "an iterative server: one poll() over every connection, one request served to its end at a time",
      },
      .round_trip_floor = {},
      .waits = wait_capacity::one,
      .serves = wait_capacity::one,
  };

  explicit serial_baseline(const model_config& /*config*/) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) sum += run_blocking_task(job, task);
    return sum;
  }

  std::uint64_t run_tree(const tree_job& job) { return serial_tree(job, 0, job.leaves); }

  graph_result run_graph(const graph_job& job) {
    try {
      return serial_graph(job).run();
    } catch (const std::bad_alloc&) {
      throw limit_error("serial/baseline: out of memory in a graph of " + with_thousands(job.units) +
                        " units (" + describe_address_space() + ")");
    }
  }

  std::uint64_t run_scatter(const scatter_job& job) {
    std::vector<std::optional<wire::call_connection>> connections(job.nodes.size());
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) {
      const std::size_t node = task % job.nodes.size();
      if (!connections[node]) connections[node].emplace(job, node);
      sum += connections[node]->call(job, task);
    }
    return sum;
  }

  void serve(const serve_job& job) { serve_iteratively(job); }
};

CMBENCH_REGISTER_MODEL(serial_baseline);

}  // namespace cmbench
