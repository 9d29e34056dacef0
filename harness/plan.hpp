// Before any trial runs: what the planned runs cost at the least (each workload's own cost model),
// and their reference checksums, computed in a child process under the trial timeout, so neither a
// typo nor a huge in-range value makes cmbench work silently for hours.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "harness/report.hpp"

namespace cmbench {

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

}  // namespace cmbench
