#include "harness/report.hpp"

#include "harness/params.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "harness/facts.hpp"
#include "harness/system.hpp"
#include "models/median.hpp"

namespace cmbench {
namespace {

// The baseline model's median wall time at this run's work (link_baselines) over `wall_ns`.
double speedup_over(const run_record& r, double wall_ns) { return r.baseline_wall_ns / wall_ns; }

std::string hex(std::uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%016llx", static_cast<unsigned long long>(v));
  return text;
}

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string iso_date() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[40];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S%z", &local);
  std::string s = text;
  if (s.size() > 5) s.insert(s.size() - 2, ":");  // +0000 -> +00:00 (ISO 8601)
  return s;
}

bool is_verified(const run_record& r, const trial_result& t) { return t.ok && t.checksum == r.expected_checksum; }

std::string failure_of(const run_record& r, const trial_result& t) {
  if (!t.ok) return t.error;
  if (t.checksum != r.expected_checksum) {
    return "checksum mismatch: got " + hex(t.checksum) + ", the workload's reference is " + hex(r.expected_checksum);
  }
  return "";
}

// The figures of one ok trial, by name: `resources` and `metrics` of a row.
struct figures {
  nlohmann::ordered_json resources;
  nlohmann::ordered_json metrics;
};

figures figures_of(const run_record& r, const trial_result& t) {
  figures f;
  const double wall_s = static_cast<double>(t.wall_ns) / 1e9;
  const double cpu_ns = static_cast<double>(t.usage.user_ns + t.usage.sys_ns);
  f.resources = {{"wall_ns", t.wall_ns},
                 {"setup_ns", t.setup_ns},
                 {"user_cpu_ns", t.usage.user_ns},
                 {"sys_cpu_ns", t.usage.sys_ns},
                 {"cpu_utilization", t.wall_ns > 0 ? cpu_ns / static_cast<double>(t.wall_ns) : 0.0},
                 {"peak_rss_bytes", t.peak_rss_bytes},
                 {"rss_before_bytes", t.rss_before_bytes},
                 {"peak_pss_bytes", t.peak_pss_bytes},
                 {"pss_before_bytes", t.pss_before_bytes},
                 {"peak_processes", t.peak_processes},
                 {"processes_before", t.processes_before},
                 {"threads_before", t.threads_before},
                 {"voluntary_context_switches", t.usage.voluntary_switches},
                 {"involuntary_context_switches", t.usage.involuntary_switches},
                 {"minor_page_faults", t.usage.minor_faults},
                 {"major_page_faults", t.usage.major_faults}};
  // Per-unit memory: what the units added when it was measured, over the units alive then.
  const unit_memory um = unit_memory_of(t);
  f.resources["memory_measured"] = um.measured;
  f.resources["memory_bytes_at_measurement"] = um.pss_bytes;
  f.resources["processes_at_measurement"] = um.sample.processes;
  f.resources["threads_at_measurement"] = um.sample.threads;
  f.resources["memory_samples"] = t.memory_samples;
  f.resources["sampler_cpu_ns"] = t.sampler_cpu_ns;
  f.resources["memory_sample_cost_ns"] = um.sample.cost_ns;
  const double units = static_cast<double>(r.workload->units(r.params));
  f.metrics = {{"units", units},
               {"ns_per_unit", units > 0 ? static_cast<double>(t.wall_ns) / units : 0.0},
               {"units_per_second", wall_s > 0 ? units / wall_s : 0.0},
               {"units_alive", um.units_alive}};
  if (um.units_alive > 0) {
    f.metrics["bytes_per_unit"] = um.pss_bytes / um.units_alive;
    f.metrics["rss_bytes_per_unit"] = um.rss_bytes / um.units_alive;
  }
  for (const auto& [name, value] : t.observed) f.metrics[name] = value;
  latency_histogram h;
  t.latency.add_to(h);
  if (h.count() > 0) {
    for (const auto& [name, q] : {std::pair{"latency_p50_ns", 50.0}, {"latency_p90_ns", 90.0},
                                  {"latency_p99_ns", 99.0}, {"latency_p999_ns", 99.9}, {"latency_p9999_ns", 99.99},
                                  {"latency_max_ns", 100.0}}) {
      f.metrics[name] = static_cast<double>(h.percentile(q));
    }
  }
  // Read against the model's own floor, measured in the same run.
  if (r.workload->read_against_floor && r.round_trip_floor_ns > 0) {
    f.metrics["round_trip_floor_ns"] = r.round_trip_floor_ns;
    f.metrics["round_trip_floor_before_ns"] = r.round_trip_floor_before_ns;
    f.metrics["round_trip_floor_after_ns"] = r.round_trip_floor_after_ns;
    // Only a latency that is all mechanism is read against it: a call that waits 5 ms, or crosses
    // an emulated link (--link), is not 200x its floor.
    const bool all_mechanism =
        (r.workload->work_in_latency_ns == nullptr || r.workload->work_in_latency_ns(r.params) == 0) &&
        !r.link.active();
    if (h.count() > 0 && all_mechanism) {
      f.metrics["p50_over_floor"] = static_cast<double>(h.percentile(50)) / r.round_trip_floor_ns;
    }
  }
  if (r.baseline_wall_ns > 0 && t.wall_ns > 0) {
    f.metrics[std::string(speedup_metric)] = speedup_over(r, static_cast<double>(t.wall_ns));
  }
  if (r.workload->metrics != nullptr) {
    for (const auto& [name, value] : r.workload->metrics(r.params, trial_figures{wall_s, um.pss_bytes, t.observed})) {
      f.metrics[name] = value;
    }
  }
  return f;
}

// The `latency` object of a row: percentiles of the pooled histogram, plus its buckets so
// another tool can merge rows exactly.
nlohmann::ordered_json latency_json(const latency_histogram& h) {
  nlohmann::ordered_json percentiles = nlohmann::ordered_json::object();
  for (const auto& [key, q] : {std::pair{"50", 50.0}, {"90", 90.0}, {"99", 99.0}, {"99.9", 99.9},
                               {"99.99", 99.99}, {"100", 100.0}}) {
    percentiles[key] = h.percentile(q);
  }
  nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
  for (const auto& [bucket, n] : h.nonzero_buckets()) {
    buckets.push_back({latency_histogram::lowest_of(bucket), latency_histogram::highest_of(bucket), n});
  }
  return {{"unit", "ns"},      {"count", h.count()}, {"mean", h.mean()},
          {"min", h.min()},    {"max", h.max()},     {"percentiles", percentiles},
          {"histogram_format", "[lowest_ns, highest_ns, count] per non-empty log-linear bucket"},
          {"histogram", buckets}};
}

// Latencies of the given trials pooled into one histogram; null when none recorded any.
nlohmann::ordered_json pooled_latency(const std::vector<const trial_result*>& trials) {
  latency_histogram pooled;
  for (const auto* t : trials) t->latency.add_to(pooled);
  return pooled.count() == 0 ? nlohmann::ordered_json(nullptr) : latency_json(pooled);
}

// A distributed run: what ran on each side, the coordinator's calls and the nodes' serving
// (null for a local run).
nlohmann::ordered_json sides(const run_record& r) {
  if (!r.workload->remote) return nullptr;
  const model_entry& node = side_model(*r.model, r.params, "node_model");
  nlohmann::ordered_json served = {{"model", node.name}, {"serves", node.info.mechanism.serves}};
  // Working nodes (mapreduce) call each other as well as serve.
  if (r.workload->node_prepare != nullptr) served["calls"] = node.info.mechanism.calls;
  if (!r.workload->own_coordinator.empty()) {
    return {{"coordinator", {{"model", nullptr}, {"calls", r.workload->own_coordinator}}}, {"node", served}};
  }
  const model_entry& coordinator = side_model(*r.model, r.params, "coordinator_model");
  return {{"coordinator", {{"model", coordinator.name}, {"calls", coordinator.info.mechanism.calls}}},
          {"node", served}};
}

nlohmann::ordered_json identity(const run_record& r) {
  nlohmann::ordered_json row = {
      {"name", r.run_name()},
      {"run_name", r.run_name()},
      {"family_index", r.family_index},
      {"per_family_instance_index", r.instance_index},
      {"repetitions", r.repetitions()},
      {"threads", r.workers()},
      {"iterations", 1},
      {"time_unit", "ms"},
      {"workload", r.workload->name},
      {"model", r.model->name},
      {"family", r.model->info.family},
      {"variant", r.model->info.variant},
      {"round_trip_floor", !r.round_trip_floor.empty()               ? nlohmann::ordered_json(r.round_trip_floor)
                           : r.model->info.round_trip_floor.empty() ? nlohmann::ordered_json(nullptr)
                                                                    : nlohmann::ordered_json(r.model->info.round_trip_floor)},
      {"params", r.params},
      {"units_at_once", r.workload->alive(r.params)},
      {"expected_checksum", hex(r.expected_checksum)},
      {"sides", sides(r)}};
  // The conditions its connections went through: a distributed run under --link only.
  if (r.workload->remote && r.link.active()) row["link"] = link_json(r.link);
  return row;
}

void mark_failed(nlohmann::ordered_json& row, const std::string& status, const std::string& error) {
  row["status"] = status;
  row["error"] = error;
  row["error_occurred"] = true;
  row["error_message"] = error;
}

std::string not_run_reason(const run_record& r) {
  return "not run: the suite stopped after " + std::to_string(r.trials.size() + r.skipped.size()) + " of " +
         std::to_string(r.repetitions()) + " repetitions (a partial report: --resume its journal to run the rest)";
}

nlohmann::ordered_json aggregate_row(const run_record& r) {
  nlohmann::ordered_json row = identity(r);
  row["name"] = r.run_name() + "_median";
  row["run_type"] = "aggregate";
  row["aggregate_name"] = "median";
  row["aggregate_unit"] = "time";

  std::vector<const trial_result*> ok;
  std::string first_failure;
  for (const auto& t : r.trials) {
    if (is_verified(r, t)) {
      ok.push_back(&t);
    } else if (first_failure.empty()) {
      first_failure = "repetition " + std::to_string(&t - r.trials.data()) + ": " + failure_of(r, t);
    }
  }
  std::vector<double> real, cpu;
  std::vector<figures> all;
  for (const auto* t : ok) {
    real.push_back(static_cast<double>(t->wall_ns) / 1e6);
    cpu.push_back(static_cast<double>(t->usage.user_ns + t->usage.sys_ns) / 1e6);
    all.push_back(figures_of(r, *t));
  }
  // GB's time fields are numbers: a run with no verified repetition has 0 (its status says why).
  row["real_time"] = real.empty() ? 0.0 : median(real);
  row["cpu_time"] = cpu.empty() ? 0.0 : median(cpu);
  row["samples"] = {{"real_time", real}, {"cpu_time", cpu}};
  row["ok_repetitions"] = ok.size();
  row["verified"] = !ok.empty();
  row["checksum"] = ok.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(hex(ok.front()->checksum));
  // Each figure's median over the verified repetitions.
  for (const char* group : {"resources", "metrics"}) {
    nlohmann::ordered_json medians = nlohmann::ordered_json::object();
    if (!all.empty()) {
      // Every key any repetition has (a per-unit figure may be missing from one), in first-seen order.
      nlohmann::ordered_json keys = nlohmann::ordered_json::object();
      for (const auto& f : all) {
        for (const auto& [key, value] : (group[0] == 'r' ? f.resources : f.metrics).items()) {
          if (!keys.contains(key)) keys[key] = value;
        }
      }
      for (const auto& [key, first] : keys.items()) {
        if (!first.is_number()) {  // a label (how the memory was measured): kept when every repetition agrees
          bool same = true;
          for (const auto& f : all) {
            const auto& figures = group[0] == 'r' ? f.resources : f.metrics;
            same = same && figures.contains(key) && figures.at(key) == first;
          }
          medians[key] = same ? first : nlohmann::ordered_json("mixed");
          continue;
        }
        std::vector<double> values;
        for (const auto& f : all) {
          const auto& figures = group[0] == 'r' ? f.resources : f.metrics;
          if (const auto it = figures.find(key); it != figures.end() && it->is_number()) values.push_back(it->get<double>());
        }
        medians[key] = median(values);
      }
    }
    // A speedup over the median wall time, not the median of the repetitions' speedups: the
    // baseline's own is then 1 exactly, whatever the number of repetitions.
    if (group[0] == 'm' && r.baseline_wall_ns > 0 && !real.empty()) {
      medians[std::string(speedup_metric)] = speedup_over(r, median(real) * 1e6);
    }
    row[group] = medians;
  }
  if (const auto latency = pooled_latency(ok); !latency.is_null()) row["latency"] = latency;
  if (!ok.empty() && ok.size() == r.repetitions()) {  // a run with no trial is never ok
    row["status"] = "ok";
    row["error"] = nullptr;
  } else if (first_failure.empty() && r.skipped.empty() && r.not_run > 0) {
    // Nothing failed: the suite stopped before the rest (a partial report); --resume runs them.
    mark_failed(row, "skipped", not_run_reason(r));
  } else if (r.trials.empty()) {
    mark_failed(row, "skipped", r.skipped.front());
  } else {
    mark_failed(row, "failed", first_failure.empty() ? r.skipped.front() : first_failure);
  }
  return row;
}

}  // namespace

