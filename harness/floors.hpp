// The floors in a report: each model primitive's cheapest hand-off or unit, measured in the same
// run as the workloads (in a child process, before and after the trials), so a row can be read
// against its own model's floor.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace cmbench {

// Every probe measured in this process: [{name, what, per, ns_per_op, p50_ns, samples_ns, ops_per_sample}].
nlohmann::ordered_json measure_floors_here(std::chrono::nanoseconds min_time, int samples);

// The same in a forked child, killed at `timeout`. Never throws: on failure returns
// {"error": "..."}.
nlohmann::ordered_json measure_floors_in_child(std::chrono::nanoseconds min_time, int samples,
                                               std::chrono::milliseconds timeout);

// Floors from a measurement before and one after some trials (the whole run's, for the report's
// context.floors, or one workload's): per probe both figures and, as `ns_per_op` and `p50_ns`,
// the lower of them (a floor is what the primitive can do).
nlohmann::ordered_json combine_floors(const nlohmann::ordered_json& before, const nlohmann::ordered_json& after);

// Probe name -> its floor in a combine_floors() result: p50_ns where the probe has one (a median
// to set against a workload's median), else ns_per_op, with the two measurements it was the lower
// of; empty when floors were not measured.
struct floor_value {
  double ns = 0;
  double before_ns = 0;  // 0: that measurement is missing
  double after_ns = 0;
};
std::map<std::string, floor_value> floor_values(const nlohmann::ordered_json& floors);

// The table `cmbench floors` prints.
std::string floors_table(const nlohmann::ordered_json& measured);

}  // namespace cmbench
