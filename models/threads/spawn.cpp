// threads/spawn: one OS thread per unit, as Python's `threading.Thread`.
//
// Every task and every tree unit is a std::jthread created for it and joined when it is done;
// every graph unit is a std::thread, all of them alive at once.
// When the kernel refuses a thread, the run joins everything it started and throws limit_error
// with the limits that apply, read at the moment of failure.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "models/bulk_task.hpp"
#include "models/graph_validation.hpp"
#include "models/model.hpp"
#include "models/system_limits.hpp"
#include "models/thread_limits.hpp"
#include "models/threads/blocking_sync.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench {
namespace detail {
namespace {

// Threads of a bulk run report here when their task is done, so the launcher joins them at
// once: a joined thread's stack goes back to glibc's stack cache for the next thread, and an
// unjoined one would keep its stack (2 maps) until the end of the run.
class finish_line {
 public:
  // Room for `threads` reports, made by the launcher before it starts a thread, so a
  // finishing thread never allocates.
  void make_room(std::size_t threads) {
    if (taken_.capacity() >= threads) return;
    const std::size_t capacity = std::max<std::size_t>(64, 2 * threads);
    taken_.reserve(capacity);
    std::lock_guard lock(mutex_);
    finished_.reserve(capacity);
  }

  void finish(std::size_t slot, std::uint64_t result) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      finished_.push_back({slot, result});
      wake = launcher_waiting_;
    }
    if (wake) finished_cv_.notify_one();
  }

  // The threads that finished since the last call; blocks until there is one if `block`.
  const std::vector<std::pair<std::size_t, std::uint64_t>>& take(bool block) {
    taken_.clear();
    std::unique_lock lock(mutex_);
    if (block) {
      launcher_waiting_ = true;
      finished_cv_.wait(lock, [&] { return !finished_.empty(); });
      launcher_waiting_ = false;
    }
    taken_.swap(finished_);
    return taken_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable finished_cv_;
  bool launcher_waiting_ = false;
  std::vector<std::pair<std::size_t, std::uint64_t>> finished_;
  std::vector<std::pair<std::size_t, std::uint64_t>> taken_;  // launcher's side of the swap
};

// Shared by every thread of one tree: the first failure wins and stops further creation.
struct tree_run {
  const tree_job* job = nullptr;
  std::uint32_t fanout = 10;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;

  void fail(const std::exception& cause) noexcept {
    std::lock_guard lock(error_mutex);
    if (failed.load(std::memory_order_relaxed)) return;
    error = describe_thread_failure_safely(cause);
    failed.store(true, std::memory_order_relaxed);
  }
};

// The children of one tree unit note the order they finish in, so the unit joins each child as
// soon as it is done: an exited thread keeps its stack (2 maps) until it is joined, and joining
// in creation order would leave finished siblings holding theirs while an early one runs.
class finish_order {
 public:
  explicit finish_order(std::uint32_t children) : order_(children) {}

  void finished(std::uint32_t child) {
    std::atomic<std::uint32_t>& slot = order_[count_.fetch_add(1, std::memory_order_relaxed)];
    slot.store(child + 1, std::memory_order_release);
    slot.notify_one();  // safe: the parent joins this thread before order_ goes away
  }

  // The index of the k-th child to finish; blocks until it has.
  std::uint32_t wait(std::uint32_t k) {
    std::atomic<std::uint32_t>& slot = order_[k];
    slot.wait(0, std::memory_order_acquire);
    return slot.load(std::memory_order_acquire) - 1;
  }

