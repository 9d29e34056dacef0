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

namespace detail {

bool add_model(model_entry entry) {
  auto& models = registry();
  if (find_model(entry.name) != nullptr) throw std::logic_error("model registered twice: " + entry.name);
  // serial first (the reference), then families in the order of DESIGN.md, then variants.
  auto rank = [](std::string_view family) {
    constexpr std::string_view order[] = {"serial", "threads", "processes", "coroutines"};
    for (std::size_t i = 0; i < std::size(order); ++i) {
      if (order[i] == family) return i;
    }
    return std::size(order);
  };
  auto pos = std::find_if(models.begin(), models.end(), [&](const model_entry& m) {
    return rank(m.info.family) > rank(entry.info.family);
  });
  models.insert(pos, std::move(entry));
  return true;
}

}  // namespace detail
}  // namespace cmbench
