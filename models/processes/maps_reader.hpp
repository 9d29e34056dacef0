// Which address ranges of this process are MAP_SHARED, as /proc/self/maps lists them.
// processes/pool reads them when it forks its workers: a job's context is seen by the workers
// only if it lies in a shared mapping that existed then (memory mapped later does not exist in
// them at all, and private memory is their own copy).
//
// Reads a file and allocates: call it in the parent, never in a forked child.
#pragma once

#include <cstdint>
#include <fstream>
#include <istream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cmbench::detail {

// [start, end) of one MAP_SHARED mapping.
struct shared_mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
};

// The shared mappings in text of /proc/PID/maps' format; lines it cannot read are skipped.
inline std::vector<shared_mapping> parse_shared_mappings(std::istream& maps) {
  std::vector<shared_mapping> mappings;
  std::string line;
  while (std::getline(maps, line)) {
    // "7f00-7f80 rw-s 00000000 00:01 1234   /dev/zero (deleted)": the 4th permission is s or p.
    std::istringstream fields(line);
    std::string range, perms;
    if (!(fields >> range >> perms)) continue;
    if (perms.size() < 4 || perms[3] != 's') continue;
    const std::size_t dash = range.find('-');
    if (dash == 0 || dash == std::string::npos || dash + 1 == range.size()) continue;
    try {
      std::size_t used = 0;
      shared_mapping m;
      m.start = std::stoull(range.substr(0, dash), &used, 16);
      if (used != dash) continue;
      m.end = std::stoull(range.substr(dash + 1), &used, 16);
      if (used != range.size() - dash - 1 || m.end <= m.start) continue;
      mappings.push_back(m);
    } catch (const std::exception&) {  // not a number, or out of range
    }
  }
  return mappings;
}

inline std::vector<shared_mapping> read_shared_mappings() {
  std::ifstream maps("/proc/self/maps");
  return parse_shared_mappings(maps);
}

inline bool in_shared_mapping(const std::vector<shared_mapping>& mappings, const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  for (const shared_mapping& m : mappings) {
    if (at >= m.start && at < m.end) return true;
  }
  return false;
}

}  // namespace cmbench::detail