 private:
  std::vector<std::atomic<std::uint32_t>> order_;  // [k]: 1 + the k-th child to finish, 0 until then
  std::atomic<std::uint32_t> count_{0};
};

// One tree unit: start `fanout` child threads, join them all, return their sum.
std::uint64_t tree_unit(tree_run& run, std::uint64_t first, std::uint64_t size) noexcept {
  if (size == 1) return run.job->leaf_value(first);
  const std::uint64_t child_size = size / run.fanout;
  std::vector<std::jthread> children;
  std::vector<std::uint64_t> results;
  std::optional<finish_order> order;
  try {
    results.resize(run.fanout);
    order.emplace(run.fanout);
    children.reserve(run.fanout);
    for (std::uint32_t c = 0; c < run.fanout; ++c) {
      if (run.failed.load(std::memory_order_relaxed)) break;
      children.emplace_back([&run, &results, &order, c, first, child_size] {
        results[c] = tree_unit(run, first + c * child_size, child_size);
        order->finished(c);
      });
    }
  } catch (const std::exception& e) {
    run.fail(e);
  }
  std::uint64_t sum = 0;
  for (std::uint32_t k = 0; k < children.size(); ++k) {
    const std::uint32_t c = order->wait(k);
    children[c].join();
    sum += results[c];
  }
  return sum;
}

// One graph job's shared objects: channels, mutexes, the barrier, the start gate, and one message
// buffer per unit (on its own cache line, so units running side by side do not share one).
class thread_graph {
 public:
  explicit thread_graph(const graph_job& job)
      : job_(job),
        message_stride_((job.message_bytes + thread_cache_line - 1) / thread_cache_line *
                        thread_cache_line),
        messages_(std::make_unique<std::uint64_t[]>(std::size_t{job.units} * message_stride_ / 8)),
        channels_(std::make_unique<blocking_channel[]>(job.channels)),
        mutexes_(std::make_unique<padded_mutex[]>(job.mutexes)),
        barrier_(job.units, hold_step{job.hold}) {
    for (std::uint32_t c = 0; c < job.channels; ++c) channels_[c].init(job.capacity, job.message_bytes);
  }

  start_gate& gate() { return gate_; }
  graph_result result() const { return {checksum_.load(), blocked_sends_.load()}; }

  // The body of unit u's thread: wait for the gate, then step the unit until it finishes.
  void run_unit(std::uint32_t u) {
    if (!gate_.wait()) return;
    unit_state state;
    state.unit = u;
    std::byte* message = reinterpret_cast<std::byte*>(messages_.get()) + std::size_t{u} * message_stride_;
    std::uint64_t blocked_sends = 0;
    for (;;) {
      const unit_action action = job_.next(state, message);
      switch (action.op) {
        case unit_op::send:
          blocked_sends += channels_[action.target].send(message) ? 1 : 0;
          break;
        case unit_op::receive:
          channels_[action.target].receive(message);
          break;
        case unit_op::lock:
          mutexes_[action.target].mutex.lock();
          break;
        case unit_op::unlock:
          mutexes_[action.target].mutex.unlock();
          break;
        case unit_op::arrive:
          barrier_.arrive_and_wait();
          break;
        case unit_op::finish:
          checksum_.fetch_add(state.result, std::memory_order_relaxed);
          blocked_sends_.fetch_add(blocked_sends, std::memory_order_relaxed);
          return;
      }
    }
  }

 private:
  const graph_job& job_;
  std::size_t message_stride_;
  std::unique_ptr<std::uint64_t[]> messages_;  // zeroed: a unit's buffer is zero before its first step
  std::unique_ptr<blocking_channel[]> channels_;
  std::unique_ptr<padded_mutex[]> mutexes_;
  hold_barrier barrier_;
  start_gate gate_;
  // Touched once per unit, when it finishes (read by the caller after every join).
  alignas(thread_cache_line) std::atomic<std::uint64_t> checksum_{0};
  std::atomic<std::uint64_t> blocked_sends_{0};
};

// The connections of one scatter job, shared by its call threads as a requests.Session shares
// its pool: a thread takes an idle connection to its call's node, or opens a new one, and gives
// it back after its call. At most `limit` are open at once (one per thread alive): a thread that
// needs a new one when all are open closes an idle one to another node first.
class session_pool {
 public:
  session_pool(const scatter_job& job, std::uint64_t limit) : job_(job), idle_(job.nodes.size()), limit_(limit) {
    // Room for every connection on any node, so giving one back never allocates (nor fails).
    for (auto& idle : idle_) idle.reserve(limit);
  }

