// The one check of a graph job's shape, made by every model before it lays out channels and
// messages: a channel of capacity 0 would block its first sender forever, and message buffers
// are copied as whole 8-byte words (with the workloads' 8-byte hand-off tag after 8 bytes of
// their own), so a shape outside the contract would hang a run or overrun a buffer instead of
// failing it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "models/model.hpp"

namespace cmbench {

// Throws std::invalid_argument, naming `model`, unless the job has a step, capacity >= 1 and
// message_bytes >= 16, a multiple of 8 (models/model.hpp's graph_job).
inline void validate_graph_job(const graph_job& job, std::string_view model) {
  if (job.step == nullptr || job.capacity == 0 || job.message_bytes < 16 || job.message_bytes % 8 != 0) {
    throw std::invalid_argument(std::string(model) +
                                ": a graph job needs a step, capacity >= 1 and message_bytes >= 16, a multiple of 8");
  }
}

}  // namespace cmbench
