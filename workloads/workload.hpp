// The workload contract: parameters with presets, a deterministic input, the job handed to a
// model inside the measured region, and the reference checksum every model must reproduce.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.hpp"
#include "workloads/latency_histogram.hpp"

namespace cmbench {

enum class preset { quick, standard, full };  // "quick", "default", "full" on the command line

struct param_spec {
  std::string name;
  std::string help;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::int64_t quick = 0;
  std::int64_t standard = 0;  // the `default` preset
  std::int64_t full = 0;
  bool zero_means_cpus = false;  // 0 stands for the CPUs this process may run on, resolved before a run
  // It sizes the model, not the work (how many workers, how many units alive at once): the
  // baseline model ignores it, so it runs once for all its values.
  bool sizes_model = false;
  // Its value names a model: given by name on the command line (--param node_model=threads/pool),
  // held as the model's order key, 0 for none.
  bool names_model = false;

  std::int64_t value_for(preset p) const {
    return p == preset::quick ? quick : p == preset::full ? full : standard;
  }
};

using param_values = std::map<std::string, std::int64_t>;

// The `workers` parameter most workloads share: how many threads, processes or event loops a
// pool-like model uses, 0 meaning every CPU this run may use.
inline param_spec workers_param(std::int64_t quick = 0, std::int64_t standard = 0, std::int64_t full = 0) {
  return {"workers", "pool threads / processes / event loops (0: every CPU this run may use)", 0, 100'000,
          quick, standard, full, true, true};
}

// What a figure's value is: nanoseconds, bytes, a count per second or a plain ratio. Tools
// scale and label it by this, never by its name.
enum class figure_kind : std::uint8_t { time_ns, bytes, rate, ratio };
constexpr std::string_view figure_kind_name(figure_kind kind) {
  switch (kind) {
    case figure_kind::bytes: return "bytes";
    case figure_kind::rate: return "rate";
    case figure_kind::ratio: return "ratio";
    case figure_kind::time_ns: break;
  }
  return "time_ns";
}

enum class better : std::uint8_t { lower, higher };
constexpr std::string_view better_name(better direction) { return direction == better::higher ? "higher" : "lower"; }

// A figure of merit: a metric every ok row of the workload carries, and how to read it.
struct figure_of_merit {
  std::string metric;   // its name in a row's `metrics`
  std::string label;    // what it is, for titles and axes: "time per hand-off (message phase)"
  std::string heading;  // the summary table's column heading: "ns/hop"
  figure_kind kind = figure_kind::time_ns;
  better direction = better::lower;
};

// The metric the harness adds to every row of a workload whose `speedup` holds: the baseline
// model's median wall time at the same work over the row's.
inline constexpr std::string_view speedup_metric = "speedup";

// What one trial measured, as the workload needs it to derive its own metrics.
struct trial_figures {
  double wall_seconds = 0;
  double peak_extra_bytes = 0;  // peak memory of all the trial's processes minus memory before the run
  std::map<std::string, double> observed;  // what the run observed (run_observations::metrics)
};

// What only the run itself can know, read in the trial process after the measured region.
struct run_observations {
  std::map<std::string, double> metrics;       // for example blocked sends
  const latency_histogram* latency = nullptr;  // per-operation latencies, when the workload has them
};

// Built in the trial process before the model is constructed, and alive until it is destroyed.
class prepared_run {
 public:
  virtual ~prepared_run() = default;
  virtual model_config config() const = 0;
  // The measured region: hand the job to the model, return its checksum.
  virtual std::uint64_t run(model_instance& model) = 0;
  // The run's checksum from what run() returned, called after the clock stopped: a workload
  // whose answer lies in shared state digests it here, outside the measured region.
  virtual std::uint64_t checksum(std::uint64_t returned) const { return returned; }
  virtual run_observations observe() const { return {}; }
  // Checks what the run did beyond its checksum (every wait really waited, for one) and adds the
  // figures that show it to `metrics`. Returns why the run fails verification, or "" when it
  // passes.
  virtual std::string verify(const model_info& /*model*/, std::map<std::string, double>& /*metrics*/) const {
    return {};
  }
};

// What a run costs at the very least, from the workload's own cost model (its units, work and
// waits): no model does the trial faster, and no machine computes the reference faster. The harness
// refuses, before anything runs, a run whose trial cannot fit the trial timeout or a suite that
// cannot fit an hour, naming the estimate and the flag that accepts it.
struct cost_estimate {
  double trial_seconds = 0;      // the measured region on this model
  double reference_seconds = 0;  // computing the reference checksum (once per combination)
};

// The waits of `tasks` tasks of `wait_seconds` each, as the model can hold them at once.
inline double wait_rounds_seconds(const param_values& p, const model_info& model, std::uint64_t tasks,
                                  double wait_seconds) {
  const std::uint64_t max_alive = p.contains("concurrency") ? static_cast<std::uint64_t>(p.at("concurrency")) : 0;
  const model_config config{static_cast<unsigned>(p.at("workers")), max_alive};
  const std::uint64_t at_once = std::max<std::uint64_t>(1, wait_limit(model.waits, config, tasks));
  return static_cast<double>((tasks + at_once - 1) / at_once) * wait_seconds;
}

// A working node (below) is told to go: where its peers serve, and by when it must be done.
struct node_go {
  std::size_t index = 0;            // this node among the trial's nodes, from 0 (node index + 1 in the report)
  std::vector<node_address> peers;  // every node's serving address, in node order, this one's included
  std::string token;
  std::chrono::steady_clock::time_point deadline;
};

// What a working node answers once its part is done: its share of the checksum and its figures,
// or why it failed.
struct node_done {
  std::uint64_t checksum = 0;
  std::map<std::string, double> figures;
  std::string error;  // empty: it did its part
};

// The node side of a distributed workload whose nodes work as well as serve (mapreduce). Built in
// a node's serving process before either of its two model instances (a pool forks its workers
// when constructed, so whatever their units touch must be mapped by then) and alive until the
// serving process ends. The serving instance serves the peers' calls with task_value while the
// working instance runs the node's part (its bulk jobs, its scatter jobs to the peers) in run().
class node_work {
 public:
  virtual ~node_work() = default;
  // A served task, in whatever unit or process of the serving instance serves it.
  virtual std::uint64_t task_value(std::uint64_t task, std::uint32_t compute_us, const std::uint8_t* payload,
                                   std::uint32_t bytes) = 0;
  // The node's part of the run, on the working instance, once the coordinator says go.
  virtual node_done run(model_instance& worker, const node_go& go) = 0;
};

struct workload_entry {
  std::string name;
  std::string description;
  std::string measures;                 // what the figure of merit is, one line
  std::vector<param_spec> params;
  // Rejects combinations the single-parameter ranges cannot (throws std::invalid_argument).
  void (*validate)(const param_values&) = nullptr;
  std::unique_ptr<prepared_run> (*prepare)(const param_values&) = nullptr;
  // The checksum every model must reproduce: the serial computation of the work for these
  // parameters, without waits, done once per parameter combination by the harness.
  std::uint64_t (*reference)(const param_values&) = nullptr;
  // Units created (tasks, tree nodes): the denominator of per-unit figures.
  std::uint64_t (*units)(const param_values&) = nullptr;
  // The run's least cost on `model` with `cpus` CPUs.
  cost_estimate (*cost)(const param_values&, const model_info& model, unsigned cpus) = nullptr;
  // Workload-specific figures from one trial, by name (for example makespan over ideal).
  std::map<std::string, double> (*metrics)(const param_values&, const trial_figures&) = nullptr;