  std::unique_ptr<wire::call_connection> take(std::size_t node) {
    std::unique_ptr<wire::call_connection> evicted;  // closed outside the lock
    {
      std::lock_guard lock(mutex_);
      if (!idle_[node].empty()) {
        std::unique_ptr<wire::call_connection> connection = std::move(idle_[node].back());
        idle_[node].pop_back();
        return connection;
      }
      if (open_ >= limit_) {
        for (auto& idle : idle_) {
          if (idle.empty()) continue;
          evicted = std::move(idle.back());
          idle.pop_back();
          --open_;
          break;
        }
      }
      ++open_;
    }
    evicted.reset();
    try {
      return std::make_unique<wire::call_connection>(job_, node);  // connected and handshaken
    } catch (...) {
      std::lock_guard lock(mutex_);
      --open_;
      throw;
    }
  }

  void give_back(std::unique_ptr<wire::call_connection> connection) noexcept {
    std::lock_guard lock(mutex_);
    idle_[connection->node()].push_back(std::move(connection));
  }

  // A connection whose call failed is closed, never reused.
  void discard(std::unique_ptr<wire::call_connection> connection) noexcept {
    connection.reset();
    std::lock_guard lock(mutex_);
    --open_;
  }

 private:
  const scatter_job& job_;
  std::mutex mutex_;
  std::vector<std::vector<std::unique_ptr<wire::call_connection>>> idle_;  // [node]
  std::uint64_t limit_;
  std::uint64_t open_ = 0;
};

// One scatter job's calls: what every call thread shares.
struct scatter_run {
  scatter_run(const scatter_job& j, std::uint64_t limit) : job(j), connections(j, limit) {}

  // Task `task`'s call, on the calling thread; a failure is kept (the first one) and stops the
  // launcher from starting more calls.
  std::uint64_t call(std::uint64_t task) noexcept {
    std::unique_ptr<wire::call_connection> connection;
    try {
      connection = connections.take(task % job.nodes.size());
      const std::uint64_t value = connection->call(job, task);
      connections.give_back(std::move(connection));
      return value;
    } catch (...) {
      if (connection) connections.discard(std::move(connection));
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
      return 0;
    }
  }

  const scatter_job& job;
  session_pool connections;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;  // the first failure, rethrown by the launcher after every join
};

// A node's side of one connection, on its own thread: the handshake, then each request in turn
// (read, the wait slept, the reply written) until the peer closes, a frame is bad or the node stops.
void serve_connection(const serve_job& job, int fd) noexcept {
  try {
    const std::string peer = wire::peer_name(fd);
    if (!wire::accept_handshake(job, fd, peer)) return;
    while (wire::wait_readable_or_stop(fd, job.stop_fd)) {
      const auto request = wire::read_request(job, fd, peer);
      if (!request) return;
      const bool answered = wire::answer(job, fd, *request, [](std::uint32_t ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      });
      if (!answered) return;
    }
  } catch (const std::exception& e) {  // no memory for a request: this connection ends, the node goes on
    if (job.log != nullptr) job.log(job.context, std::string("dropped a connection: ") + e.what());
  }
}

// A node's connection threads: one per accepted connection, joined as soon as it ends (by the
// accepting thread, when it next wakes) and all joined when the node stops. Each thread owns its
// connection's descriptor; the table of live ones lets stop() shut their reading side down, so a
// thread in a handshake or mid-frame returns at once (a reply being written still goes out).
class connection_threads {
 public:
  explicit connection_threads(const serve_job& job) : job_(job) {}
  connection_threads(const connection_threads&) = delete;
  connection_threads& operator=(const connection_threads&) = delete;
  ~connection_threads() { stop(); }

  void start(wire::unique_fd fd) {
    std::lock_guard lock(mutex_);
    if (free_.empty()) {
      slots_.emplace_back();
      finished_.reserve(slots_.size());  // a finishing thread never allocates
      free_.reserve(slots_.size());
      free_.push_back(slots_.size() - 1);
    }
    const std::size_t slot = free_.back();
    const int raw = fd.get();
    try {
      slots_[slot].thread = std::jthread([this, slot, fd = std::move(fd)]() mutable {
        serve_connection(job_, fd.get());
        {
          std::lock_guard done(mutex_);
          slots_[slot].fd = -1;  // before the close: stop() never shuts down a reused descriptor
          finished_.push_back(slot);
        }
      });
    } catch (const std::exception& e) {  // the connection is closed; the node serves everyone else
      if (job_.log != nullptr) {
        job_.log(job_.context, "dropped a connection: no thread for it: " + detail::describe_thread_failure_safely(e));
      }
      return;
    }
    slots_[slot].fd = raw;
    free_.pop_back();
  }

