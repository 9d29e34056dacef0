#include <algorithm>
#include <stdexcept>

#include "workloads/workload.hpp"

namespace cmbench {
namespace {

std::vector<workload_entry>& registry() {
  static std::vector<workload_entry> workloads;
  return workloads;
}

}  // namespace

const std::vector<workload_entry>& all_workloads() { return registry(); }

const workload_entry* find_workload(std::string_view name) {
  for (const auto& w : registry()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

namespace detail {

bool add_workload(workload_entry entry) {
  if (find_workload(entry.name) != nullptr) throw std::logic_error("workload registered twice: " + entry.name);
  // Each workload's own order key, whatever order the linker runs the registrations in; a tie
  // (which the registry test reports) falls back to the name.
  auto before = [](const workload_entry& a, const workload_entry& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  };
  auto& workloads = registry();
  auto pos = std::upper_bound(workloads.begin(), workloads.end(), entry, before);
  workloads.insert(pos, std::move(entry));
  return true;
}

}  // namespace detail
}  // namespace cmbench
