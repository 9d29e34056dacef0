#include "harness/summary.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "harness/format.hpp"
#include "harness/params.hpp"

namespace cmbench {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* line_format = "%-20s %-8s %11s %19s %16s %6s %10s %10s %9s\n";

// A number of a row's group (`resources`, `metrics`), NaN where the row has none.
double number_in(const json& row, const char* group, const char* key) {
  const auto g = row.find(group);
  if (g == row.end() || !g->is_object()) return std::numeric_limits<double>::quiet_NaN();
  const auto it = g->find(key);
  return it == g->end() || !it->is_number() ? std::numeric_limits<double>::quiet_NaN() : it->get<double>();
}

// The aggregate row of every run, by the run's name.
std::map<std::string, const json*> aggregates_by_run(const json& rows) {
  std::map<std::string, const json*> found;
  for (const auto& row : rows) {
    if (row.value("run_type", "") == "aggregate") found[row.at("run_name").get<std::string>()] = &row;
  }
  return found;
}

// The runs in the table's order: one block per workload and parameter combination, every model
// in it, blocks in the order the combinations first appear (runs are listed model by model).
std::vector<std::size_t> block_order(const std::vector<std::string>& block_of) {
  std::map<std::string, std::size_t> first_seen;
  for (const auto& block : block_of) first_seen.emplace(block, first_seen.size());
  std::vector<std::size_t> order(block_of.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return first_seen.at(block_of[a]) < first_seen.at(block_of[b]);
  });
  return order;
}

// A run none of whose repetitions verified: its status and the first reason.
std::string line_without_figures(const run_record& r, const std::string& status) {
  std::string why = !r.trials.empty() ? r.trials.front().error
                    : r.skipped.empty() ? std::string("no trial ran")
                                        : r.skipped.front();
  if (why.empty() && !r.trials.empty()) why = "checksum mismatch";
  char line[512];
  std::snprintf(line, sizeof(line), "%-20s %-8s %s\n", r.model->name.c_str(), status.c_str(), why.c_str());
  return line;
}

// What is said after a block: the floors its figures were read against (which, measured at what), and
// why a figure marked as a bound is one.
class block_notes {
 public:
  void add(const run_record& r) { floors_[r.round_trip_floor] = &r; }
  // A row whose headline is a bound: the block says why once.
  void bound(const run_record& r) { bound_why_ = r.workload->headline_bound.why; }
  void flush(std::ostringstream& out) {
    if (!bound_why_.empty()) out << ">= or <=: a bound, not the model's own figure: " << bound_why_ << "\n";
    bound_why_.clear();
    if (floors_.empty()) return;
    auto time = [](double ns) { return duration_text(std::chrono::duration<double>(ns * 1e-9)); };
    out << "(x): the p50 round trip (or remote call) over the round-trip floor it is read against (its p50 where timed "
           "one by one, else its mean; the report's p50_over_floor), the lower of two measurements just before and just after these trials:";
    const char* sep = " ";
    for (const auto& [name, r] : floors_) {
      out << sep << name << " " << time(r->round_trip_floor_ns);
      if (r->round_trip_floor_before_ns > 0 && r->round_trip_floor_after_ns > 0) {
        out << " (" << time(r->round_trip_floor_before_ns) << " / " << time(r->round_trip_floor_after_ns) << ")";
      }
      sep = ", ";
    }
    out << "\n";
    floors_.clear();
  }

 private:
  std::map<std::string, const run_record*> floors_;
  std::string bound_why_;
};