double extra_bytes(const trial_result& t) {
  return static_cast<double>(std::max<std::int64_t>(0, t.peak_pss_bytes - t.pss_before_bytes));
}

unit_memory unit_memory_of(const trial_result& t) {
  auto above = [](std::int64_t value, std::int64_t before) {
    return static_cast<double>(std::max<std::int64_t>(0, value - before));
  };
  if (t.at_all_alive.taken) {
    return {above(t.at_all_alive.pss_bytes, t.pss_before_bytes), above(t.at_all_alive.rss_bytes, t.rss_before_bytes),
            static_cast<double>(t.at_all_alive.units_alive), t.at_all_alive, "all_alive"};
  }
  const double pss = extra_bytes(t);
  const double rss = above(t.at_peak.rss_bytes, t.rss_before_bytes);
  if (t.gauge_used) {
    // A model that makes an OS thread or process per unit has more alive than the workload
    // counts (forked and not yet waiting, finished and not yet reaped), and each holds memory.
    const memory_sample& m = t.at_most_alive;
    return {above(m.pss_bytes, t.pss_before_bytes), above(m.rss_bytes, t.rss_before_bytes),
            std::max(static_cast<double>(m.units_alive), above(m.threads, t.threads_before)), m,
            "most_alive_counted"};
  }
  return {pss, rss, above(t.at_peak.threads, t.threads_before), t.at_peak, "peak_os_threads"};
}

