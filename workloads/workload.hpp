// The workload contract: parameters with presets, a deterministic input, the job handed to a
// model inside the measured region, and the reference checksum every model must reproduce.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.hpp"

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

  std::int64_t value_for(preset p) const {
    return p == preset::quick ? quick : p == preset::full ? full : standard;
  }
};

using param_values = std::map<std::string, std::int64_t>;

// What one trial measured, as the workload needs it to derive its own metrics.
struct trial_figures {
  double wall_seconds = 0;
  double peak_extra_bytes = 0;  // peak memory of all the trial's processes minus memory before the run
};

// Built in the trial process before the model is constructed, and alive until it is destroyed.
class prepared_run {
 public:
  virtual ~prepared_run() = default;
  virtual model_config config() const = 0;
  // The measured region: hand the job to the model, return its checksum.
  virtual std::uint64_t run(model_instance& model) = 0;
};

struct workload_entry {
  std::string name;
  std::string description;
  std::string measures;                 // what the figure of merit is, one line
  std::vector<param_spec> params;
  // Rejects combinations the single-parameter ranges cannot (throws std::invalid_argument).
  void (*validate)(const param_values&) = nullptr;
  std::unique_ptr<prepared_run> (*prepare)(const param_values&) = nullptr;
  // The checksum serial/baseline computes for these parameters, without its waits.
  std::uint64_t (*reference)(const param_values&) = nullptr;
  // Units created (tasks, tree nodes): the denominator of per-unit figures.
  std::uint64_t (*units)(const param_values&) = nullptr;
  // Workload-specific figures from one trial, by name (for example makespan over ideal).
  std::map<std::string, double> (*metrics)(const param_values&, const trial_figures&) = nullptr;
};

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
