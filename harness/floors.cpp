#include "harness/floors.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "harness/child.hpp"
#include "harness/format.hpp"
#include "harness/interrupts.hpp"
#include "harness/report.hpp"
#include "models/floors/probes.hpp"

namespace cmbench {
namespace {

std::string ns_text(double ns) { return duration_text(std::chrono::duration<double, std::nano>(ns)); }

}  // namespace

nlohmann::ordered_json measure_floors_here(std::chrono::nanoseconds min_time, int samples,
                                          const std::set<std::string>& only) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& p : floors::all_probes()) {
    if (!only.empty() && !only.contains(std::string(p.name))) continue;
    nlohmann::ordered_json row = {{"name", p.name}, {"what", p.what}, {"per", p.per}};
    try {
      const floors::measurement m = floors::measure(p, min_time, samples);
      row["ns_per_op"] = m.ns_per_op;
      row["p50_ns"] = m.p50_ns >= 0 ? nlohmann::ordered_json(m.p50_ns) : nlohmann::ordered_json(nullptr);
      row["samples_ns"] = m.samples_ns;
      row["ops_per_sample"] = m.ops_per_sample;
    } catch (const floors::not_applicable& e) {
      row["skipped"] = e.what();
    } catch (const std::exception& e) {
      row["error"] = e.what();
    }
    out.push_back(std::move(row));
  }
  return out;
}

nlohmann::ordered_json measure_floors_in_child(std::chrono::nanoseconds min_time, int samples,
                                               std::chrono::milliseconds timeout, const std::set<std::string>& only) {
  auto failure = [](const std::string& why) { return nlohmann::ordered_json{{"error", why}}; };
  const child_output out = run_in_child_group([&] {
    try {
      return measure_floors_here(min_time, samples, only).dump();
    } catch (const std::exception& e) {
      return failure(e.what()).dump();
    }
  }, timeout);
  if (!out.started) return failure(out.error);
  if (out.timed_out) return failure("the floors took longer than " + std::to_string(timeout.count() / 1000) + " s");
  try {
    return nlohmann::ordered_json::parse(out.text);
  } catch (const std::exception&) {
    return failure("the floors process ended without a result (status " + std::to_string(out.status) + ")");
  }
}

nlohmann::ordered_json combine_floors(const nlohmann::ordered_json& before, const nlohmann::ordered_json& after) {
  nlohmann::ordered_json probes = nlohmann::ordered_json::array();
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  for (const auto* m : {&before, &after}) {
    if (m->is_object() && m->contains("error")) errors.push_back(m->at("error"));
  }
  for (const auto& p : floors::all_probes()) {
    nlohmann::ordered_json row = {{"name", p.name}, {"what", p.what}, {"per", p.per}};
    std::vector<double> means, p50s;
    bool listed = false;  // by either measurement: a block's measure only its own probes
    for (const auto& [when, m] : {std::pair{"before", &before}, {"after", &after}}) {
      row[std::string(when) + "_ns"] = nullptr;
      row[std::string(when) + "_p50_ns"] = nullptr;
      if (!m->is_array()) continue;
      for (const auto& q : *m) {
        if (q.at("name") != p.name) continue;
        listed = true;
        if (q.contains("ns_per_op")) {
          row[std::string(when) + "_ns"] = q.at("ns_per_op");
          means.push_back(q.at("ns_per_op").get<double>());
          if (q.contains("p50_ns") && q.at("p50_ns").is_number()) {
            row[std::string(when) + "_p50_ns"] = q.at("p50_ns");
            p50s.push_back(q.at("p50_ns").get<double>());
          }
        } else if (q.contains("error")) {
          errors.push_back(std::string(p.name) + ": " + q.at("error").get<std::string>());
        } else if (q.contains("skipped")) {
          row["skipped"] = q.at("skipped");
        }
      }
    }
    if (!listed && (before.is_array() || after.is_array())) continue;
    auto lowest = [](const std::vector<double>& v) {
      return v.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(*std::min_element(v.begin(), v.end()));
    };
    row["ns_per_op"] = lowest(means);
    row["p50_ns"] = lowest(p50s);
    probes.push_back(std::move(row));
  }
  return {{"measured", "in a child process of cmbench run, just before and just after the trials (in by_workload: that workload's trials), 3 samples "
                       "each; ns_per_op is the lower of the two medians of the samples' means, p50_ns (probes timed "
                       "one operation at a time) the lower of the two medians of every operation"},
          {"probes", probes},
          {"errors", errors}};
}

std::map<std::string, floor_value> floor_values(const nlohmann::ordered_json& floors) {
  std::map<std::string, floor_value> values;
  if (!floors.is_object() || !floors.contains("probes")) return values;
  for (const auto& p : floors.at("probes")) {
    const bool median = p.contains("p50_ns") && p.at("p50_ns").is_number();
    const auto& value = median ? p.at("p50_ns") : p.at("ns_per_op");
    if (!value.is_number()) continue;
    auto number = [&](const char* key) { return p.contains(key) && p.at(key).is_number() ? p.at(key).get<double>() : 0.0; };
    values[p.at("name").get<std::string>()] = {value.get<double>(), number(median ? "before_p50_ns" : "before_ns"),
                                               number(median ? "after_p50_ns" : "after_ns")};
  }
  return values;
}

