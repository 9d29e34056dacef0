// The floors in a report: each model primitive's cheapest hand-off or unit, measured in the same
// run as the workloads (in a child process, before and after the trials), so a row can be read
// against its own model's floor.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

namespace cmbench {

struct run_record;

// Every probe measured in this process: [{name, what, per, ns_per_op, p50_ns, samples_ns, ops_per_sample}].
// `only`: the probes of these names (empty: every probe).
nlohmann::ordered_json measure_floors_here(std::chrono::nanoseconds min_time, int samples,
                                          const std::set<std::string>& only = {});

// The same in a forked child, killed at `timeout`. Never throws: on failure returns
// {"error": "..."}.
nlohmann::ordered_json measure_floors_in_child(std::chrono::nanoseconds min_time, int samples,
                                               std::chrono::milliseconds timeout,
                                               const std::set<std::string>& only = {});

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

// The floors of one `cmbench run`, each measurement in a child process: before and after the
// trials, so their drift is visible too; and a workload whose rows are read against a floor (its
// round trips' p50) is bracketed by its own pair, as close in time to its trials as can be (a
// virtual machine's cross-CPU wake-up drifts by 2x from one minute to the next). A measurement
// with no trial since the last one is not repeated. Off (--floors off): measures nothing.
class suite_floors {
 public:
  // On: measures the first, "before the trials", now.
  suite_floors(bool on, std::chrono::nanoseconds sample_time);
  // Around the trials of runs [first, last), one workload's, read against their floor: only the
  // probes those runs are read against (`probes`), so a bracket costs a probe, not every one.
  void before_block(const std::string& workload, const std::set<std::string>& probes);
  void after_block(std::size_t first, std::size_t last, const std::string& workload,
                   const std::set<std::string>& probes);
  void trial_ran() { fresh_ = false; }
  // context.floors (null when off), measuring the last, "after the trials", unless `interrupted`
  // (the user asked to stop, not for 3 more seconds); sets each run's round_trip_floor*.
  nlohmann::ordered_json finish(std::vector<run_record>& runs, bool interrupted);

 private:
  nlohmann::ordered_json measure(const std::string& when, const std::set<std::string>& only = {}) const;
  bool on_;
  std::chrono::nanoseconds sample_time_;
  nlohmann::ordered_json first_;
  nlohmann::ordered_json latest_;
  nlohmann::ordered_json block_before_;
  bool fresh_ = true;         // no trial ran since latest_
  bool latest_whole_ = true;  // latest_ measured every probe, not only a block's
  std::vector<std::tuple<std::size_t, std::size_t, nlohmann::ordered_json>> bracketed_;  // runs [first, last)
};

}  // namespace cmbench