  // Its facts, read by the harness, the report's context and the scripts; nothing else names a
  // workload to decide anything.
  int order = 0;  // where it sorts among all workloads (lists, reports, charts); distinct
  // The figures of merit, the headline first: the summary table's column, the overview's cell.
  std::vector<figure_of_merit> figures;
  // A speedup over the baseline model says something (the work is computing, not waiting or
  // creating units): the harness adds the `speedup` metric, the scripts chart it against workers.
  bool speedup = false;
  // Its units are alive at once, so memory per unit alive and the largest count reached matter.
  bool memory_per_unit = false;
  // Its figures are read against each model's own round-trip floor (model_info::round_trip_floor),
  // measured just before and just after its trials.
  bool read_against_floor = false;
  std::string unit = "unit";  // what `units` counts, singular: "task", "hop", "round trip"
  // The most units alive at once for these parameters, whatever the model: what a model that
  // makes a thread or a process per unit must be able to create.
  std::uint64_t (*alive)(const param_values&) = nullptr;
  // The floor probe its figures are read against for every model (read_against_floor), when it is
  // not each model's own round_trip_floor: a remote call's is a loopback TCP round trip.
  std::string floor_probe = {};
  // The part of each unit's latency that is work the workload asks for (a wait, a computation),
  // not the mechanism: a latency is read against the floor only where this is zero (null: zero).
  double (*work_in_latency_ns)(const param_values&) = nullptr;
  // Its coordinator calls nodes: the harness starts a serving process on W nodes for each trial
  // (the `nodes` parameter), on the model `node_model` names or the row's own, and the trial's
  // coordinator runs on `coordinator_model` or the row's own.
  bool remote = false;
  // A distributed workload's node side: the value a node computes for a task (run in the node's
  // serving process, whatever model serves it).
  std::uint64_t (*node_value)(std::uint64_t task, std::uint32_t compute_us, const std::uint8_t* payload,
                              std::uint32_t bytes) = nullptr;
  // A distributed workload whose coordinator is its own code, the same for every model (a load
  // generator), not the row's model: what it is, in one line. The trial then constructs the
  // baseline model, which makes no units, and the row's `sides` names this instead. Empty: the
  // coordinator runs on the row's model (or the one coordinator_model pins).
  std::string own_coordinator = {};
  // A metric that, when a row's value is 1, makes the row's headline figure a bound rather than the
  // model's own figure, and why (the load generator, not the server, limited the rate): the
  // summary marks the figure ">=" or "<=" and says why; the report carries it to the scripts.
  // Empty metric: none.
  struct bound_flag {
    std::string metric;
    std::string why;
  };
  bound_flag headline_bound = {};
  // A distributed workload whose nodes work too: node `index`'s part (from 0), built in its serving
  // process, which then holds two instances of the node's model (one serving, one working) and
  // waits for the coordinator's go on a control port of its own (workloads/node_control.hpp).
  std::unique_ptr<node_work> (*node_prepare)(const param_values&, std::size_t index) = nullptr;
  // Metrics that split the headline time into phases, in order, so tools can stack them.
  struct phase {
    std::string metric;  // a key of the rows' metrics
    std::string label;   // what the phase is, for legends: "map"
    figure_kind kind = figure_kind::time_ns;
  };
  std::vector<phase> phases = {};
  // The prefix of the metrics counting the client side of the trial's model connections
  // (PREFIX_connections, PREFIX_bytes_sent, PREFIX_bytes_received), which the harness checks
  // against the nodes' server side.
  std::string client_metrics = "coordinator";
};

// The names of the parameters that size the model, in the workload's order.
inline std::vector<std::string> model_params(const workload_entry& workload) {
  std::vector<std::string> names;
  for (const auto& p : workload.params) {
    if (p.sizes_model) names.push_back(p.name);
  }
  return names;
}

// The parameters that size the work, without those that size the model.
inline param_values work_params(const workload_entry& workload, const param_values& params) {
  param_values work;
  for (const auto& [name, value] : params) {
    const auto spec = std::find_if(workload.params.begin(), workload.params.end(),
                                   [&](const param_spec& p) { return p.name == name; });
    if (spec == workload.params.end() || !spec->sizes_model) work.emplace(name, value);
  }
  return work;
}

const std::vector<workload_entry>& all_workloads();
const workload_entry* find_workload(std::string_view name);

namespace detail {
bool add_workload(workload_entry entry);
}

}  // namespace cmbench

// One registration line per workload, in the workload's own .cpp file.
#define CMBENCH_REGISTER_WORKLOAD(name, factory) \
  [[maybe_unused]] static const bool cmbench_registered_workload_##name = \
      ::cmbench::detail::add_workload(factory())
