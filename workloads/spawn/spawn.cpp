// spawn: a skynet tree. Each unit creates `fanout` children down to L leaves; each leaf returns a
// mix of its index and sums flow up. Measures the cost to create and join one unit of the model.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "workloads/kernels.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

// What leaf i returns: a mix of its index, so a model must run every leaf to get the sum right
// (the sum of the indexes has a closed form a model could return without running any).
std::uint64_t spawn_leaf(const void*, std::uint64_t index) { return kernels::mix64(index); }

tree_job job_of(const param_values& p) {
  return tree_job{static_cast<std::uint64_t>(p.at("leaves")), static_cast<std::uint32_t>(p.at("fanout")),
                  &spawn_leaf, nullptr};
}

class spawn_run final : public prepared_run {
 public:
  explicit spawn_run(const param_values& p)
      : job_(job_of(p)), workers_(static_cast<unsigned>(p.at("workers"))) {}
  // Spawn models create every unit of the tree: no cap, no sequential cut-off.
  model_config config() const override { return {workers_, 0}; }
  std::uint64_t run(model_instance& model) override { return model.run_tree(job_); }

 private:
  tree_job job_;
  unsigned workers_;
};

workload_entry make_spawn() {
  return workload_entry{
      .name = "spawn",
      .description = "skynet: every unit spawns `fanout` children down to L leaves; leaves return mix64(index), sums flow up",
      .measures = "cost to create and join one unit (ns per unit), memory per unit",
      // default: 11,111 units, all of which may be alive at once (a process each under
      // processes/spawn), well under pid_max's 32,768; full's 1,111,111 may meet it, and that is
      // its finding.
      .params = {{"leaves", "leaves of the tree (a power of fanout)", 1, 100'000'000, 1000, 10'000,
                  1'000'000},
                 {"fanout", "children per unit", 2, 1000, 10, 10, 10},
                 workers_param()},
      .validate = [](const param_values& p) {
        const auto leaves = static_cast<std::uint64_t>(p.at("leaves"));
        const auto fanout = static_cast<std::uint64_t>(p.at("fanout"));
        std::uint64_t level = 1;
        while (level < leaves) level *= fanout;
        if (level != leaves) {
          throw std::invalid_argument("spawn: leaves=" + std::to_string(leaves) +
                                      " is not a power of fanout=" + std::to_string(fanout));
        }
      },
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<spawn_run>(p);
      },
      .reference = [](const param_values& p) {
        std::uint64_t sum = 0;
        for (std::uint64_t leaf = 0; leaf < static_cast<std::uint64_t>(p.at("leaves")); ++leaf) {
          sum += spawn_leaf(nullptr, leaf);
        }
        return sum;
      },
      .units = [](const param_values& p) { return tree_units(job_of(p)); },
      .cost = [](const param_values& p, const model_info&, unsigned cpus) {
        // A unit created and joined in 2 ns, a leaf mixed in 2 ns: far below any model.
        return cost_estimate{static_cast<double>(tree_units(job_of(p))) * 2e-9 / std::max(1u, cpus),
                             static_cast<double>(p.at("leaves")) * 2e-9};
      },
      .metrics = nullptr,
      .order = 40,
      .figures = {{"ns_per_unit", "time per unit created and joined", "ns/unit", figure_kind::time_ns, better::lower}},
      .memory_per_unit = true,
      .unit = "tree unit",
      .alive = [](const param_values& p) { return tree_units(job_of(p)); },  // a parent waits for its children
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(spawn, make_spawn);

}  // namespace cmbench
