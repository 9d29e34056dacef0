// What the graph workloads (pingpong, ring, pipeline, contention, memory) share: a context
// object in shared memory, word access to messages, and the run that hands a graph job to a model.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "models/shared_region.hpp"
#include "workloads/observe.hpp"
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

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// What every graph run observes of its units whatever the model, in shared memory beside the
// workload's context: when the first unit took its first step and the last one finished (so
// creating and joining units is timed apart from the messages), and every message received with
// whether it came from another OS thread or process. Each message carries its sender's place in
// 8 bytes after the workload's own, so the model copies them like the rest of the message.
struct graph_watch {
  unit_action (*step)(void* context, unit_state& state, std::byte* message) = nullptr;
  void* context = nullptr;
  std::uint32_t units = 0;
  std::uint32_t tag_offset = 0;  // the workload's message bytes; the sender's place follows
  alignas(64) std::atomic<std::uint32_t> started{0};
  std::atomic<std::uint64_t> first_step_ns{0};
  std::atomic<std::uint64_t> all_started_ns{0};  // the last unit's first step
  alignas(64) std::atomic<std::uint32_t> finished{0};
  std::atomic<std::uint64_t> last_finish_ns{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> crossed{0};
};

// A unit's own counts, packed in its unit_state's one `handoffs` word so they add 8 bytes per
// unit: the operation it returned last (plus one; 0 before its first step), the messages it
// received and how many of them crossed (30 bits each: a billion per unit).
struct unit_counts {
  static constexpr std::uint64_t field = (std::uint64_t{1} << 30) - 1;
  std::uint64_t last_op, received, crossed;
  explicit unit_counts(std::uint64_t word) : last_op(word & 7), received((word >> 3) & field), crossed(word >> 33) {}
  std::uint64_t word() const { return last_op | (received & field) << 3 | (crossed & field) << 33; }
};

// The step every model calls: the workload's, plus the counting above. Per unit it keeps its
// counts in the unit's own state and adds them up once, when the unit finishes.
inline unit_action watched_step(void* w, unit_state& s, std::byte* message) {
  auto& watch = *static_cast<graph_watch*>(w);
  const std::uint64_t place = observe::current_place();
  unit_counts counts(s.handoffs);
  if (counts.last_op == 0) {
    const std::uint32_t before = watch.started.fetch_add(1, std::memory_order_relaxed);
    if (before == 0) watch.first_step_ns.store(now_ns(), std::memory_order_relaxed);
    if (before + 1 == watch.units) watch.all_started_ns.store(now_ns(), std::memory_order_relaxed);
  } else if (counts.last_op == 1 + static_cast<std::uint32_t>(unit_op::receive)) {
    std::uint64_t from = 0;
    std::memcpy(&from, message + watch.tag_offset, 8);
    ++counts.received;
    if (from != place) ++counts.crossed;
  }
  const unit_action action = watch.step(watch.context, s, message);
  counts.last_op = 1 + static_cast<std::uint32_t>(action.op);
  s.handoffs = counts.word();
  if (action.op == unit_op::send) {
    std::memcpy(message + watch.tag_offset, &place, 8);
  } else if (action.op == unit_op::finish) {
    watch.received.fetch_add(counts.received, std::memory_order_relaxed);
    watch.crossed.fetch_add(counts.crossed, std::memory_order_relaxed);
    if (watch.finished.fetch_add(1, std::memory_order_acq_rel) + 1 == watch.units) {
      watch.last_finish_ns.store(now_ns(), std::memory_order_release);
    }
  }
  return action;
}

// A graph job's run: its context in shared memory, the job handed to the model through
// watched_step, and what the run observed: blocked sends, hand-offs (messages received) and how
// many crossed a thread or process, and the three phases of the measured region: creating the
// units (until the first one steps), the messages (until the last one finishes), joining them.
// `shape` is the job without its context.
template <class Context>
class graph_run : public prepared_run {
 public:
  template <class... Args>
  graph_run(const param_values& p, graph_job shape, Args&&... context_args)
      : config_{static_cast<unsigned>(p.at("workers")), 0}, context_(std::forward<Args>(context_args)...) {
    watch_->step = shape.step;
    watch_->context = context_.get();
    watch_->units = shape.units;
    watch_->tag_offset = shape.message_bytes;
    job_ = shape;
    if (shape.channels > 0) job_.message_bytes = shape.message_bytes + 8;  // the sender's place
    job_.step = &watched_step;
    job_.context = watch_.get();
  }
  model_config config() const override { return config_; }
  std::uint64_t run(model_instance& model) override {
    run_start_ns_ = now_ns();
    const graph_result r = model.run_graph(job_);
    run_end_ns_ = now_ns();
    blocked_sends_ = r.blocked_sends;
    return r.checksum;
  }
  run_observations observe() const override {
    run_observations seen{{{"blocked_sends", static_cast<double>(blocked_sends_)}}, latency()};
    const graph_watch& w = *watch_;
    const double received = static_cast<double>(w.received.load());
    seen.metrics["handoffs"] = received;
    seen.metrics["handoffs_crossed"] = static_cast<double>(w.crossed.load());
    if (received > 0) seen.metrics["handoffs_crossed_fraction"] = static_cast<double>(w.crossed.load()) / received;
    const std::uint64_t first = w.first_step_ns.load();
    const std::uint64_t last = w.last_finish_ns.load();
    if (w.finished.load() == w.units && first >= run_start_ns_ && last >= first && run_end_ns_ >= last) {
      seen.metrics["create_ns"] = static_cast<double>(first - run_start_ns_);
      seen.metrics["message_ns"] = static_cast<double>(last - first);
      seen.metrics["join_ns"] = static_cast<double>(run_end_ns_ - last);
      // Models that start units as they launch them (a pool's queue, a loop's driver) start the
      // messages before the last unit has stepped: how long the starts were spread over.
      const std::uint64_t all_started = w.all_started_ns.load();
      if (all_started >= first) seen.metrics["start_spread_ns"] = static_cast<double>(all_started - first);
    }
    for (const auto& [name, value] : extra_metrics()) seen.metrics[name] = value;
    return seen;
  }

 protected:
  Context& context() const { return *context_; }
  virtual const latency_histogram* latency() const { return nullptr; }
  virtual std::map<std::string, double> extra_metrics() const { return {}; }

 private:
  model_config config_;
  shared_object<Context> context_;
  shared_object<graph_watch> watch_;
  graph_job job_;
  std::uint64_t run_start_ns_ = 0;
  std::uint64_t run_end_ns_ = 0;
  std::uint64_t blocked_sends_ = 0;
};

}  // namespace cmbench::graph
