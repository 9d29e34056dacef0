// processes/pool's graph units: the parked-unit interpreter (parked/graph_interpreter.hpp) over
// storage in the job area (processes/job_area.hpp), which each worker maps at its own address:
// everything is found by offsets from the area's base, computed once per job by the caller.
//
// Per unit its record (parked_unit, 56 bytes) followed by its message buffer; then the channels,
// each a header and its slots in whole cache lines, so two channels never share one; then the
// job's mutexes, a cache line each. All zero is every part's initial state: the area is fresh
// zero pages at the start of every job, so the caller writes nothing per unit. The job-wide
// counters (barrier, finished units, checksum) are in the pool's control block, which the caller
// resets per job and reads for its deadlock check.
#pragma once

#include <cstddef>
#include <cstdint>

#include "models/graph_validation.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench::detail::shm_pool {

using graph_channel = parked_channel<futex_mutex>;
constexpr std::size_t channel_header_bytes = round_up(sizeof(graph_channel), 8);

struct alignas(cache_line) graph_mutex {
  futex_mutex mutex;
};

// Where a graph job's pieces are in the job area.
struct graph_shape {
  graph_job job;  // a copy: the caller's job object is not in shared memory
  std::size_t unit_stride = 0;  // sizeof(parked_unit) + message_bytes
  std::size_t channels_offset = 0;
  std::size_t channel_stride = 0;  // whole cache lines
  std::size_t mutexes_offset = 0;
  std::size_t used_bytes = 0;  // rounded up to whole pages
};

// Throws invalid_argument for a job outside the contract, limit_error for one with more units
// than `max_units` (the ring's cells: every unit may be queued at once).
inline graph_shape shape_graph(const graph_job& job, std::uint64_t max_units) {
  validate_graph_job(job, "processes/pool");
  if (job.units > max_units) {
    throw limit_error("processes/pool: a graph of " + with_thousands(job.units) +
                      " units does not fit the shared task ring (" + with_thousands(max_units) +
                      " descriptors, sized before the workers were forked)");
  }
  graph_shape shape;
  shape.job = job;
  shape.unit_stride = sizeof(parked_unit) + job.message_bytes;
  // 64-bit arithmetic throughout: 2^32 units or channels of 2^32 slots cannot wrap it.
  const std::uint64_t unit_bytes = std::uint64_t{job.units} * shape.unit_stride;
  shape.channel_stride = round_up(channel_header_bytes + std::uint64_t{job.capacity} * job.message_bytes, cache_line);
  shape.channels_offset = round_up(unit_bytes, cache_line);
  const std::uint64_t channel_bytes = std::uint64_t{job.channels} * shape.channel_stride;
  shape.mutexes_offset = shape.channels_offset + channel_bytes;
  const std::uint64_t total = shape.mutexes_offset + std::uint64_t{job.mutexes} * sizeof(graph_mutex);
  shape.used_bytes = round_up(total, 4096);
  return shape;
}

// The interpreter's storage: a view of one job's area in this process. Async-signal-safe.
class graph_area {
 public:
  using mutex_type = futex_mutex;

  graph_area(std::byte* base, const graph_shape& shape, parked_counters& counters) noexcept
      : base_(base), shape_(&shape), counters_(&counters) {}

  const graph_job& job() const noexcept { return shape_->job; }
  parked_unit& unit(std::uint32_t u) noexcept { return *reinterpret_cast<parked_unit*>(unit_bytes(u)); }
  std::byte* message(std::uint32_t u) noexcept { return unit_bytes(u) + sizeof(parked_unit); }
  graph_channel& channel(std::uint32_t c) noexcept { return *reinterpret_cast<graph_channel*>(channel_bytes(c)); }
  std::byte* slot(std::uint32_t c, std::uint32_t i) noexcept {
    return channel_bytes(c) + channel_header_bytes + std::size_t{i} * shape_->job.message_bytes;
  }
  futex_mutex& mutex(std::uint32_t m) noexcept {
    return reinterpret_cast<graph_mutex*>(base_ + shape_->mutexes_offset)[m].mutex;
  }
  parked_counters& counters() noexcept { return *counters_; }

 private:
  std::byte* unit_bytes(std::uint32_t u) const noexcept { return base_ + std::size_t{u} * shape_->unit_stride; }
  std::byte* channel_bytes(std::uint32_t c) const noexcept {
    return base_ + shape_->channels_offset + std::size_t{c} * shape_->channel_stride;
  }

  std::byte* base_;
  const graph_shape* shape_;
  parked_counters* counters_;
};

}  // namespace cmbench::detail::shm_pool
