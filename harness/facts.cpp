#include "harness/facts.hpp"

#include <cstdio>
#include <cstring>
#include <sstream>

namespace cmbench {
namespace {

nlohmann::ordered_json text_or_null(std::string_view text) {
  return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(std::string(text));
}

// How many waits of a bulk job a model holds at once, in words.
std::string_view waits_in_words(wait_capacity waits) {
  switch (waits) {
    case wait_capacity::one: return "one at a time";
    case wait_capacity::workers: return "one per worker";
    case wait_capacity::every_task: return "every task at once";
    case wait_capacity::tasks: break;
  }
  return "one per unit alive (at most max_alive)";
}

// `text` broken into lines of at most `width` characters, every line after the first indented
// by `indent` spaces.
std::string wrapped(std::string_view text, std::size_t indent, std::size_t width) {
  std::string out, line;
  std::istringstream words{std::string(text)};
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

}  // namespace

nlohmann::ordered_json model_facts(const model_entry& model) {
  nlohmann::ordered_json mechanism = nlohmann::ordered_json::object();
  for (const auto& field : mechanism_fields) mechanism[std::string(field.name)] = model.info.mechanism.*field.member;
  return {{"name", model.name},
          {"family", model.info.family},
          {"variant", model.info.variant},
          {"description", model.info.description},
          {"order", model.info.order},
          {"baseline", model.info.baseline},
          {"mechanism", mechanism},
          {"waits", wait_capacity_name(model.info.waits)},
          {"round_trip_floor", text_or_null(model.info.round_trip_floor)}};
}

nlohmann::ordered_json workload_facts(const workload_entry& workload) {
  nlohmann::ordered_json figures = nlohmann::ordered_json::array();
  for (const auto& f : workload.figures) {
    figures.push_back({{"metric", f.metric},
                       {"label", f.label},
                       {"heading", f.heading},
                       {"kind", figure_kind_name(f.kind)},
                       {"better", better_name(f.direction)}});
  }
  nlohmann::ordered_json phases = nlohmann::ordered_json::array();
  for (const auto& p : workload.phases) {
    phases.push_back({{"metric", p.metric}, {"label", p.label}, {"kind", figure_kind_name(p.kind)}});
  }
  nlohmann::ordered_json params = nlohmann::ordered_json::array();
  for (const auto& p : workload.params) {
    params.push_back({{"name", p.name}, {"help", p.help}, {"min", p.min}, {"max", p.max},
                      {"presets", {{"quick", p.quick}, {"default", p.standard}, {"full", p.full}}},
                      {"zero_means_cpus", p.zero_means_cpus}});
  }
  return {{"name", workload.name},
          {"description", workload.description},
          {"measures", workload.measures},
          {"order", workload.order},
          {"unit", workload.unit},
          {"figures", figures},
          {"speedup", workload.speedup},
          {"memory_per_unit", workload.memory_per_unit},
          {"floor", !workload.read_against_floor  ? nlohmann::ordered_json(nullptr)
                    : workload.floor_probe.empty() ? nlohmann::ordered_json("round_trip_floor")
                                                   : nlohmann::ordered_json(workload.floor_probe)},
          {"remote", workload.remote},
          {"own_coordinator", workload.own_coordinator.empty() ? nlohmann::ordered_json(nullptr)
                                                               : nlohmann::ordered_json(workload.own_coordinator)},
          {"headline_bound", workload.headline_bound.metric.empty()
                                 ? nlohmann::ordered_json(nullptr)
                                 : nlohmann::ordered_json{{"metric", workload.headline_bound.metric},
                                                          {"why", workload.headline_bound.why}}},
          {"phases", phases},
          {"model_params", model_params(workload)},
          {"params", params}};
}

nlohmann::ordered_json all_facts() {
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  for (const auto& m : all_models()) models.push_back(model_facts(m));
  nlohmann::ordered_json workloads = nlohmann::ordered_json::array();
  for (const auto& w : all_workloads()) workloads.push_back(workload_facts(w));
  return {{"models", models}, {"workloads", workloads}};
}

std::string facts_table() {
  constexpr std::size_t width = 118;
  std::ostringstream out;
  out << "models (--models NAME, a family, or all), each one's mechanism field by field:\n";
  for (const auto& m : all_models()) {
    out << "\n" << m.name << "  " << m.info.description << "\n";
    auto row = [&](std::string_view name, std::string_view text) {
      out << "  " << name << std::string(10 - name.size(), ' ') << wrapped(text, 12, width - 12) << "\n";
    };
    for (const auto& field : mechanism_fields) row(field.name, m.info.mechanism.*field.member);
    row("waits", waits_in_words(m.info.waits));
    row("floor", m.info.round_trip_floor.empty() ? "none" : m.info.round_trip_floor);
    if (m.info.baseline) {
      row("baseline", "yes: the 1x of every speedup; runs once for all values of the parameters that size a model");
    }
  }
  out << "\nworkloads (--workloads NAME or all), parameters with quick / default / full values:\n";
  for (const auto& w : all_workloads()) {
    out << "\n" << w.name << ": " << w.description << "\n";
    out << "  measures: " << wrapped(w.measures, 12, width - 12) << "\n";
    std::string figures;
    for (const auto& f : w.figures) {
      figures += (figures.empty() ? "" : "; ") + f.metric + " (" + f.label + ", " +
                 std::string(better_name(f.direction)) + " is better)";
    }
    out << "  figures:  " << wrapped(figures + (w.figures.empty() ? "" : "; the first is the headline"), 12, width - 12)
        << "\n";
    std::string reads = "per " + w.unit;
    if (w.speedup) reads += "; speedup over the baseline model";
    if (w.memory_per_unit) reads += "; memory per unit alive";
    if (w.read_against_floor) reads += "; against each model's round-trip floor";
    if (!w.own_coordinator.empty()) reads += "; its coordinator is its own code: " + w.own_coordinator;
    for (std::size_t i = 0; i < w.phases.size(); ++i) reads += (i == 0 ? "; phases " : ", ") + w.phases[i].metric;
    out << "  reads:    " << wrapped(reads, 12, width - 12) << "\n";
    for (const auto& p : w.params) {
      char line[160];
      std::snprintf(line, sizeof(line), "    %-12s %9lld / %9lld / %9lld   ", p.name.c_str(),
                    static_cast<long long>(p.quick), static_cast<long long>(p.standard),
                    static_cast<long long>(p.full));
      const std::string help = p.help + " [" + std::to_string(p.min) + ".." + std::to_string(p.max) + "]" +
                               (p.sizes_model ? " (sizes the model)" : "");
      const std::size_t indent = std::strlen(line);
      out << line << wrapped(help, indent, width - indent) << "\n";
    }
  }
  return out.str();
}

}  // namespace cmbench