  // Joins the threads whose connection has ended.
  void reap() {
    std::vector<std::size_t> done;
    {
      std::lock_guard lock(mutex_);
      done.swap(finished_);
      finished_.reserve(slots_.size());
    }
    for (const std::size_t slot : done) slots_[slot].thread.join();  // only this thread moves slots_
    std::lock_guard lock(mutex_);
    free_.insert(free_.end(), done.begin(), done.end());
  }

  // Ends every connection thread: they watch stop_fd between requests; a read in progress ends
  // with the reading side shut down. Joins them all.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      for (const slot_state& s : slots_) {
        if (s.fd >= 0) ::shutdown(s.fd, SHUT_RD);
      }
    }
    for (slot_state& s : slots_) {
      if (s.thread.joinable()) s.thread.join();
    }
  }

 private:
  struct slot_state {
    std::jthread thread;
    int fd = -1;  // the live connection's descriptor (owned by its thread), -1 once it has ended
  };

  const serve_job& job_;
  std::mutex mutex_;
  std::vector<slot_state> slots_;     // slot -> thread; a joined slot is reused
  std::vector<std::size_t> free_;
  std::vector<std::size_t> finished_;  // ended, not yet joined
};

}  // namespace
}  // namespace detail

class threads_spawn {
 public:
  static constexpr model_info info{
      .family = "threads",
      .variant = "spawn",
      .description = "one OS thread per task, tree unit or graph unit (as Python's threading.Thread)",
      .order = 10,
      .mechanism = {
          .summary = "a thread created for every unit (a std::jthread per task and tree unit, a std::thread per "
                     "graph unit) and joined when it is done",
          .unit = "a task: a std::jthread, at most max_alive alive; a graph unit: a std::thread, all alive at once, "
                  "started together behind a gate",
          .tree = "a unit starts its children's threads and joins each as it finishes (no cap on threads alive)",
          .channel = "a ring buffer under a std::mutex with not-empty / not-full std::condition_variables, notified "
                     "only when the peer waits",
          .mutex = "a std::mutex",
          .barrier = "a std::barrier whose completion step sleeps the hold",
          .wait = "a blocking sleep in the unit's own thread; the barrier and the start gate use libstdc++'s atomic "
                  "wait (a few spins and yields, then a futex)",
          .handoff = "the kernel wakes the peer's thread (condition variable, futex)",
          .results = "written to memory the joiner reads after join",
          .calls = "a std::jthread per call, at most C alive; each takes an idle connection to its node from a "
                   "mutex-guarded per-node pool (or opens one) and gives it back after its blocking call",
          .serves = "a std::jthread per accepted connection, which reads each request, sleeps its wait and writes "
                    "the reply, so one request per connection served at once",
      },
      .round_trip_floor = "condvar_round_trip_cross_cpu",
      .waits = wait_capacity::tasks,
      .serves = wait_capacity::tasks,
  };

  explicit threads_spawn(const model_config& config) : max_alive_(config.max_alive) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    detail::finish_line finished;  // first: outlives the threads that report to it
    std::vector<std::jthread> threads;  // slot -> thread; a joined slot is reused
    std::vector<std::size_t> free_slots;
    std::uint64_t sum = 0;
    std::uint64_t alive = 0;
    auto join_finished = [&](bool block) {
      for (const auto& [slot, result] : finished.take(block)) {
        threads[slot].join();
        sum += result;
        free_slots.push_back(slot);
        --alive;
      }
    };

