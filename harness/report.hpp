// The report: Google Benchmark's JSON (context + benchmarks rows) plus cmbench's structured
// fields, built from the runs of a suite (harness/output.hpp writes it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/link.hpp"
#include "harness/trial.hpp"
#include "models/model.hpp"
#include "workloads/workload.hpp"

namespace cmbench {

// Google Benchmark's schema, which the rows follow: its tools (compare.py) refuse any other.
inline constexpr int json_schema_version = 1;
// cmbench's own report format. 2: context.models and context.workloads carry every model's and
// workload's facts; rows no longer repeat the model's mechanism, and carry units_at_once. (Format
// 1, and 0, said their version in json_schema_version and had no cmbench_schema_version.)
inline constexpr int cmbench_schema_version = 2;

// One run: a model on a workload at one parameter combination, over its repetitions.
struct run_record {
  const workload_entry* workload = nullptr;
  const model_entry* model = nullptr;
  param_values params;
  std::uint64_t expected_checksum = 0;
  std::vector<trial_result> trials;  // one per repetition, in order
  std::vector<std::string> skipped;  // for repetitions not run: why (index = repetition - trials.size())
  std::size_t not_run = 0;           // repetitions after those, not reached: the suite stopped (a partial report)
  std::size_t family_index = 0;
  std::size_t instance_index = 0;
  std::string round_trip_floor;    // the probe the model's round trips are read against in this run
  double round_trip_floor_ns = 0;  // its floor measured in this run; 0: not measured
  // The two measurements round_trip_floor_ns is the lower of: just before and just after this
  // workload's trials where the workload is read against its floor, else the whole run's.
  double round_trip_floor_before_ns = 0;
  double round_trip_floor_after_ns = 0;
  // The baseline model's median wall time at this run's work (link_baselines), for the speedup
  // metric of a workload where one means something; 0: none to compare with.
  double baseline_wall_ns = 0;
  // The emulated link a distributed run's connections went through (--link); inactive: none.
  link_conditions link;

  std::string run_name() const;
  std::size_t repetitions() const { return trials.size() + skipped.size() + not_run; }
  unsigned workers() const;
};

struct report_settings {
  std::string command_line;
  std::string preset;
  int repetitions = 1;
  int warmup = 0;
  double timeout_seconds = 0;
  // The 1/5/15-minute load averages before the first trial: other work on the machine. (At the
  // end they mostly count the run's own trials: memory's thousands of units, for one.)
  std::vector<double> load_before;
  // From /proc/stat: CPUs busy with other work, and CPUs' worth of time stolen by the hypervisor,
  // over a short window just before the first trial (the load average lags by minutes); and the
  // share of all CPU time stolen while the trials ran. Negative: not measured.
  double busy_window_s = 0;
  double busy_cpus_before = -1;
  double steal_cpus_before = -1;
  double steal_share_during = -1;
  // How far the suite got. A partial report (interrupted) says how many of its trials ran and
  // which journal holds them for --resume; a resumed one, how many came from its journal.
  bool partial = false;
  std::string partial_reason;           // "interrupted by SIGTERM", ...
  std::size_t trials_planned = 0;       // runs x (warmup + repetitions)
  std::size_t trials_finished = 0;      // ran to an end, in this process or one the journal kept
  std::string journal;                  // partial: the journal to resume; empty: none kept
  std::string resumed_from;             // the journal this run resumed; empty: not resumed
  std::size_t trials_from_journal = 0;
  // Where the distributed workloads' nodes were: the launcher, this rank's topology and every node
  // (null: the run had no nodes).
  nlohmann::ordered_json distributed;
  // The emulated link (--link): its conditions and the proxy's measured cost (null: none).
  nlohmann::ordered_json link;
};

// The memory a trial's run added at its peak: PSS of every process of the trial, less before.
double extra_bytes(const trial_result& t);

// What a trial's units took, measured at one moment, with the units alive at that moment:
// - "all_alive": the sample the workload asked for when every unit was provably alive (memory);
// - "most_alive_counted": the sample with the most units the workload counted alive (io and
//   mixed: waits in flight), with those units or, where more, the OS threads the run had added
//   (a thread or a process per unit also holds the ones not waiting yet or not reaped yet);
// - "peak_os_threads": the highest-PSS sample, with the OS threads the run had added by then
//   (a thread or a process per unit; pools and event loops add none, so no per-unit figure).
struct unit_memory {
  double pss_bytes = 0;  // above the memory just before the measured region
  double rss_bytes = 0;
  double units_alive = 0;
  memory_sample sample;
  const char* measured = "";
};
unit_memory unit_memory_of(const trial_result& t);

// Sets each run's baseline_wall_ns from the baseline model's run at the same work parameters,
// where its workload's speedup means something and the baseline ran and verified.
void link_baselines(std::vector<run_record>& runs);

// `floors`: context.floors (see harness/floors.hpp), or null when the run measured none.
nlohmann::ordered_json build_context(const report_settings& settings, const std::vector<run_record>& runs,
                                     const nlohmann::ordered_json& floors);
nlohmann::ordered_json build_rows(const std::vector<run_record>& runs);

// Checks that `path` can be written, before any work is done. Throws with the reason.
void check_writable(const std::string& path);

}  // namespace cmbench
