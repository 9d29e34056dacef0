// One trial: one fresh process that prepares the input, sets the model up (timed apart), runs the
// measured region once, tears the model down and reports what it measured.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/system.hpp"
#include "workloads/workload.hpp"

namespace cmbench {

struct trial_request {
  std::string workload;
  std::string model;
  param_values params;
  // The trial's ends of what it shares with the harness (workloads/observe.hpp): the shared
  // page's memfd, the sample-request pipe's write end and the reply pipe's read end; empty: none.
  std::vector<int> observe_fds;
  // A distributed workload's serving nodes for this trial ("host:port"), started by the harness;
  // the token is in the environment (CMBENCH_TOKEN). Empty for a local workload.
  std::vector<std::string> nodes;
  // How long the trial's remote calls may take, from the trial's start: a little less than the
  // trial's timeout, so a dead or hung node fails the run with its name. 0: no remote calls.
  std::int64_t remote_timeout_ms = 0;
  // The same as a point in time, set by run_trial_process when it starts the trial process: the
  // start plus remote_timeout_ms on the steady clock (CLOCK_MONOTONIC, one for every process of
  // the host), so the time the trial process takes to start counts against it, as it counts
  // against the trial's timeout. 0: from remote_timeout_ms, counted from when the trial reads it.
  std::int64_t remote_deadline_ns = 0;
  // The nodes' control ports, in the same order, for a workload whose nodes work (workload_entry::
  // node_prepare); empty otherwise.
  std::vector<std::string> node_controls = {};
};

// One measurement of the memory of every process of the trial, with what was alive then.
struct memory_sample {
  bool taken = false;
  std::int64_t rss_bytes = 0;
  std::int64_t pss_bytes = 0;
  std::int64_t processes = 0;
  std::int64_t threads = 0;
  std::int64_t units_alive = 0;  // the workload's gauge (observe.hpp) at the sample
  std::int64_t cost_ns = 0;      // how long the sample took
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(memory_sample, taken, rss_bytes, pss_bytes, processes, threads, units_alive,
                                   cost_ns)

// A trial's per-operation latencies: the histogram's non-empty buckets and its summary.
struct latency_record {
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
  std::uint64_t min_ns = 0;
  std::uint64_t max_ns = 0;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;  // (bucket index, count)

  static latency_record of(const latency_histogram& h);
  void add_to(latency_histogram& h) const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(latency_record, count, sum_ns, min_ns, max_ns, buckets)

struct trial_result {
  bool ok = false;
  std::string error;        // why it failed: the limit hit, the exception, the signal, the timeout
  bool limit_hit = false;   // a model named a system limit it could not pass
  bool timed_out = false;
  std::uint64_t checksum = 0;
  std::int64_t wall_ns = 0;   // the measured region, read inside the trial
  std::int64_t setup_ns = 0;  // constructing the model: pools, forks, event loops
  system::usage usage;        // the measured region, every process of the trial
  std::int64_t rss_before_bytes = 0;  // all the trial's processes, just before the measured region
  std::int64_t peak_rss_bytes = 0;    // all the trial's processes at once, sampled, at least the trial's own peak
  std::int64_t pss_before_bytes = 0;   // the same, proportional set size (shared pages split)
  std::int64_t peak_pss_bytes = 0;     // the same, proportional set size: the real footprint
  std::int64_t peak_processes = 0;
  std::int64_t processes_before = 0;  // the trial's processes and OS threads just before the region
  std::int64_t threads_before = 0;
  bool gauge_used = false;      // the workload counted its units alive (observe.hpp)
  memory_sample at_peak;        // the sample with the highest PSS
  memory_sample at_most_alive;  // the sample with the most units the workload counted alive
  memory_sample at_all_alive;   // the sample the workload asked for with every unit alive
  std::int64_t memory_samples = 0;   // samples the harness took during the trial
  std::int64_t sampler_cpu_ns = 0;   // CPU time they cost the harness (not the trial's)
  std::map<std::string, double> observed;  // the workload's own figures from inside the run
  latency_record latency;                  // count 0: the workload records no latencies
};

// Parent and child exchange requests and results as JSON, field for field.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(trial_request, workload, model, params, observe_fds, nodes,
                                                remote_timeout_ms, remote_deadline_ns, node_controls)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(trial_result, ok, error, limit_hit, timed_out, checksum, wall_ns, setup_ns,
                                   usage, rss_before_bytes, peak_rss_bytes, pss_before_bytes, peak_pss_bytes,
                                   peak_processes, processes_before, threads_before, gauge_used, at_peak,
                                   at_most_alive,                                   at_all_alive, memory_samples, sampler_cpu_ns, observed, latency)

// Child side (`cmbench trial`): runs the trial in this process and writes the result to `path`.
// Returns the process exit status: 0 when a result (ok or failed) was written.
int run_trial_here(const trial_request& request, const std::string& path);

// Parent side: runs the trial in a fresh process of its own process group, sampling the group's
// memory, killing the whole group at the timeout. Never throws for a failed trial.
trial_result run_trial_process(const trial_request& request, std::chrono::milliseconds timeout,
                               const std::string& self_exe);

}  // namespace cmbench