std::string floors_table(const nlohmann::ordered_json& measured) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%-29s %10s %10s  %-11s %s\n", "floor", "mean", "p50", "per", "what");
  out += line;
  if (!measured.is_array()) return out + "error: " + measured.value("error", std::string("no floors")) + "\n";
  for (const auto& p : measured) {
    const std::string figure = p.contains("ns_per_op") ? ns_text(p.at("ns_per_op").get<double>())
                               : p.contains("skipped")  ? "skipped"
                                                        : "FAILED";
    const std::string p50 =
        p.contains("p50_ns") && p.at("p50_ns").is_number() ? ns_text(p.at("p50_ns").get<double>()) : "-";
    std::snprintf(line, sizeof(line), "%-29s %10s %10s  %-11s %s\n", p.at("name").get<std::string>().c_str(),
                  figure.c_str(), p50.c_str(), p.at("per").get<std::string>().c_str(),
                  p.contains("error")     ? p.at("error").get<std::string>().c_str()
                  : p.contains("skipped") ? p.at("skipped").get<std::string>().c_str()
                                          : p.at("what").get<std::string>().c_str());
    out += line;
  }
  return out;
}

suite_floors::suite_floors(bool on, std::chrono::nanoseconds sample_time)
    : on_(on), sample_time_(sample_time), first_(measure("before the trials")), latest_(first_) {}

nlohmann::ordered_json suite_floors::measure(const std::string& when, const std::set<std::string>& only) const {
  if (!on_) return nullptr;
  std::string which;
  if (only.size() == 1) which = " (" + *only.begin() + ")";
  if (only.size() > 1) which = " (the " + std::to_string(only.size()) + " its runs are read against)";
  std::fprintf(stderr, "[floors] measuring the models' primitive floors %s%s\n", when.c_str(), which.c_str());
  nlohmann::ordered_json measured = measure_floors_in_child(sample_time_, 3, std::chrono::seconds{120}, only);
  // Stopped by an interrupt: say so, rather than that the floors process failed.
  if (const int sig = interrupts::requested(); sig != 0) {
    measured = {{"error", "not measured: interrupted by " + interrupts::signal_name(sig)}};
  }
  return measured;
}

namespace {

// The measurement has a row for each of `probes` (measured, skipped or failed).
bool covers(const nlohmann::ordered_json& measured, const std::set<std::string>& probes) {
  if (!measured.is_array()) return false;
  for (const std::string& name : probes) {
    const bool found = std::any_of(measured.begin(), measured.end(), [&](const nlohmann::ordered_json& row) {
      return row.value("name", std::string()) == name;
    });
    if (!found) return false;
  }
  return true;
}

}  // namespace

void suite_floors::before_block(const std::string& workload, const std::set<std::string>& probes) {
  if (!fresh_ || !covers(latest_, probes)) {
    latest_ = measure("before the " + workload + " trials", probes);
    latest_whole_ = false;
  }
  block_before_ = latest_;
}

void suite_floors::after_block(std::size_t first, std::size_t last, const std::string& workload,
                               const std::set<std::string>& probes) {
  latest_ = measure("after the " + workload + " trials", probes);
  latest_whole_ = false;
  fresh_ = true;
  bracketed_.emplace_back(first, last, combine_floors(block_before_, latest_));
}

nlohmann::ordered_json suite_floors::finish(std::vector<run_record>& runs, bool interrupted) {
  if (!on_) return nullptr;
  nlohmann::ordered_json floors =
      combine_floors(first_, (fresh_ && latest_whole_) || interrupted ? latest_ : measure("after the trials"));
  auto set_floor = [](run_record& r, const std::map<std::string, floor_value>& values) {
    std::string name = r.workload->floor_probe.empty() ? std::string(r.model->info.round_trip_floor)
                                                        : r.workload->floor_probe;
    auto it = values.find(name);
    // One CPU: no cross-CPU round trip was measured; the unpinned one is the floor there.
    if (it == values.end() && name.ends_with("_cross_cpu")) it = values.find(name.substr(0, name.size() - 10));
    if (it != values.end()) {
      r.round_trip_floor = it->first;
      r.round_trip_floor_ns = it->second.ns;
      r.round_trip_floor_before_ns = it->second.before_ns;
      r.round_trip_floor_after_ns = it->second.after_ns;
    }
  };
  const auto whole_run = floor_values(floors);
  for (auto& r : runs) set_floor(r, whole_run);
  nlohmann::ordered_json by_workload = nlohmann::ordered_json::object();
  for (const auto& [begin, end, block_floors] : bracketed_) {
    const auto values = floor_values(block_floors);
    for (std::size_t i = begin; i < end; ++i) set_floor(runs[i], values);
    by_workload[runs[begin].workload->name] = block_floors;
  }
  floors["by_workload"] = by_workload;
  return floors;
}

}  // namespace cmbench
