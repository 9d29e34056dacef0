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
  // The order of DESIGN.md section 2, whatever order the linker runs the registrations in.
  constexpr std::string_view order[] = {"cpu", "io", "mixed", "spawn", "pingpong", "ring",
                                        "pipeline", "contention", "memory"};
  auto rank = [&](std::string_view n) {
    return static_cast<std::size_t>(std::find(std::begin(order), std::end(order), n) - std::begin(order));
  };
  auto& workloads = registry();
  auto pos = std::find_if(workloads.begin(), workloads.end(),
                          [&](const workload_entry& w) { return rank(w.name) > rank(entry.name); });
  workloads.insert(pos, std::move(entry));
  return true;
}

}  // namespace detail
}  // namespace cmbench
