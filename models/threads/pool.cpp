// threads/pool: a fixed pool of W std::jthread workers sharing one FIFO queue (a
// ThreadPoolExecutor).
//
// The queue is a ring of small POD items guarded by one mutex; sleeping workers are woken one
// at a time through a condition variable. Bulk tasks are one item each; a tree unit is one item
// that submits its children and returns, and the last child to finish completes its parent
// (continuation passing), so no worker ever blocks on another task and one worker suffices.
// Graph units are parked actors (parked/graph_interpreter.hpp), each runnable one a queue item.
#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "models/bulk_task.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/parked/heap_graph.hpp"
#include "models/thread_limits.hpp"
#include "models/threads/request_dispatcher.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench {
namespace detail {
namespace {

// One queued unit of work: run(context, arg). No allocation per item.
struct work_item {
  void (*run)(void* context, std::uint64_t arg);
  void* context;
  std::uint64_t arg;
};

// A growable FIFO ring of work items (capacity a power of two; kept across jobs).
class work_ring {
 public:
  explicit work_ring(std::size_t capacity) : items_(std::bit_ceil(std::max<std::size_t>(capacity, 2))) {}

  bool empty() const { return size_ == 0; }

  void push(const work_item& item) {
    if (size_ == items_.size()) grow();
    items_[(head_ + size_) & (items_.size() - 1)] = item;
    ++size_;
  }

  work_item pop() {
    const work_item item = items_[head_];
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
    return item;
  }

