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

// The report's context.floors from a measurement before and one after the trials: per probe
// both figures and, as `ns_per_op` and `p50_ns`, the lower of them (a floor is what the
// primitive can do).
nlohmann::ordered_json combine_floors(const nlohmann::ordered_json& before, const nlohmann::ordered_json& after);

// Probe name -> its floor in a context.floors: p50_ns where the probe has one (a median to set
// against a workload's median), else ns_per_op; empty when floors were not measured.
std::map<std::string, double> floor_values(const nlohmann::ordered_json& floors);

// The table `cmbench floors` prints.
std::string floors_table(const nlohmann::ordered_json& measured);

}  // namespace cmbench
