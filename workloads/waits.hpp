// What io and mixed share: a bulk job whose every wait the workload watches (bulk_job's
// begin_wait / run_round), so a model's waits are verified, not taken on trust.
//
// Right before a model starts a round's wait it calls begin_wait(task, round): the watch stamps
// the time in the task's slot and counts the wait in flight. When the wait has ended the model
// calls run_round(task, round): the watch checks that this round's wait was begun and lasted at
// least the job's wait, counts it out, then runs the workload's compute. Everything lives in
// shared memory, so units in forked processes report into the same watch. The largest number of
// waits in flight at once is also the trial's gauge of units alive (observe.hpp), so memory per
// waiting task divides by the waits in flight when the memory was measured.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "models/model.hpp"
#include "models/shared_region.hpp"
#include "workloads/observe.hpp"
#include "workloads/workload.hpp"

namespace cmbench::waits {

// The tasks in flight at once: every task, or `concurrency` of them where that is set (0: all).
inline std::uint64_t tasks_in_flight(const param_values& p) {
  // As many as a model that starts a unit per task holds, at most `concurrency` alive.
  return wait_limit(wait_capacity::tasks, model_config{1, static_cast<std::uint64_t>(p.at("concurrency"))},
                    static_cast<std::uint64_t>(p.at("tasks")));
}

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct task_slot {
  std::atomic<std::int64_t> started_ns{0};
  std::atomic<std::uint32_t> round{0};  // the round whose wait was begun, plus one; 0: none
};

struct watch {
  std::uint64_t (*compute)(const void* context, std::uint64_t task, std::uint32_t round) = nullptr;
  const void* context = nullptr;
  std::int64_t wait_ns = 0;
  task_slot* slots = nullptr;
  alignas(64) std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> peak{0};
  alignas(64) std::atomic<std::uint64_t> begun{0};
  std::atomic<std::uint64_t> ended{0};
  std::atomic<std::uint64_t> not_begun{0};  // run_round after a wait that was never begun
  std::atomic<std::uint64_t> short_waits{0};
  std::atomic<std::int64_t> shortest_ns{INT64_MAX};
};

inline void wait_started(const void* context, std::uint64_t task, std::uint32_t round) {
  auto& w = *static_cast<watch*>(const_cast<void*>(context));
  task_slot& slot = w.slots[task];
  slot.started_ns.store(now_ns(), std::memory_order_relaxed);
  slot.round.store(round + 1, std::memory_order_release);
  w.begun.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now_in_flight = w.in_flight.fetch_add(1, std::memory_order_acq_rel) + 1;
  std::int64_t peak = w.peak.load(std::memory_order_relaxed);
  while (now_in_flight > peak && !w.peak.compare_exchange_weak(peak, now_in_flight, std::memory_order_relaxed)) {
  }
  observe::units_alive_add(1);
}

inline std::uint64_t checked_round(const void* context, std::uint64_t task, std::uint32_t round) {
  auto& w = *static_cast<watch*>(const_cast<void*>(context));
  if (w.wait_ns > 0) {
    task_slot& slot = w.slots[task];
    if (slot.round.exchange(0, std::memory_order_acq_rel) != round + 1) {
      w.not_begun.fetch_add(1, std::memory_order_relaxed);
    } else {
      const std::int64_t lasted = now_ns() - slot.started_ns.load(std::memory_order_relaxed);
      w.ended.fetch_add(1, std::memory_order_relaxed);
      w.in_flight.fetch_sub(1, std::memory_order_acq_rel);
      observe::units_alive_add(-1);
      if (lasted < w.wait_ns) w.short_waits.fetch_add(1, std::memory_order_relaxed);
      std::int64_t shortest = w.shortest_ns.load(std::memory_order_relaxed);
      while (lasted < shortest && !w.shortest_ns.compare_exchange_weak(shortest, lasted, std::memory_order_relaxed)) {
      }
    }
  }
  return w.compute(w.context, task, round);
}

// A bulk job with watched waits, for a workload's prepared_run: job() is what it hands the model,
// metrics() and verify() what it reports after the run.
class watched_bulk {
 public:
  // `job` is the workload's own (compute, context, wait); its slots are touched now, before the
  // measured region, so they count in the memory before the run and not per waiting task.
  watched_bulk(const bulk_job& job, const model_config& config)
      : job_(job), config_(config), watch_region_(sizeof(watch)), slots_(std::max<std::uint64_t>(job.tasks, 1) * sizeof(task_slot)) {
    watch_ = new (watch_region_.data()) watch{};
    watch_->compute = job.compute;
    watch_->context = job.context;
    watch_->wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(job.wait).count();
    std::memset(slots_.data(), 0, slots_.size());
    watch_->slots = slots_.at<task_slot>();
    job_.compute = &checked_round;
    job_.context = watch_;
    job_.wait_started = job.wait.count() > 0 ? &wait_started : nullptr;
    observe::page().gauge_used.store(job.wait.count() > 0 ? 1 : 0);
  }

  const bulk_job& job() const { return job_; }

  // The waits as the run saw them; every wait the job asked for is accounted for.
  std::string verify(const model_info& model, std::map<std::string, double>& metrics) const {
    const std::uint64_t waits = job_.wait.count() > 0 ? job_.tasks * job_.rounds : 0;
    const watch& w = *watch_;
    const auto peak = static_cast<std::uint64_t>(w.peak.load());
    const std::uint64_t limit = wait_limit(model.waits, config_, job_.tasks);
    metrics["waits"] = static_cast<double>(w.ended.load());
    metrics["waits_in_flight_peak"] = static_cast<double>(peak);
    metrics["wait_limit"] = static_cast<double>(waits > 0 ? limit : 0);
    if (waits == 0) return {};
    metrics["shortest_wait_ns"] = static_cast<double>(w.shortest_ns.load());
    const std::string of = " of " + std::to_string(waits) + " waits";
    if (w.begun.load() != waits || w.not_begun.load() != 0) {
      return std::to_string(w.not_begun.load()) + of + " were never begun (" + std::to_string(w.begun.load()) +
             " begun): the model skipped them";
    }
    if (w.short_waits.load() != 0) {
      return std::to_string(w.short_waits.load()) + of + " lasted less than " + std::to_string(w.wait_ns) +
             " ns (the shortest " + std::to_string(w.shortest_ns.load()) + " ns)";
    }
    if (w.ended.load() != waits) return std::to_string(w.ended.load()) + of + " ended";
    if (peak > limit) {
      return std::to_string(peak) + " waits were in flight at once, more than the model's stated limit of " +
             std::to_string(limit);
    }
    // Serialised waits: a model whose waits need no new unit (pre-started workers, coroutines
    // started in one turn of the loop) holds at least half its limit at once, whatever a loaded
    // machine's wake-up delays; one that creates a thread or a process per task may create them
    // more slowly than the waits end (a fork per task), but must overlap them. The row reports
    // the peak against the limit either way.
    const std::uint64_t expected = model.waits == wait_capacity::tasks ? std::min<std::uint64_t>(limit, 2)
                                                                       : std::max<std::uint64_t>(std::min<std::uint64_t>(limit, 2), (limit + 1) / 2);
    if (peak < expected) {
      return "at most " + std::to_string(peak) + " waits were in flight at once, fewer than the " +
             std::to_string(expected) + " the model's limit of " + std::to_string(limit) +
             " requires: it serialised them";
    }
    return {};
  }

 private:
  bulk_job job_;
  model_config config_;
  shared_region watch_region_;
  shared_region slots_;
  watch* watch_ = nullptr;
};

}  // namespace cmbench::waits