std::string run_record::run_name() const {
  std::string label = workload->name + "/" + model->name;
  for (const auto& spec : workload->params) label += "/" + spec.name + ":" + param_text(spec, params.at(spec.name));
  return label;
}

unsigned run_record::workers() const {
  const auto it = params.find("workers");
  return it == params.end() ? 1u : static_cast<unsigned>(it->second);
}

void link_baselines(std::vector<run_record>& runs) {
  for (auto& r : runs) {
    r.baseline_wall_ns = 0;
    if (!r.workload->speedup) continue;
    const param_values work = work_params(*r.workload, r.params);
    for (const auto& s : runs) {
      if (s.workload != r.workload || !s.model->info.baseline || work_params(*s.workload, s.params) != work) continue;
      std::vector<double> walls;
      for (const auto& t : s.trials) {
        if (is_verified(s, t)) walls.push_back(static_cast<double>(t.wall_ns));
      }
      if (!walls.empty()) r.baseline_wall_ns = median(walls);
    }
  }
}

nlohmann::ordered_json build_rows(const std::vector<run_record>& runs) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& r : runs) {
    std::size_t index = 0;
    for (const auto& t : r.trials) {
      nlohmann::ordered_json row = identity(r);
      row["run_type"] = "iteration";
      row["repetition_index"] = index++;
      row["real_time"] = static_cast<double>(t.wall_ns) / 1e6;
      row["cpu_time"] = static_cast<double>(t.usage.user_ns + t.usage.sys_ns) / 1e6;
      row["checksum"] = t.ok ? nlohmann::ordered_json(hex(t.checksum)) : nlohmann::ordered_json(nullptr);
      row["verified"] = is_verified(r, t);
      if (t.ok) {
        auto f = figures_of(r, t);
        row["resources"] = std::move(f.resources);
        row["metrics"] = std::move(f.metrics);
        if (const auto latency = pooled_latency({&t}); !latency.is_null()) row["latency"] = latency;
      } else {
        row["resources"] = {{"setup_ns", t.setup_ns}, {"peak_rss_bytes", t.peak_rss_bytes},
                            {"peak_processes", t.peak_processes}};
        row["metrics"] = nlohmann::ordered_json::object();
      }
      if (row["verified"].get<bool>()) {
        row["status"] = "ok";
        row["error"] = nullptr;
      } else {
        mark_failed(row, "failed", failure_of(r, t));
      }
      rows.push_back(std::move(row));
    }
    // A repetition that did not run: skipped after a limit or a timeout, or not reached before
    // an interrupt.
    auto skipped_row = [&](const std::string& why) {
      nlohmann::ordered_json row = identity(r);
      row["run_type"] = "iteration";
      row["repetition_index"] = index++;
      row["real_time"] = 0.0;
      row["cpu_time"] = 0.0;
      row["checksum"] = nullptr;
      row["verified"] = false;
      row["resources"] = nlohmann::ordered_json::object();
      row["metrics"] = nlohmann::ordered_json::object();
      mark_failed(row, "skipped", why);
      rows.push_back(std::move(row));
    };
    for (const auto& why : r.skipped) skipped_row(why);
    for (std::size_t i = 0; i < r.not_run; ++i) skipped_row(not_run_reason(r));
    rows.push_back(aggregate_row(r));
  }
  return rows;
}

