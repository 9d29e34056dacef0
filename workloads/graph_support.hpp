// What the graph workloads (pingpong, ring, pipeline, contention, memory) share: a context
// object in shared memory, word access to messages, and the run that hands a graph job to a model.
#pragma once

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "models/shared_region.hpp"
#include "workloads/workload.hpp"

namespace cmbench::graph {

// One T in MAP_SHARED memory, so every process of every model sees the same object.
template <class T>
class shared_object {
 public:
  template <class... Args>
  explicit shared_object(Args&&... args)
      : region_(sizeof(T)), object_(new (region_.data()) T(std::forward<Args>(args)...)) {}
  ~shared_object() { object_->~T(); }
  shared_object(const shared_object&) = delete;
  shared_object& operator=(const shared_object&) = delete;

  T* get() const { return object_; }
  T* operator->() const { return object_; }
  T& operator*() const { return *object_; }

 private:
  shared_region region_;
  T* object_;
};

inline std::uint64_t word(const std::byte* message, std::uint32_t index) {
  std::uint64_t v = 0;
  std::memcpy(&v, message + 8 * std::size_t{index}, 8);
  return v;
}
inline void set_word(std::byte* message, std::uint32_t index, std::uint64_t v) {
  std::memcpy(message + 8 * std::size_t{index}, &v, 8);
}

// A payload the receiver can check: word i of a message with header h is h + i, so a message
// copied short, torn or stale sums differently. Both are O(message size), as real messages are.
inline void fill_payload(std::byte* message, std::uint32_t bytes, std::uint64_t header) {
  for (std::uint32_t i = 1; i < bytes / 8; ++i) set_word(message, i, header + i);
}
inline std::uint64_t payload_sum(const std::byte* message, std::uint32_t bytes) {
  std::uint64_t sum = 0;
  for (std::uint32_t i = 1; i < bytes / 8; ++i) sum += word(message, i);
  return sum;
}
// What payload_sum gives for a message filled from `header`.
constexpr std::uint64_t expected_payload_sum(std::uint32_t bytes, std::uint64_t header) {
  const std::uint64_t n = bytes / 8 - 1;
  return n * header + n * (n + 1) / 2;
}

// Rejects a message size the graph contract does not take (a multiple of 8, at least 16).
inline void check_message_bytes(const char* workload, const param_values& p) {
  if (p.at("bytes") % 8 != 0) {
    throw std::invalid_argument(std::string(workload) + ": bytes=" + std::to_string(p.at("bytes")) +
                                " is not a multiple of 8");
  }
}

// A graph job's run: its context in shared memory, the job handed to
// the model, the blocked sends as a metric of the trial. `shape` is the job without its context.
template <class Context>
class graph_run : public prepared_run {
 public:
  template <class... Args>
  graph_run(const param_values& p, graph_job shape, Args&&... context_args)
      : config_{static_cast<unsigned>(p.at("workers")), 0}, context_(std::forward<Args>(context_args)...) {
    job_ = shape;
    job_.context = context_.get();
  }
  model_config config() const override { return config_; }
  std::uint64_t run(model_instance& model) override {
    const graph_result r = model.run_graph(job_);
    blocked_sends_ = r.blocked_sends;
    return r.checksum;
  }
  run_observations observe() const override {
    return {{{"blocked_sends", static_cast<double>(blocked_sends_)}}, latency()};
  }

 protected:
  Context& context() const { return *context_; }
  virtual const latency_histogram* latency() const { return nullptr; }

 private:
  model_config config_;
  shared_object<Context> context_;
  graph_job job_;
  std::uint64_t blocked_sends_ = 0;
};

}  // namespace cmbench::graph
