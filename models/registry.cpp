#include "models/model.hpp"

#include <algorithm>
#include <stdexcept>

namespace cmbench {
namespace {

std::vector<model_entry>& registry() {
  static std::vector<model_entry> models;
  return models;
}

}  // namespace

const std::vector<model_entry>& all_models() { return registry(); }

const model_entry* find_model(std::string_view name) {
  for (const auto& m : registry()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const model_entry& baseline_model() {
  for (const auto& m : registry()) {
    if (m.info.baseline) return m;
  }
  throw std::logic_error("no baseline model is registered");
}

namespace detail {

bool add_model(model_entry entry) {
  auto& models = registry();
  if (find_model(entry.name) != nullptr) throw std::logic_error("model registered twice: " + entry.name);
  // Each model's own order key, whatever order the linker runs the registrations in; a tie
  // (which the registry test reports) falls back to the name, so the order is still stable.
  auto before = [](const model_entry& a, const model_entry& b) {
    return a.info.order != b.info.order ? a.info.order < b.info.order : a.name < b.name;
  };
  auto pos = std::upper_bound(models.begin(), models.end(), entry, before);
  models.insert(pos, std::move(entry));
  return true;
}

}  // namespace detail
}  // namespace cmbench
