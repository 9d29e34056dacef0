// threads/tbb: oneTBB work stealing in a task_arena of W threads.
//
// Bulk jobs are one parallel_reduce over the task indices (TBB's partitioner decides how
// iterations are grouped and stolen); tree units are task_group tasks, each running its
// children with run() and joining them with wait(), which executes queued tasks meanwhile.
// Graph units are parked actors (parked_graph.hpp), each runnable one a task_group task.
#include <oneapi/tbb/mutex.h>  // 2021.8 ships no tbb/mutex.h compatibility header
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "models/model.hpp"
#include "models/threads/parked_graph.hpp"

namespace cmbench {
namespace detail {
namespace {

std::uint64_t tbb_tree_unit(const tree_job& job, std::uint64_t first, std::uint64_t size) {
  const std::uint32_t fanout = job.fanout;
  if (size == 1) return job.leaf_value(first);
  const std::uint64_t child_size = size / fanout;
  std::array<std::uint64_t, 16> local_results;
  std::vector<std::uint64_t> heap_results;
  std::uint64_t* results = local_results.data();
  if (fanout > local_results.size()) {
    heap_results.resize(fanout);
    results = heap_results.data();
  }
  tbb::task_group group;
  for (std::uint32_t c = 0; c < fanout; ++c) {
    group.run([&job, results, c, first, child_size] {
      results[c] = tbb_tree_unit(job, first + c * child_size, child_size);
    });
  }
  group.wait();
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < fanout; ++c) sum += results[c];
  return sum;
}

// A graph job as task_group tasks: each runnable unit is one task that runs it until it parks
// (parked_graph). Starting every unit, and resuming them all when the barrier opens, is a
// recursive split over the unit range (each task hands the upper half to run() and keeps the
// lower, as parallel_for with a simple_partitioner does), so a million units never have a
// million tasks alive at once and no task ever blocks waiting for others. The group's wait()
// returns once no unit is runnable: all finished, or the job deadlocked.
// Mutexes are tbb::mutex (one byte, test-and-set, then TBB's bounded spin before sleeping on
// its address-wait table): TBB's blocking mutex; spin_mutex would burn a core whenever a holder
// is preempted, which on 2 shared cores happens.
class tbb_graph {
 public:
  explicit tbb_graph(const graph_job& job) : graph_(job, *this, "threads/tbb") {}

  // Call inside the arena.
  graph_result run() {
    group_.run([this] { spread(0, graph_.units(), no_unit); });
    group_.wait();
    if (!graph_.all_finished()) throw std::logic_error("graph job deadlocked: a unit waits forever");
    return graph_.result();
  }

  // parked_graph's runtime.
  void schedule(std::uint32_t unit) {
    group_.run([this, unit] { graph_.run(unit); });
  }
  void resume_all_but(std::uint32_t unit) {
    group_.run([this, unit] { spread(0, graph_.units() - 1, unit); });
  }
  void all_finished() {}

 private:
  // Runs units [first, last) of the range that leaves out `skip`.
  void spread(std::uint32_t first, std::uint32_t last, std::uint32_t skip) {
    while (last - first > 1) {
      const std::uint32_t middle = first + (last - first) / 2;
      group_.run([this, middle, last, skip] { spread(middle, last, skip); });
      last = middle;
    }
    graph_.run(first < skip ? first : first + 1);
  }

  tbb::task_group group_;
  parked_graph<tbb_graph, tbb::mutex> graph_;
};

}  // namespace
}  // namespace detail

class threads_tbb {
 public:
  static constexpr model_info info{
      "threads", "tbb", "oneTBB work stealing in a task_arena of W threads",
      "task_arena(W) initialized at setup (the calling thread is one of the W); bulk is one "
      "parallel_reduce over the tasks, auto-partitioned; waits are blocking sleeps inside the "
      "tasks (TBB has no timers), so at most W waits are in flight; a tree unit is a "
      "task_group task that run()s its children and wait()s, stealing work meanwhile; a graph "
      "unit is a parked actor (64-byte record + its message buffer, no stack): a runnable unit "
      "is one task_group task run until it must wait; a full/empty channel (tbb::mutex-guarded "
      "ring, one parked-sender and one parked-receiver slot) parks it and the peer that changes "
      "the channel task_group::run()s it at once: oneTBB spawns it into the waking thread's own "
      "deque, which that thread pops LIFO once its current task returns unless an idle thread "
      "of the arena steals it first (oneTBB's own scheduling, nothing added); graph mutexes are tbb::mutex (blocking after TBB's short bounded "
      "spin); the barrier is an atomic count whose last arriver sleeps `hold` in its task, then "
      "resumes the others by a recursive split of task_group tasks; the caller waits in "
      "task_group::wait (TBB's own spin-then-sleep)",
      "tbb_handoff_round_trip", wait_capacity::workers};

  explicit threads_tbb(const model_config& config)
      : workers_(std::max(1u, config.workers)),
        // TBB's process-wide thread pool defaults to one thread per core; allow W (the arena
        // itself caps this model at W).
        parallelism_(tbb::global_control::max_allowed_parallelism,
                     std::max<std::size_t>(workers_, static_cast<std::size_t>(
                                                         tbb::info::default_concurrency()))),
        arena_(static_cast<int>(workers_)) {
    arena_.initialize();
    warm_up();
  }

  std::uint64_t run_bulk(const bulk_job& job) {
    if (job.tasks == 0) return 0;
    return arena_.execute([&] {
      return tbb::parallel_reduce(
          tbb::blocked_range<std::uint64_t>(0, job.tasks), std::uint64_t{0},
          [&](const tbb::blocked_range<std::uint64_t>& tasks, std::uint64_t sum) {
            for (std::uint64_t task = tasks.begin(); task != tasks.end(); ++task) {
              for (std::uint32_t round = 0; round < job.rounds; ++round) {
                if (job.wait.count() > 0) {
                  job.begin_wait(task, round);
                  std::this_thread::sleep_for(job.wait);
                }
                sum += job.run_round(task, round);
              }
            }
            return sum;
          },
          std::plus<>());
    });
  }

  graph_result run_graph(const graph_job& job) {
    if (job.units == 0) return {};
    return arena_.execute([&] {
      detail::tbb_graph run(job);
      return run.run();
    });
  }

  std::uint64_t run_tree(const tree_job& job) {
    return arena_.execute([&] { return detail::tbb_tree_unit(job, 0, job.leaves); });
  }

 private:
  // TBB starts worker threads lazily; make all W of them join the arena now, at setup, so no
  // job pays for thread creation. Each iteration holds its thread until all W have arrived
  // (bounded, in case the scheduler hands out fewer threads).
  void warm_up() {
    std::atomic<unsigned> arrived{0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    arena_.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<unsigned>(0, workers_, 1),
          [&](const tbb::blocked_range<unsigned>&) {
            arrived.fetch_add(1);
            while (arrived.load() < workers_ && std::chrono::steady_clock::now() < deadline) {
              std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
          },
          tbb::simple_partitioner());
    });
  }

  unsigned workers_;
  tbb::global_control parallelism_;
  tbb::task_arena arena_;
};

CMBENCH_REGISTER_MODEL(threads_tbb);

}  // namespace cmbench