 private:
  void grow() {
    std::vector<work_item> bigger(items_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
    items_.swap(bigger);
    head_ = 0;
  }

  std::vector<work_item> items_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// Set once by whichever worker finishes a job; the caller sleeps on it. The signal is sent
// under the lock so the caller cannot return (and destroy this) before the worker is done with it.
class completion {
 public:
  void signal() {
    std::lock_guard lock(mutex_);
    done_ = true;
    done_cv_.notify_one();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

// The index of the pool worker running on this thread, in [0, W) (what a worker keeps of its own,
// such as its connections, is indexed by it).
thread_local unsigned current_worker = 0;

// W workers popping one FIFO ring under one mutex; the executor every job runs on.
class thread_pool {
 public:
  explicit thread_pool(unsigned count) : queue_(4096) {
    workers_.reserve(count);
    try {
      for (unsigned i = 0; i < count; ++i) workers_.emplace_back([this, i] { work(i); });
    } catch (const std::system_error& e) {
      const std::size_t created = workers_.size();
      // Read while the workers are alive: they are what the thread counts count.
      const std::string why = detail::describe_thread_failure_safely(e);
      stop();
      throw limit_error("threads/pool: could only create " + std::to_string(created) + " of " +
                        std::to_string(count) + " worker threads: " + why);
    }
  }

  ~thread_pool() { stop(); }

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  void submit(std::span<const work_item> items) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      for (const auto& item : items) queue_.push(item);
      wake = wake_one_locked();
    }
    if (wake) work_available_.notify_one();
  }

 private:
  // Wake at most one sleeping worker per event, and let each woken worker wake the next while
  // work remains: as many workers run as the queue keeps busy, and a burst of tiny tasks does
  // not wake all W to fight over the lock. Call with mutex_ held; notify after unlocking.
  bool wake_one_locked() {
    if (queue_.empty() || sleeping_ == waking_) return false;
    ++waking_;
    return true;
  }

  void work(unsigned index) {
    current_worker = index;
    std::unique_lock lock(mutex_);
    for (;;) {
      while (queue_.empty()) {
        if (stopping_) return;
        ++sleeping_;
        work_available_.wait(lock);
        --sleeping_;
        if (waking_ > 0) --waking_;
      }
      const work_item item = queue_.pop();
      const bool wake = wake_one_locked();
      lock.unlock();
      if (wake) work_available_.notify_one();
      item.run(item.context, item.arg);
      lock.lock();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_available_.notify_all();
    workers_.clear();  // joins; workers drain the queue first
  }

  std::mutex mutex_;
  std::condition_variable work_available_;
  work_ring queue_;
  std::size_t sleeping_ = 0;  // workers waiting on work_available_
  std::size_t waking_ = 0;    // of those, signalled and not yet running
  bool stopping_ = false;
  std::vector<std::jthread> workers_;  // last: joined before the queue they use goes away
};

struct bulk_run {
  const bulk_job* job = nullptr;
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> remaining{0};
  completion done;
};

void run_bulk_task(void* context, std::uint64_t task) {
  auto& run = *static_cast<bulk_run*>(context);
  run.sum.fetch_add(run_blocking_task(*run.job, task), std::memory_order_relaxed);
  if (run.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) run.done.signal();
}

// Tree nodes are numbered level by level: node n's children are n * fanout + 1 + c, its parent
// (n - 1) / fanout. Every leaf lies on the last level, so nodes [0, internal) are internal and
// node internal + i is leaf i. Only internal nodes need state: 16 bytes, no lock.
struct tree_node {
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint32_t> children_done{0};
};

struct tree_run {
  const tree_job* job = nullptr;
  thread_pool* pool = nullptr;
  std::uint32_t fanout = 10;
  std::uint64_t internal = 0;
  std::unique_ptr<tree_node[]> nodes;
  std::uint64_t result = 0;
  completion done;
};

// A finished unit hands its value to its parent; the last child to finish completes the parent
// here and carries on upwards, so no unit ever blocks waiting for its children.
void complete_tree_unit(tree_run& run, std::uint64_t node, std::uint64_t value) {
  // Copies: once a child that is not the last has counted itself, its siblings may finish the
  // tree and end the run, so it must not touch `run` again.
  const std::uint32_t fanout = run.fanout;
  tree_node* const nodes = run.nodes.get();
  while (node != 0) {
    const std::uint64_t parent = (node - 1) / fanout;
    tree_node& state = nodes[parent];
    state.sum.fetch_add(value, std::memory_order_relaxed);
    // acq_rel: the last child sees every sibling's sum.
    if (state.children_done.fetch_add(1, std::memory_order_acq_rel) + 1 != fanout) return;
    value = state.sum.load(std::memory_order_relaxed);
    node = parent;
  }
  run.result = value;
  run.done.signal();
}

void run_tree_unit(void* context, std::uint64_t node) {
  auto& run = *static_cast<tree_run*>(context);
  if (node >= run.internal) {
    complete_tree_unit(run, node, run.job->leaf_value(node - run.internal));
    return;
  }
  // Submit the children with one lock acquisition per 16 (fanout 10: one). Copies, not `run`,
  // after the last submit: the children may finish the whole tree and end the run before it returns.
  constexpr std::uint32_t batch_size = 16;
  work_item batch[batch_size];
  thread_pool& pool = *run.pool;
  const std::uint32_t fanout = run.fanout;
  const std::uint64_t first_child = node * fanout + 1;
  for (std::uint32_t c = 0; c < fanout; c += batch_size) {
    const std::uint32_t count = std::min(batch_size, fanout - c);
    for (std::uint32_t i = 0; i < count; ++i) batch[i] = {&run_tree_unit, context, first_child + c + i};
    pool.submit(std::span(batch, count));
  }
}

// A graph job on the pool: each runnable unit is one work item that runs it until it parks
// (graph_interpreter). Starting every unit, and resuming every unit when the barrier opens, goes
// through one launcher item that claims the next unit and requeues itself before running it: the
// queue holds O(1) items for it instead of one per unit (a million units stay a million records,
// not also a million queued items), and idle workers still pick the launcher up in parallel.
class pool_graph {
 public:
  pool_graph(thread_pool& pool, const graph_job& job)
      : pool_(pool), storage_(job, "threads/pool"), graph_(storage_, *this) {}

  graph_result run() {
    launch(storage_.job().units, no_unit);
    done_.wait();
    return graph_.result();
  }

  // The interpreter's runtime: the graph's mutexes block the worker (graph_interpreter.hpp).
  using mutex_type = std::mutex;
  void schedule(std::uint32_t unit) {
    const work_item item{&run_unit, this, unit};
    pool_.submit(std::span(&item, 1));
  }
  void resume_all_but(std::uint32_t unit) { launch(storage_.job().units - 1, unit); }
  void all_finished() { done_.signal(); }

 private:
  // The previous launch has claimed all its units before any of them can reach the barrier
  // again, so the launcher's fields are free to reuse here.
  void launch(std::uint32_t count, std::uint32_t skip) {
    launch_next_.store(0, std::memory_order_relaxed);
    launch_count_ = count;
    launch_skip_ = skip;
    const work_item item{&launch_one, this, 0};
    pool_.submit(std::span(&item, 1));  // publishes the fields above to the worker that pops it
  }

  static void launch_one(void* context, std::uint64_t) {
    auto& self = *static_cast<pool_graph*>(context);
    const std::uint32_t i = self.launch_next_.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t unit = i < self.launch_skip_ ? i : i + 1;
    if (i + 1 < self.launch_count_) {
      const work_item item{&launch_one, context, 0};
      self.pool_.submit(std::span(&item, 1));
    }
    self.graph_.run(unit);
  }

  static void run_unit(void* context, std::uint64_t unit) {
    static_cast<pool_graph*>(context)->graph_.run(static_cast<std::uint32_t>(unit));
  }

  thread_pool& pool_;
  heap_graph<std::mutex> storage_;
  graph_interpreter<pool_graph, heap_graph<std::mutex>> graph_;
  std::atomic<std::uint32_t> launch_next_{0};
  std::uint32_t launch_count_ = 0;
  std::uint32_t launch_skip_ = no_unit;
  completion done_;
};

// A scatter job on the pool: one work item per call, as a ThreadPoolExecutor's submit, at most C
// of them queued or running: the first C are submitted at once, and each item, once its call is
// done, submits the next call in its place (continuation passing, as the tree's units do), so the
// caller only waits for the end. Each worker keeps its own connection to each node, opened on
// its first call there; a call blocks its worker, so at most W calls are in flight.
class pool_scatter {
 public:
  pool_scatter(thread_pool& pool, const scatter_job& job)
      : pool_(pool), job_(job), connections_(std::size_t{pool.size()} * job.nodes.size()) {}

  std::uint64_t run() {
    const std::uint64_t first = std::min<std::uint64_t>(std::max(1u, job_.in_flight), job_.tasks);
    live_.store(first, std::memory_order_relaxed);
    next_.store(first, std::memory_order_relaxed);
    std::vector<work_item> items;
    items.reserve(first);
    for (std::uint64_t task = 0; task < first; ++task) items.push_back({&call_one, this, task});
    pool_.submit(items);
    done_.wait();
    connections_.clear();  // every item is done: nothing uses them any more
    if (error_) std::rethrow_exception(error_);
    return sum_.load(std::memory_order_relaxed);
  }

 private:
  static void call_one(void* context, std::uint64_t task) {
    auto& self = *static_cast<pool_scatter*>(context);
    self.call(task);
    // The next call in this one's place, unless a call failed: then the others only finish theirs.
    if (!self.failed_.load(std::memory_order_relaxed)) {
      const std::uint64_t next = self.next_.fetch_add(1, std::memory_order_relaxed);
      if (next < self.job_.tasks) {
        const work_item item{&call_one, context, next};
        self.pool_.submit(std::span(&item, 1));
        return;
      }
    }
    // The last item to finish ends the run, and `self` with it: nothing but its signal after the count.
    if (self.live_.fetch_sub(1, std::memory_order_acq_rel) == 1) self.done_.signal();
  }

  void call(std::uint64_t task) noexcept {
    try {
      const std::size_t node = task % job_.nodes.size();
      std::optional<wire::call_connection>& connection = connections_[current_worker * job_.nodes.size() + node];
      if (!connection) connection.emplace(job_, node);
      sum_.fetch_add(connection->call(job_, task), std::memory_order_relaxed);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }

  thread_pool& pool_;
  const scatter_job& job_;
  // [worker * nodes + node]: only that worker touches it.
  std::vector<std::optional<wire::call_connection>> connections_;
  std::atomic<std::uint64_t> next_{0};  // the next task to submit
  std::atomic<std::uint64_t> live_{0};  // items submitted and not done
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first failure, rethrown on the caller's thread
  completion done_;
};

void serve_request(void* context, std::uint64_t) {
  request_dispatcher::request::serve(std::unique_ptr<request_dispatcher::request>(
      static_cast<request_dispatcher::request*>(context)));
}

}  // namespace
}  // namespace detail

class threads_pool {
 public:
  static constexpr model_info info{
      .family = "threads",
      .variant = "pool",
      .description = "fixed pool of W std::jthread workers, one shared FIFO queue (a ThreadPoolExecutor)",
      .order = 11,
      .mechanism = {
          .summary = "W worker threads made at setup pop small POD items from one mutex + condition-variable FIFO",
          .unit = "a task: one queue item; a graph unit: a parked actor (64-byte record + its message buffer, no "
                  "stack), one queue item per run until it must wait",
          .tree = "a unit is one item that submits its children and returns; the last child to finish completes its "
                  "parent (continuation passing)",
          .channel = "a std::mutex-guarded ring with one parked-sender and one parked-receiver slot; a full or empty "
                     "channel parks the unit",
          .mutex = "a std::mutex held by the worker (a unit never parks holding one)",
          .barrier = "an atomic count; the last arriver sleeps the hold on its worker, then requeues the others "
                     "through one self-requeuing launcher item",
          .wait = "a blocking sleep on the worker, so at most W waits at once; idle workers sleep on the condition "
                  "variable; nothing spins",
          .handoff = "the unit that changes a channel pushes its parked peer on the shared queue at once, like any "
                     "submitted task, waking a sleeping worker; whichever worker pops it runs it (no run-next slot)",
          .results = "atomic sums; the caller sleeps until the last item completes",
          .calls = "a work item per call, at most C queued or running (each submits the next in its place); a "
                   "worker blocks in its call on its own connection to the node, so min(C, W) in flight",
          .serves = "a dispatcher thread polls every connection and queues each request as a work item; the worker "
                    "sleeps the wait and writes the reply, so at most W served at once",
      },
      .round_trip_floor = "pool_handoff_round_trip",
      .waits = wait_capacity::workers,
      .serves = wait_capacity::workers,
  };

  explicit threads_pool(const model_config& config) : pool_(std::max(1u, config.workers)) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    if (job.tasks == 0) return 0;
    detail::bulk_run run;
    run.job = &job;
    run.remaining.store(job.tasks, std::memory_order_relaxed);
    // One item per task, submitted in batches so workers start while the rest is queued.
    constexpr std::uint64_t batch_size = 64;
    detail::work_item batch[batch_size];
    for (std::uint64_t first = 0; first < job.tasks; first += batch_size) {
      const std::uint64_t count = std::min(batch_size, job.tasks - first);
      for (std::uint64_t i = 0; i < count; ++i) batch[i] = {&detail::run_bulk_task, &run, first + i};
      pool_.submit(std::span(batch, count));
    }
    run.done.wait();
    return run.sum.load(std::memory_order_relaxed);
  }

  graph_result run_graph(const graph_job& job) {
    if (job.units == 0) return {};
    detail::pool_graph run(pool_, job);
    return run.run();
  }

  std::uint64_t run_tree(const tree_job& job) {
    detail::tree_run run;
    run.job = &job;
    run.pool = &pool_;
    run.fanout = job.fanout;
    run.internal = tree_units(job) - job.leaves;
    run.nodes = std::make_unique<detail::tree_node[]>(run.internal);
    const detail::work_item root{&detail::run_tree_unit, &run, 0};
    pool_.submit(std::span(&root, 1));
    run.done.wait();
    return run.result;
  }

  std::uint64_t run_scatter(const scatter_job& job) {
    if (job.tasks == 0) return 0;
    if (job.nodes.empty()) throw std::runtime_error("threads/pool: a scatter job with no nodes");
    return detail::pool_scatter(pool_, job).run();
  }

  // The calling thread is the dispatcher; the pool's W workers serve the requests.
  void serve(const serve_job& job) {
    detail::request_dispatcher dispatcher(job);
    dispatcher.run([this](std::unique_ptr<detail::request_dispatcher::request> request) {
      const detail::work_item item{&detail::serve_request, request.get(), 0};
      pool_.submit(std::span(&item, 1));
      (void)request.release();  // the item owns it now
    });
  }

 private:
  detail::thread_pool pool_;
};

CMBENCH_REGISTER_MODEL(threads_pool);

}  // namespace cmbench
