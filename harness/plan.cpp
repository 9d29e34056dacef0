#include "harness/plan.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <stdexcept>
#include <string>

#include "harness/child.hpp"
#include "harness/format.hpp"
#include "harness/interrupts.hpp"
#include "harness/params.hpp"

namespace cmbench {
namespace {

std::string seconds_text(double s) { return duration_text(std::chrono::duration<double>(s)); }

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> parts;
  std::stringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// The entries a comma-separated list names, each once, in the list's order. `matches(entry,
// name)` says whether `name` (never "all": that names every entry) names `entry`.
template <class Entry, class Matches>
std::vector<const Entry*> select(const std::string& list, const std::vector<Entry>& all, Matches matches,
                                 const char* kind, const std::string& also_known) {
  std::vector<const Entry*> chosen;
  for (const auto& name : split(list)) {
    bool found = false;
    for (const auto& entry : all) {
      if (name != "all" && !matches(entry, name)) continue;
      if (std::find(chosen.begin(), chosen.end(), &entry) == chosen.end()) chosen.push_back(&entry);
      found = true;
    }
    if (!found) {
      std::string known;
      for (const auto& entry : all) known += (known.empty() ? "" : ", ") + entry.name;
      throw std::invalid_argument("unknown " + std::string(kind) + " '" + name + "' (known: " + known + "; " +
                                  also_known + ")");
    }
  }
  if (chosen.empty()) throw std::invalid_argument("--" + std::string(kind) + "s selects no " + kind);
  return chosen;
}

}  // namespace

std::vector<const model_entry*> select_models(const std::string& list) {
  std::string families;  // in registry order, each once
  std::set<std::string_view> seen;
  for (const auto& m : all_models()) {
    if (seen.insert(m.info.family).second) families += (families.empty() ? "" : ", ") + std::string(m.info.family);
  }
  return select(list, all_models(), [](const model_entry& m, const std::string& name) {
    return m.name == name || m.info.family == name;
  }, "model", "or a family: " + families + "; or all");
}

std::vector<const workload_entry*> select_workloads(const std::string& list) {
  return select(list, all_workloads(), [](const workload_entry& w, const std::string& name) {
    return w.name == name;
  }, "workload", "or all");
}

void check_counts(int repetitions, int warmup, std::chrono::milliseconds timeout) {
  // Counts are bounded before any arithmetic on them: no sum of them can overflow.
  constexpr int max_count = 10'000;
  if (repetitions < 1 || repetitions > max_count) {
    throw std::invalid_argument("--repetitions must be from 1 to " + std::to_string(max_count) + " (got " +
                                std::to_string(repetitions) + ")");
  }
  if (warmup < 0 || warmup > max_count) {
    throw std::invalid_argument("--warmup must be from 0 to " + std::to_string(max_count) + " (got " +
                                std::to_string(warmup) + ")");
  }
  if (timeout.count() <= 0) throw std::invalid_argument("--timeout must be positive");
}

std::vector<run_record> plan_runs(const std::vector<const workload_entry*>& workloads,
                                  const std::vector<const model_entry*>& models, preset chosen,
                                  const std::vector<param_override>& overrides, unsigned cpus) {
  std::vector<run_record> runs;
  std::size_t family = 0;
  for (const auto* w : workloads) {
    const auto combos = combinations(*w, chosen, overrides, cpus);
    for (const auto* m : models) {
      std::size_t instance = 0;
      std::set<param_values> baseline_work;  // the baseline: once per combination of the work's parameters
      for (const auto& params : combos) {
        if (m->info.baseline && !baseline_work.insert(work_params(*w, params)).second) continue;
        run_record r;
        r.workload = w;
        r.model = m;
        r.params = params;
        r.family_index = family;
        r.instance_index = instance++;
        runs.push_back(std::move(r));
      }
      ++family;
    }
  }
  return runs;
}

double check_cost(const std::vector<run_record>& runs, int trials_per_run, std::chrono::milliseconds timeout,
                  unsigned cpus, bool accept_long_runs) {
  const double timeout_s = static_cast<double>(timeout.count()) / 1000.0;
  double total = 0;
  std::map<std::pair<const workload_entry*, param_values>, double> references;
  for (const auto& r : runs) {
    if (r.workload->cost == nullptr) continue;
    const cost_estimate c = r.workload->cost(r.params, r.model->info, cpus);
    references.emplace(std::make_pair(r.workload, r.params), c.reference_seconds);
    total += c.trial_seconds * trials_per_run;
    if (accept_long_runs) continue;
    const std::string what = r.workload->name + " on " + r.model->name + " (" + params_label(*r.workload, r.params) + ")";
    if (c.trial_seconds > timeout_s) {
      throw std::invalid_argument(what + " needs at least " + seconds_text(c.trial_seconds) +
                                  " per trial, past --timeout " + seconds_text(timeout_s) +
                                  ": raise --timeout, shrink the run, or pass --accept-long-runs");
    }
    if (c.reference_seconds > timeout_s) {
      throw std::invalid_argument("the reference checksum of " + what + " needs at least " +
                                  seconds_text(c.reference_seconds) + ", past --timeout " + seconds_text(timeout_s) +
                                  ": raise --timeout, shrink the run, or pass --accept-long-runs");
    }
  }
  for (const auto& [key, seconds] : references) total += seconds;
  if (!accept_long_runs && total > suite_seconds_limit) {
    throw std::invalid_argument("the runs selected need at least " + seconds_text(total) + " (" +
                                std::to_string(runs.size()) + " runs x " + std::to_string(trials_per_run) +
                                " trials), past " + seconds_text(suite_seconds_limit) +
                                ": select fewer, or pass --accept-long-runs");
  }
  return total;
}

std::uint64_t reference_in_child(const workload_entry& workload, const param_values& params,
                                 std::chrono::milliseconds timeout) {
  const child_output out = run_in_child_group([&] {
    const std::uint64_t value = workload.reference(params);
    return std::string(reinterpret_cast<const char*>(&value), sizeof(value));
  }, timeout);
  if (!out.started) throw std::runtime_error("cannot start the reference process: " + out.error);
  if (out.text.size() != sizeof(std::uint64_t)) {
    throw std::invalid_argument("the reference checksum of " + workload.name + " (" + params_label(workload, params) +
                                ") was not computed within --timeout " +
                                seconds_text(static_cast<double>(timeout.count()) / 1000.0) +
                                ": raise --timeout or shrink the run");
  }
  std::uint64_t value = 0;
  std::memcpy(&value, out.text.data(), sizeof(value));
  return value;
}

void set_references(std::vector<run_record>& runs, std::chrono::milliseconds timeout) {
  // Each workload's reference(): the serial computation of its work without waits.
  std::map<std::pair<const workload_entry*, param_values>, std::uint64_t> references;
  for (auto& r : runs) {
    auto key = std::make_pair(r.workload, r.params);
    auto it = references.find(key);
    if (it == references.end()) it = references.emplace(key, reference_in_child(*r.workload, r.params, timeout)).first;
    r.expected_checksum = it->second;
  }
}

}  // namespace cmbench
