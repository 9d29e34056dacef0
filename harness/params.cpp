#include "harness/params.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace cmbench {
namespace {

std::int64_t parse_value(std::string_view text, std::string_view whole) {
  // A model by name, for a parameter that names one (checked against the parameter in combinations()).
  if (text.find('/') != std::string_view::npos) {
    if (const model_entry* m = find_model(text)) return model_param_value(*m);
    std::string known;
    for (const auto& m : all_models()) known += (known.empty() ? "" : ", ") + m.name;
    throw std::invalid_argument("--param " + std::string(whole) + ": no model '" + std::string(text) +
                                "' (known: " + known + ")");
  }
  std::int64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': multiplier = 1'000; break;
      case 'M': multiplier = 1'000'000; break;
      case 'G': multiplier = 1'000'000'000; break;
      default: break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument("--param " + std::string(whole) + ": '" + std::string(text) +
                                "' is not an integer (suffixes k, M, G allowed)");
  }
  if (value > std::numeric_limits<std::int64_t>::max() / multiplier ||
      value < std::numeric_limits<std::int64_t>::min() / multiplier) {
    throw std::invalid_argument("--param " + std::string(whole) + ": value out of range");
  }
  return value * multiplier;
}

const param_spec* find_spec(const workload_entry& w, std::string_view name) {
  for (const auto& spec : w.params) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace

param_override parse_param_override(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    throw std::invalid_argument("--param " + std::string(text) +
                                ": expected NAME=V1,V2 or WORKLOAD.NAME=V1,V2");
  }
  param_override o;
  std::string_view key = text.substr(0, eq);
  if (const auto dot = key.find('.'); dot != std::string_view::npos) {
    if (dot == 0) throw std::invalid_argument("--param " + std::string(text) + ": empty workload name");
    o.workload = std::string(key.substr(0, dot));
    key = key.substr(dot + 1);
  }
  o.name = std::string(key);
  std::string_view rest = text.substr(eq + 1);
  while (true) {
    const auto comma = rest.find(',');
    o.values.push_back(parse_value(rest.substr(0, comma), text));
    if (rest.substr(0, comma).find('/') != std::string_view::npos) o.by_model_name = true;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (o.name.empty()) {
    throw std::invalid_argument("--param " + std::string(text) + ": empty parameter name");
  }
  return o;
}

preset parse_preset(std::string_view name) {
  if (name == "quick") return preset::quick;
  if (name == "default") return preset::standard;
  if (name == "full") return preset::full;
  throw std::invalid_argument("unknown preset '" + std::string(name) + "' (quick, default, full)");
}

std::string_view preset_name(preset p) {
  return p == preset::quick ? "quick" : p == preset::full ? "full" : "default";
}

void check_overrides(const std::vector<const workload_entry*>& workloads,
                     const std::vector<param_override>& overrides) {
  for (const auto& o : overrides) {
    bool known = false;
    bool workload_selected = o.workload.empty();
    for (const auto* w : workloads) {
      if (!o.workload.empty() && w->name != o.workload) continue;
      workload_selected = true;
      if (find_spec(*w, o.name) != nullptr) known = true;
    }
    if (!workload_selected) {
      throw std::invalid_argument("--param " + o.workload + "." + o.name + ": workload '" + o.workload +
                                  "' is not selected by --workloads");
    }
    if (!known) {
      std::string names;
      for (const auto* w : workloads) {
        if (!o.workload.empty() && w->name != o.workload) continue;
        for (const auto& spec : w->params) {
          if (names.find(spec.name) == std::string::npos) names += (names.empty() ? "" : ", ") + spec.name;
        }
      }
      throw std::invalid_argument("--param " + o.name + ": no selected workload has this parameter (known: " +
                                  names + ")");
    }
  }
}

std::vector<param_values> combinations(const workload_entry& workload, preset p,
                                       const std::vector<param_override>& overrides, unsigned cpus) {
  // The values each parameter takes: the preset's, or every value of every override that names it
  // for this workload, merged in order (`--param tasks=10 --param tasks=20` runs both), once each.
  std::vector<std::vector<std::int64_t>> choices;
  for (const auto& spec : workload.params) {
    std::vector<std::int64_t> values;
    for (const auto& o : overrides) {
      if (o.name != spec.name || (!o.workload.empty() && o.workload != workload.name)) continue;
      if (o.by_model_name && !spec.names_model) {
        throw std::invalid_argument(workload.name + ": " + spec.name + " takes a number, not a model's name");
      }
      for (const auto v : o.values) {
        if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
      }
    }
    if (values.empty()) values.push_back(spec.value_for(p));
    for (auto& v : values) {
      if (v < spec.min || v > spec.max) {
        throw std::invalid_argument(workload.name + ": " + spec.name + "=" + std::to_string(v) +
                                    " is out of range [" + std::to_string(spec.min) + ", " +
                                    std::to_string(spec.max) + "]");
      }
      if (spec.zero_means_cpus && v == 0) v = cpus;
      if (spec.names_model && v != 0 && model_of_param(v) == nullptr) {
        throw std::invalid_argument(workload.name + ": " + spec.name + " names a model by name (" +
                                    spec.name + "=threads/pool), or 0 for the row's own");
      }
    }
    choices.push_back(std::move(values));
  }
  std::vector<param_values> out;
  std::vector<std::size_t> index(choices.size(), 0);
  while (true) {
    param_values values;
    for (std::size_t i = 0; i < choices.size(); ++i) values[workload.params[i].name] = choices[i][index[i]];
    if (workload.validate != nullptr) workload.validate(values);
    if (std::find(out.begin(), out.end(), values) == out.end()) out.push_back(std::move(values));
    // Odometer order: the last parameter varies fastest.
    std::size_t i = choices.size();
    while (i > 0 && ++index[i - 1] == choices[i - 1].size()) index[--i] = 0;
    if (i == 0) break;
  }
  return out;
}

std::int64_t model_param_value(const model_entry& model) { return std::int64_t{model.info.order} + 1; }

const model_entry* model_of_param(std::int64_t value) {
  for (const auto& m : all_models()) {
    if (model_param_value(m) == value) return &m;
  }
  return nullptr;
}

const model_entry& side_model(const model_entry& row, const param_values& values, const std::string& param) {
  const auto it = values.find(param);
  if (it == values.end() || it->second == 0) return row;
  const model_entry* m = model_of_param(it->second);
  return m == nullptr ? row : *m;
}

std::string param_text(const param_spec& spec, std::int64_t value) {
  if (!spec.names_model) return std::to_string(value);
  if (value == 0) return "same";
  const model_entry* m = model_of_param(value);
  return m == nullptr ? std::to_string(value) : m->name;
}

std::string params_label(const workload_entry& workload, const param_values& values) {
  std::string label;
  for (const auto& spec : workload.params) {
    if (!label.empty()) label += '/';
    label += spec.name + ":" + param_text(spec, values.at(spec.name));
  }
  return label;
}


}  // namespace cmbench