// The workload's headline figure (its first figure of merit), as the run's aggregate row has it;
// where the workload is read against a floor, also its ratio to the model's.
std::string figure_cell(const run_record& r, const json& row, block_notes& notes) {
  if (r.workload->figures.empty()) return figure_text(std::nan(""));
  const figure_of_merit& headline = r.workload->figures.front();
  const double figure = number_in(row, "metrics", headline.metric.c_str());
  char text[48];
  std::string cell = figure_text(figure);
  if (headline.kind == figure_kind::ratio && !std::isnan(figure)) {
    std::snprintf(text, sizeof(text), "%.2fx", figure);
    cell = text;
  }
  // A bound, not the model's own figure: at least this much of a higher-is-better figure.
  if (const auto& bound = r.workload->headline_bound;
      !bound.metric.empty() && number_in(row, "metrics", bound.metric.c_str()) > 0 && !std::isnan(figure)) {
    cell = (headline.direction == better::higher ? ">=" : "<=") + cell;
    notes.bound(r);
  }
  // The report's own ratio: the run's pooled p50 round trip over the floor (a median set against a
  // median), whatever the headline figure is.
  if (const double over = number_in(row, "metrics", "p50_over_floor"); r.workload->read_against_floor && !std::isnan(over)) {
    std::snprintf(text, sizeof(text), over < 10 ? " (%.2gx)" : " (%.0fx)", over);
    cell += text;
    notes.add(r);
  }
  return cell;
}

// One run's line: status, the median wall time and the range of the verified repetitions, the
// figure of merit, and the medians of its CPUs, peak memory, memory per unit and switches.
std::string run_line(const run_record& r, const json& row, const std::string& figure) {
  const std::string status = row.at("status") == "ok" ? "ok" : r.trials.empty() ? "skipped" : "FAILED";
  if (row.at("ok_repetitions").get<std::size_t>() == 0) return line_without_figures(r, status);
  const auto& walls = row.at("samples").at("real_time");
  const auto [least, most] = std::minmax_element(walls.begin(), walls.end(), [](const json& a, const json& b) {
    return a.get<double>() < b.get<double>();
  });
  const double per_unit = number_in(row, "metrics", "bytes_per_unit");
  const double switches = number_in(row, "resources", "voluntary_context_switches") +
                          number_in(row, "resources", "involuntary_context_switches");
  char cpus[16], range[48], switches_text[32], line[512];
  std::snprintf(cpus, sizeof(cpus), "%.2f", number_in(row, "resources", "cpu_utilization"));
  std::snprintf(range, sizeof(range), "%s..%s", ms_text(least->get<double>()).c_str(),
                ms_text(most->get<double>()).c_str());
  std::snprintf(switches_text, sizeof(switches_text), "%lld", std::llround(switches));
  std::snprintf(line, sizeof(line), line_format, r.model->name.c_str(), status.c_str(),
                ms_text(row.at("real_time").get<double>()).c_str(), range, figure.c_str(), cpus,
                bytes_text(number_in(row, "resources", "peak_pss_bytes")).c_str(),
                std::isnan(per_unit) ? "-" : bytes_text(per_unit).c_str(), switches_text);
  return line;
}

}  // namespace

std::string summary_table(const std::vector<run_record>& runs, const nlohmann::ordered_json& rows) {
  const auto aggregates = aggregates_by_run(rows);
  std::vector<std::string> block_of;
  for (const auto& r : runs) block_of.push_back(r.workload->name + "  " + params_label(*r.workload, r.params));
  std::ostringstream out;
  std::string current;
  block_notes notes;
  for (const std::size_t index : block_order(block_of)) {
    const run_record& r = runs[index];
    if (block_of[index] != current) {
      notes.flush(out);
      current = block_of[index];
      char header[512];
      std::snprintf(header, sizeof(header), line_format, "model", "status", "median ms", "min..max ms",
                    r.workload->figures.empty() ? "-" : r.workload->figures.front().heading.c_str(), "CPUs",
                    "peak PSS", "bytes/unit", "ctx sw");
      // A distributed block over an emulated link says so: its figures include the link.
      out << "\n" << current << (r.link.active() ? "  over --link " + r.link.given : std::string()) << "\n" << header;
    }
    const json& row = *aggregates.at(r.run_name());
    const bool has_figures = row.at("ok_repetitions").get<std::size_t>() > 0;
    out << run_line(r, row, has_figures ? figure_cell(r, row, notes) : std::string());
  }
  notes.flush(out);
  return out.str();
}

}  // namespace cmbench
