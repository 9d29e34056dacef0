// threads/tbb: oneTBB work stealing in a task_arena of W threads.
//
// Bulk jobs are one parallel_reduce over the task indices (TBB's partitioner decides how
// iterations are grouped and stolen); tree units are task_group tasks, each running its
// children with run() and joining them with wait(), which executes queued tasks meanwhile.
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

namespace cmbench {
namespace detail {
namespace {

std::uint64_t tbb_tree_unit(std::uint64_t first, std::uint64_t size, std::uint32_t fanout) {
  if (size == 1) return first;
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
    group.run([results, c, first, child_size, fanout] {
      results[c] = tbb_tree_unit(first + c * child_size, child_size, fanout);
    });
  }
  group.wait();
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < fanout; ++c) sum += results[c];
  return sum;
}

}  // namespace
}  // namespace detail

class threads_tbb {
 public:
  static constexpr model_info info{
      "threads", "tbb", "oneTBB work stealing in a task_arena of W threads",
      "task_arena(W) initialized at setup (the calling thread is one of the W); bulk is one "
      "parallel_reduce over the tasks, auto-partitioned; waits are blocking sleeps inside the "
      "tasks (TBB has no timers), so at most W waits are in flight; a tree unit is a "
      "task_group task that run()s its children and wait()s, stealing work meanwhile"};

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
                if (job.wait.count() > 0) std::this_thread::sleep_for(job.wait);
                sum += job.run_round(task, round);
              }
            }
            return sum;
          },
          std::plus<>());
    });
  }

  std::uint64_t run_tree(const tree_job& job) {
    return arena_.execute([&] { return detail::tbb_tree_unit(0, job.leaves, job.fanout); });
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
