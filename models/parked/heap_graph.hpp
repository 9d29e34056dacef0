// The storage of a parked-unit graph (parked/graph_interpreter.hpp) in this process's heap: what
// serial/baseline, threads/pool and threads/tbb run their units in. Everything is allocated up
// front, when the job starts; memory exhaustion is these models' real limit on units.
//
// Per unit a 64-byte record on its own cache line (units run side by side on different workers
// write their records without sharing a line) and its message buffer; per channel a cache line
// for its header and whole cache lines for its slots (a channel's two units usually run on
// different workers, and neighbouring channels, a pipeline's or a ring's, belong to other pairs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "models/graph_validation.hpp"
#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"

namespace cmbench::detail {

template <class Mutex>
class heap_graph {
 public:
  using mutex_type = Mutex;

  // `runtime_bytes_per_unit`: what the runtime itself keeps per unit (a run-queue entry), counted
  // in the memory check with the records.
  heap_graph(const graph_job& job, std::string_view model, std::size_t runtime_bytes_per_unit = 0) : job_(job) {
    validate_graph_job(job, model);
    slot_lines_ = (std::size_t{job.capacity} * job.message_bytes + sizeof(cache_line_bytes) - 1) /
                  sizeof(cache_line_bytes);
    // All of it is touched as the units start: past the budget, the OOM killer would end the run.
    const std::uint64_t bytes =
        std::uint64_t{job.units} * (sizeof(unit_record) + job.message_bytes + runtime_bytes_per_unit) +
        std::uint64_t{job.channels} * (sizeof(channel_record) + slot_lines_ * sizeof(cache_line_bytes)) +
        std::uint64_t{job.mutexes} * sizeof(Mutex);
    check_memory_need(model,
                      "a graph of " + with_thousands(job.units) + " units, " + with_thousands(job.channels) +
                          " channels and " + with_thousands(job.mutexes) +
                          " mutexes (unit records, messages, channel slots)",
                      bytes);
    try {
      units_ = std::make_unique<unit_record[]>(job.units);  // zeroed: not started
      messages_ = std::make_unique<std::uint64_t[]>(std::size_t{job.units} * (job.message_bytes / 8));  // zeroed
      channels_ = std::make_unique<channel_record[]>(job.channels);
      slots_ = std::make_unique_for_overwrite<cache_line_bytes[]>(slot_lines_ * job.channels);
      mutexes_ = std::make_unique<Mutex[]>(job.mutexes);
    } catch (const std::bad_alloc&) {
      throw limit_error(std::string(model) + ": out of memory allocating " + std::to_string(job.units) +
                        " units of " + std::to_string(sizeof(unit_record) + job.message_bytes) + " bytes (" +
                        describe_address_space() + ")");
    }
  }

  heap_graph(const heap_graph&) = delete;
  heap_graph& operator=(const heap_graph&) = delete;

  const graph_job& job() const noexcept { return job_; }
  parked_unit& unit(std::uint32_t u) noexcept { return units_[u].unit; }
  std::byte* message(std::uint32_t u) noexcept {
    return reinterpret_cast<std::byte*>(messages_.get() + std::size_t{u} * (job_.message_bytes / 8));
  }
  parked_channel<Mutex>& channel(std::uint32_t c) noexcept { return channels_[c].channel; }
  std::byte* slot(std::uint32_t c, std::uint32_t i) noexcept {
    return slots_[std::size_t{c} * slot_lines_].bytes + std::size_t{i} * job_.message_bytes;
  }
  Mutex& mutex(std::uint32_t m) noexcept { return mutexes_[m]; }
  parked_counters& counters() noexcept { return counters_; }

 private:
  struct alignas(64) unit_record {
    parked_unit unit{};
  };
  static_assert(sizeof(unit_record) == 64);
  struct alignas(64) channel_record {
    parked_channel<Mutex> channel;
  };
  struct alignas(64) cache_line_bytes {
    std::byte bytes[64];
  };

  const graph_job job_;  // a copy: one indirection less on every message and slot lookup
  std::size_t slot_lines_ = 0;  // cache lines of slots per channel
  std::unique_ptr<unit_record[]> units_;
  std::unique_ptr<std::uint64_t[]> messages_;  // one message buffer per unit, 8-byte aligned
  std::unique_ptr<channel_record[]> channels_;
  std::unique_ptr<cache_line_bytes[]> slots_;  // each channel's `capacity` messages, own cache lines
  std::unique_ptr<Mutex[]> mutexes_;
  parked_counters counters_;
};

}  // namespace cmbench::detail
