// Turning presets and `--param` overrides into the list of parameter combinations to run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "workloads/workload.hpp"

namespace cmbench {

// One `--param [WORKLOAD.]NAME=V1,V2,...`: an empty workload applies to every workload with NAME.
struct param_override {
  std::string workload;
  std::string name;
  std::vector<std::int64_t> values;
};

// Parses "tasks=100,1k" or "cpu.workers=1,2,4"; values are integers with an optional k/M/G suffix.
// Throws std::invalid_argument with a message naming the bad part.
param_override parse_param_override(std::string_view text);

preset parse_preset(std::string_view name);  // "quick", "default", "full"
std::string_view preset_name(preset p);

// Checks every override names a parameter of at least one selected workload (and that a
// workload-scoped one names a selected workload). Throws std::invalid_argument otherwise.
void check_overrides(const std::vector<const workload_entry*>& workloads,
                     const std::vector<param_override>& overrides);

// Every combination of the workload's parameters: preset values, replaced by overrides (several
// for one parameter merge their values), with `0 = every CPU` resolved to `cpus`; validated (range
// and the workload's own check).
std::vector<param_values> combinations(const workload_entry& workload, preset p,
                                       const std::vector<param_override>& overrides, unsigned cpus);

// "tasks:200/task_us:500/workers:2", in the workload's parameter order.
std::string params_label(const workload_entry& workload, const param_values& values);

}  // namespace cmbench
