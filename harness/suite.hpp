// `cmbench run`: plan the matrix, run every trial in its own process, write the report, print
// the summary. Progress goes to stderr, the summary table to stdout.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "harness/link.hpp"
#include "harness/params.hpp"
#include "harness/plan.hpp"  // select_models, select_workloads
#include "harness/report.hpp"
#include "harness/topology.hpp"

namespace cmbench {

struct suite_options {
  std::vector<const model_entry*> models;
  std::vector<const workload_entry*> workloads;
  std::vector<param_override> overrides;
  preset chosen_preset = preset::standard;
  int repetitions = 3;
  int warmup = 0;
  std::chrono::milliseconds timeout{std::chrono::seconds{120}};
  std::string out;
  bool floors = true;                            // measure the floors before and after the trials
  bool accept_long_runs = false;                 // run what the cost estimate says is past the limits
  std::chrono::nanoseconds floor_time{50'000'000};  // at least this long per floor sample
  std::string self_exe;
  std::string command_line;
  std::vector<std::string> args;  // the command line after the program's name: the journal's, for --resume
  bool force = false;             // replace a report (or an interrupted run's journal) at `out`
  std::string resume_journal;     // finish the run this journal holds; empty: a new run
  // Where this rank sits (rank 0: the coordinator, which runs the suite) and how the nodes of the
  // distributed workloads are reached: embedded (started here) when no launcher started the run.
  topology topo;
  std::optional<std::string> token_file;  // --token-file
  std::string listen_host;                // --listen: where embedded nodes serve (loopback)
  // --link: the conditions every connection between the coordinator and a node goes through (a
  // proxy of the suite's applies them); inactive: connections go straight to the nodes.
  link_conditions link;
};

// Returns the process exit status: 0 when the report was written and every ok run verified.
// Throws std::invalid_argument for bad input before any trial runs. Interrupted once the trials
// have begun, it writes a partial report of what finished (kept in the journal too) and ends the
// process by the signal.
int run_suite(const suite_options& options);

}  // namespace cmbench