namespace {

// What a reader of the report must know before trusting its figures: the build, the machine's
// other work, failures, a partial run.
nlohmann::ordered_json context_warnings(const report_settings& settings, const std::vector<run_record>& runs,
                                        const nlohmann::ordered_json& floors, unsigned usable) {
  nlohmann::ordered_json warnings = nlohmann::ordered_json::array();
  const std::string build_type = CMBENCH_BUILD_TYPE;
  if (build_type != "Release" && build_type != "RelWithDebInfo") {
    warnings.push_back("debug build (CMAKE_BUILD_TYPE=" + build_type + "): timings are not representative");
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  warnings.push_back("sanitizer build: timings and memory are not representative");
#endif
  std::size_t oversubscribed = 0, failed = 0, skipped = 0, mismatched = 0;
  for (const auto& r : runs) {
    if (r.workers() > usable && !r.model->info.baseline) ++oversubscribed;  // the baseline ignores workers
    for (const auto& t : r.trials) {
      if (!t.ok) ++failed;
      else if (t.checksum != r.expected_checksum) ++mismatched;
    }
    skipped += r.skipped.size();
  }
  if (oversubscribed > 0) {
    warnings.push_back("oversubscribed: " + std::to_string(oversubscribed) + " runs use more workers than the " +
                       std::to_string(usable) + " CPUs this process may use");
  }
  const auto& load = settings.load_before;
  if (settings.busy_cpus_before > 0.25 * system::online_cpus()) {
    char text[200];
    std::snprintf(text, sizeof(text),
                  "the machine was busy before the run: other work kept %.2f of its %u CPUs busy (load average %.2f)",
                  settings.busy_cpus_before, system::online_cpus(), load.empty() ? 0.0 : load[0]);
    warnings.push_back(text);
  }
  if (settings.steal_share_during > 0.05) {
    char text[200];
    std::snprintf(text, sizeof(text),
                  "the hypervisor took %.0f%% of the CPUs' time while the trials ran (steal): timings include it",
                  100.0 * settings.steal_share_during);
    warnings.push_back(text);
  }
  if (const std::string g = system::governor(); g != "unknown" && g != "performance") {
    warnings.push_back("CPU frequency governor is '" + g + "', not 'performance': clock speed may vary");
  }
  if (failed > 0) warnings.push_back(std::to_string(failed) + " trials failed (see status and error)");
  if (mismatched > 0) warnings.push_back(std::to_string(mismatched) + " trials computed a wrong checksum");
  if (skipped > 0) warnings.push_back(std::to_string(skipped) + " repetitions skipped after a limit or timeout");
  if (floors.is_object() && floors.contains("errors")) {
    for (const auto& e : floors.at("errors")) warnings.push_back("floors: " + e.get<std::string>());
  }
  if (settings.partial) {
    warnings.push_back("partial report (" + settings.partial_reason + "): " + std::to_string(settings.trials_finished) +
                       " of " + std::to_string(settings.trials_planned) + " trials ran" +
                       (settings.journal.empty() ? std::string()
                                                 : "; `cmbench run --resume " + settings.journal + "` runs the rest"));
  }
  // An emulated link the proxy cannot emulate: its own cost, not the link, would set the figures.
  if (const auto& link = settings.link; link.is_object()) {
    const double capacity = link.value("proxy_capacity_bytes_per_second", 0.0);
    const double added = link.value("proxy_added_round_trip_ns", 0.0);
    if (const auto& rate = link.at("rate_bps"); rate.is_number() && rate.get<double>() / 8 > capacity) {
      char text[200];
      std::snprintf(text, sizeof(text), "--link rate %.4g bit/s is above what the proxy carries through one "
                    "connection (%.4g bit/s measured): the proxy, not the link, limits the rate", rate.get<double>(),
                    capacity * 8);
      warnings.push_back(text);
    }
    if (const double delays = 2.0 * link.value("delay_ns", 0.0); added > delays) {
      char text[200];
      std::snprintf(text, sizeof(text), "--link delays (%.0f ns per round trip) are below what the proxy itself adds "
                    "(%.0f ns measured)", delays, added);
      warnings.push_back(text);
    }
  }
  return warnings;
}

}  // namespace

nlohmann::ordered_json build_context(const report_settings& settings, const std::vector<run_record>& runs,
                                     const nlohmann::ordered_json& floors) {
  const std::vector<int> cpus = system::affinity();
  const auto usable = static_cast<unsigned>(std::max<std::size_t>(1, cpus.size()));
  const std::string source_dir = CMBENCH_SOURCE_DIR;
  std::string sha = command_output("git -C '" + source_dir + "' rev-parse HEAD 2>/dev/null");
  const bool dirty = !sha.empty() &&
      !command_output("git -C '" + source_dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  if (sha.empty()) sha = "unknown";

  const std::string build_type = CMBENCH_BUILD_TYPE;
  const nlohmann::ordered_json warnings = context_warnings(settings, runs, floors, usable);
  const auto& load = settings.load_before;
  const nlohmann::ordered_json facts = all_facts();
  auto text_or_null = [](const std::string& text) {
    return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
  };

  return {{"date", iso_date()},
          {"host_name", system::host_name()},
          {"executable", command_output("readlink /proc/" + std::to_string(getpid()) + "/exe")},
          {"num_cpus", usable},
          {"mhz_per_cpu", static_cast<int>(system::cpu_mhz())},
          {"cpu_scaling_enabled", system::governor() != "unknown" && system::governor() != "performance"},
          {"caches", nlohmann::ordered_json::array()},
          {"load_avg", load},
          {"load_avg_after", system::load_average()},
          {"cpu_before", settings.busy_cpus_before < 0 ? nlohmann::ordered_json(nullptr)
                                                       : nlohmann::ordered_json{{"window_s", settings.busy_window_s},
                                                                                {"online_cpus", system::online_cpus()},
                                                                                {"busy_cpus", settings.busy_cpus_before},
                                                                                {"steal_cpus", settings.steal_cpus_before}}},
          {"steal_share_during", settings.steal_share_during < 0 ? nlohmann::ordered_json(nullptr)
                                                                 : nlohmann::ordered_json(settings.steal_share_during)},
          {"library_build_type", build_type == "Debug" ? "debug" : "release"},
          {"json_schema_version", json_schema_version},
          {"cmbench_schema_version", cmbench_schema_version},
          {"cmbench_version", CMBENCH_VERSION},
          {"cpu_model", system::cpu_model()},
          {"online_cpus", sysconf(_SC_NPROCESSORS_ONLN)},
          {"affinity", cpus},
          {"governor", system::governor()},
          {"kernel", system::kernel()},
          {"compiler", CMBENCH_COMPILER},
          {"compiler_flags", CMBENCH_CXX_FLAGS},
          {"build_type", build_type},
          {"git_sha", sha},
          {"git_dirty", dirty},
          {"library_versions",
           {{"tbb", CMBENCH_TBB_VERSION}, {"asio", CMBENCH_ASIO_VERSION},
            {"nlohmann_json", CMBENCH_JSON_VERSION}, {"cli11", CMBENCH_CLI11_VERSION}}},
          {"command_line", settings.command_line},
          {"preset", settings.preset},
          {"repetitions", settings.repetitions},
          {"warmup", settings.warmup},
          {"timeout_seconds", settings.timeout_seconds},
          {"partial", settings.partial},
          {"partial_reason", text_or_null(settings.partial_reason)},
          {"trials_planned", settings.trials_planned},
          {"trials_finished", settings.trials_finished},
          {"journal", text_or_null(settings.journal)},
          {"resumed_from", settings.resumed_from.empty()
                               ? nlohmann::ordered_json(nullptr)
                               : nlohmann::ordered_json{{"journal", settings.resumed_from},
                                                        {"trials_from_journal", settings.trials_from_journal}}},
          {"limits", system::limits()},
          {"distributed", settings.distributed},
          {"link", settings.link},
          {"floors", floors},
          {"warnings", warnings},
          // What every model and workload is (not only those that ran): the facts the scripts read.
          {"models", facts.at("models")},
          {"workloads", facts.at("workloads")}};
}

void check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw std::invalid_argument("--out " + path + " is a directory, not a file");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) throw std::invalid_argument("--out " + path + ": directory " + dir.string() + " does not exist");
  // Create and remove a probe file: the only check that also holds for root and odd filesystems.
  const std::string probe = (dir / (".cmbench-probe-" + std::to_string(getpid()))).string();
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::invalid_argument("--out " + path + ": cannot create files in " + dir.string() + ": " + std::strerror(errno));
  }
  close(fd);
  unlink(probe.c_str());
  if (fs::exists(target, ec) && !fs::is_regular_file(target, ec)) {
    throw std::invalid_argument("--out " + path + " exists and is not a regular file");
  }
}

}  // namespace cmbench
