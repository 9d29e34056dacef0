// The summary table `cmbench run` prints at the end: one block per workload and parameter
// combination, one line per run, each workload's figure of merit.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/report.hpp"

namespace cmbench {

// `rows`: the report's `benchmarks`, as build_rows() made them from `runs`. Every figure a line
// shows is read from its run's aggregate row (RUN_median): the report computes each median once,
// and the table cannot say otherwise than the report. `runs` gives what is not a figure: the
// blocks, the models, why a run has no figure, and the floors its round trips were read against.
std::string summary_table(const std::vector<run_record>& runs, const nlohmann::ordered_json& rows);

}  // namespace cmbench
