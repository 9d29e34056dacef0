// Before any trial runs: which runs the selection makes, what they cost at the least (each
// workload's own cost model), and their reference checksums, computed in a child process under
// the trial timeout, so neither a typo nor a huge in-range value makes cmbench work silently for
// hours.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/params.hpp"
#include "harness/report.hpp"

namespace cmbench {

// Models named by a comma-separated list of names, family names or "all". Throws
// std::invalid_argument naming the unknown entry and listing the known ones.
std::vector<const model_entry*> select_models(const std::string& list);
std::vector<const workload_entry*> select_workloads(const std::string& list);

// Throws std::invalid_argument unless 1 <= repetitions <= 10,000, 0 <= warmup <= 10,000 and the
// timeout is positive.
void check_counts(int repetitions, int warmup, std::chrono::milliseconds timeout);

// Every run, workload by workload, model by model: one per parameter combination, serial/baseline
// once per combination of the work's parameters (it ignores workers and concurrency). Throws
// std::invalid_argument for a bad parameter, before anything runs.
std::vector<run_record> plan_runs(const std::vector<const workload_entry*>& workloads,
                                  const std::vector<const model_entry*>& models, preset chosen,
                                  const std::vector<param_override>& overrides, unsigned cpus);

// A suite whose least cost passes this is refused without --accept-long-runs.
inline constexpr double suite_seconds_limit = 3600;

// Throws std::invalid_argument, naming the run, its estimate and --accept-long-runs, when a trial's
// least cost passes `timeout` or the whole suite's (trials and references) passes an hour. Returns
// the suite's least cost in seconds.
double check_cost(const std::vector<run_record>& runs, int trials_per_run, std::chrono::milliseconds timeout,
                  unsigned cpus, bool accept_long_runs);

// The reference checksum of `params`, computed in a child process killed at `timeout`. Throws
// std::invalid_argument naming the workload and the timeout when it did not finish in time.
std::uint64_t reference_in_child(const workload_entry& workload, const param_values& params,
                                 std::chrono::milliseconds timeout);

// Sets every run's expected checksum, computing each combination's reference once (as above).
void set_references(std::vector<run_record>& runs, std::chrono::milliseconds timeout);

}  // namespace cmbench
