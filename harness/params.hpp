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
  bool by_model_name = false;  // its values were model names (for a parameter that names a model)
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

// A parameter that names a model (param_spec::names_model) holds the model's order key plus one;
// 0 is "none: the row's own model".
std::int64_t model_param_value(const model_entry& model);
const model_entry* model_of_param(std::int64_t value);  // nullptr: none
// The model one side of a distributed run uses: the one `param` (node_model, coordinator_model)
// names, else the row's own.
const model_entry& side_model(const model_entry& row, const param_values& values, const std::string& param);
// A value as the command line gives it: a number, or a model's name ("same" for 0).
std::string param_text(const param_spec& spec, std::int64_t value);

// "tasks:200/task_us:500/workers:2", in the workload's parameter order.
std::string params_label(const workload_entry& workload, const param_values& values);

}  // namespace cmbench
