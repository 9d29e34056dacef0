// serial/baseline: one thread, no concurrency. The reference answer and the 1x line.
#include <thread>

#include "models/model.hpp"

namespace cmbench {
namespace {

std::uint64_t serial_tree(std::uint64_t first, std::uint64_t size, std::uint32_t fanout) {
  if (size == 1) return first;
  const std::uint64_t child = size / fanout;
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < fanout; ++c) sum += serial_tree(first + c * child, child, fanout);
  return sum;
}

}  // namespace

class serial_baseline {
 public:
  static constexpr model_info info{
      "serial", "baseline", "one thread, no concurrency: the reference and the 1x line",
      "tasks run one after another on the calling thread; waits are blocking sleeps; a tree unit "
      "is a function call"};

  explicit serial_baseline(const model_config& /*config*/) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) {
      for (std::uint32_t round = 0; round < job.rounds; ++round) {
        if (job.wait.count() > 0) std::this_thread::sleep_for(job.wait);
        sum += job.run_round(task, round);
      }
    }
    return sum;
  }

  std::uint64_t run_tree(const tree_job& job) { return serial_tree(0, job.leaves, job.fanout); }
};

CMBENCH_REGISTER_MODEL(serial_baseline);

}  // namespace cmbench