    std::optional<std::string> failure;
    for (std::uint64_t task = 0; task < job.tasks; ++task) {
      join_finished(max_alive_ != 0 && alive >= max_alive_);
      try {
        if (free_slots.empty()) {
          finished.make_room(threads.size() + 1);
          threads.emplace_back();
          free_slots.push_back(threads.size() - 1);
        }
        const std::size_t slot = free_slots.back();
        threads[slot] = std::jthread([&job, &finished, slot, task] {
          finished.finish(slot, run_blocking_task(job, task));
        });
        free_slots.pop_back();
      } catch (const std::exception& e) {
        failure = detail::describe_thread_failure_safely(e);
        break;
      }
      ++alive;
    }
    while (alive > 0) join_finished(true);
    if (failure) throw limit_error(*failure);
    return sum;
  }

  // Every unit is its own thread and all are alive at once (they talk to each other, so
  // max_alive does not apply). They start together behind a gate: if the kernel refuses a thread,
  // the ones already made are called off before any took a step, joined, and the run throws.
  graph_result run_graph(const graph_job& job) {
    validate_graph_job(job, "threads/spawn");
    detail::thread_graph graph(job);  // first: outlives every thread
    std::vector<std::thread> threads;
    threads.reserve(job.units);
    std::optional<std::string> failure;
    for (std::uint32_t u = 0; u < job.units; ++u) {
      try {
        threads.emplace_back([&graph, u] { graph.run_unit(u); });
      } catch (const std::exception& e) {
        failure = detail::describe_thread_failure_safely(e);  // read while the threads are alive
        break;
      }
    }
    graph.gate().open(!failure);
    for (auto& thread : threads) thread.join();
    if (failure) throw limit_error(*failure);
    return graph.result();
  }

  std::uint64_t run_tree(const tree_job& job) {
    detail::tree_run run;
    run.job = &job;
    run.fanout = job.fanout;
    std::uint64_t sum = 0;
    try {
      // The root is a unit like the others: a thread of its own.
      std::jthread root([&] { sum = detail::tree_unit(run, 0, job.leaves); });
    } catch (const std::exception& e) {
      run.fail(e);
    }
    if (run.failed.load()) throw limit_error(run.error);
    return sum;
  }

  // A thread per call, at most C (and max_alive) alive: the launcher starts the next call's thread
  // as soon as one has ended and been joined, as run_bulk does its tasks. Once a call has failed
  // no more are started; the launcher joins those in flight and rethrows the failure.
  std::uint64_t run_scatter(const scatter_job& job) {
    if (job.tasks == 0) return 0;
    if (job.nodes.empty()) throw std::runtime_error("threads/spawn: a scatter job with no nodes");
    std::uint64_t limit = std::max<std::uint64_t>(1, job.in_flight);
    if (max_alive_ != 0) limit = std::min(limit, max_alive_);
    detail::scatter_run run(job, limit);  // outlives the threads
    detail::finish_line finished;
    std::vector<std::jthread> threads;  // slot -> thread; a joined slot is reused
    std::vector<std::size_t> free_slots;
    std::uint64_t sum = 0;
    std::uint64_t alive = 0;
    auto join_finished = [&](bool block) {
      for (const auto& [slot, result] : finished.take(block)) {
        threads[slot].join();
        sum += result;
        free_slots.push_back(slot);
        --alive;
      }
    };

    std::optional<std::string> failure;
    for (std::uint64_t task = 0; task < job.tasks; ++task) {
      join_finished(alive >= limit);
      if (run.failed.load(std::memory_order_relaxed)) break;
      try {
        if (free_slots.empty()) {
          finished.make_room(threads.size() + 1);
          threads.emplace_back();
          free_slots.push_back(threads.size() - 1);
        }
        const std::size_t slot = free_slots.back();
        threads[slot] = std::jthread([&run, &finished, slot, task] { finished.finish(slot, run.call(task)); });
        free_slots.pop_back();
      } catch (const std::exception& e) {
        failure = detail::describe_thread_failure_safely(e);
        break;
      }
      ++alive;
    }
    while (alive > 0) join_finished(true);
    if (run.error) std::rethrow_exception(run.error);
    if (failure) throw limit_error(*failure);
    return sum;
  }

  // The calling thread accepts; each connection gets a thread of its own for as long as it lasts.
  void serve(const serve_job& job) {
    detail::connection_threads connections(job);
    while (!wire::stop_requested(job.stop_fd)) {
      wire::unique_fd fd = wire::accept_connection(job);
      connections.reap();
      if (fd) connections.start(std::move(fd));
    }
    connections.stop();
  }

 private:
  std::uint64_t max_alive_;
};

CMBENCH_REGISTER_MODEL(threads_spawn);

}  // namespace cmbench
