// scatter: the seeds' fan-out, measured. The coordinator (the trial, on model M) sends N tasks to
// W nodes with at most C calls in flight; a node (serving on M, or on the model `node_model`
// pins) answers each after `wait_ms` of its natural wait and `compute_us` of the shared kernel
// over the task's payload; the coordinator gathers every value. The checksum is the sum of the
// values, which only the nodes compute, so a task not really sent, served and gathered fails it.
//
// What each call saw is recorded per task in shared memory (a process per call writes there
// too): its start and end, from which the latency histogram, the calls in flight at once and
// every wait's length are taken exactly after the run.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/shared_region.hpp"
#include "workloads/kernels.hpp"
#include "workloads/observe.hpp"
#include "workloads/remote_setup.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

// A task's payload: bytes mixed from its index, so the node must read all of them.
void payload_of(const void* /*context*/, std::uint64_t task, std::uint8_t* out, std::uint32_t bytes) {
  for (std::uint32_t i = 0; i < bytes; i += 8) {
    const std::uint64_t word = kernels::mix64(task * 0x9e3779b97f4a7c15ull + i);
    std::memcpy(out + i, &word, std::min<std::uint32_t>(8, bytes - i));
  }
}

// What a node computes for a task: compute_us of the shared kernel, folded with the payload.
std::uint64_t task_value(std::uint64_t task, std::uint32_t compute_us, const std::uint8_t* payload,
                         std::uint32_t bytes) {
  std::uint64_t h = kernels::compute_round(task, 0, std::uint64_t{compute_us} * kernels::numbers_per_us);
  for (std::uint32_t i = 0; i < bytes; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, payload + i, std::min<std::uint32_t>(8, bytes - i));
    h = kernels::mix64(h ^ word);
  }
  return h;
}

std::uint64_t reference_value(std::uint64_t task, std::uint32_t compute_us, std::uint32_t bytes) {
  std::vector<std::uint8_t> payload(bytes);
  payload_of(nullptr, task, payload.data(), bytes);
  return task_value(task, compute_us, payload.data(), bytes);
}

struct call_record {
  std::atomic<std::int64_t> started_ns{0};
  std::atomic<std::int64_t> finished_ns{0};
  std::atomic<std::uint32_t> calls{0};  // call_started per task: exactly one
};

struct shared_calls {
  remote_counters counters;
  alignas(64) std::atomic<std::int64_t> in_flight{0};
  call_record records[1];  // `tasks` of them
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void call_started(const void* context, std::uint64_t task) {
  auto& s = *static_cast<shared_calls*>(const_cast<void*>(context));
  s.records[task].calls.fetch_add(1, std::memory_order_relaxed);
  s.records[task].started_ns.store(now_ns(), std::memory_order_relaxed);
  observe::units_alive_add(1);
}

void call_finished(const void* context, std::uint64_t task, std::uint64_t /*value*/) {
  auto& s = *static_cast<shared_calls*>(const_cast<void*>(context));
  s.records[task].finished_ns.store(now_ns(), std::memory_order_relaxed);
  observe::units_alive_add(-1);
}

model_config config_of(const param_values& p) {
  return {static_cast<unsigned>(p.at("workers")), static_cast<std::uint64_t>(p.at("in_flight"))};
}

class scatter_run final : public prepared_run {
 public:
  explicit scatter_run(const param_values& p)
      : config_(config_of(p)),
        tasks_(static_cast<std::uint64_t>(p.at("tasks"))),
        wait_ms_(static_cast<std::uint32_t>(p.at("wait_ms"))),
        region_(sizeof(shared_calls) + tasks_ * sizeof(call_record)) {
    const remote_setup& setup = current_remote_setup();
    if (setup.nodes.size() != static_cast<std::size_t>(p.at("nodes"))) {
      throw std::runtime_error("scatter needs " + std::to_string(p.at("nodes")) + " serving nodes, the trial was given " +
                               std::to_string(setup.nodes.size()));
    }
    calls_ = new (region_.data()) shared_calls{};
    for (std::uint64_t t = 1; t < tasks_; ++t) new (&calls_->records[t]) call_record{};
    observe::page().gauge_used.store(1);
    job_.tasks = tasks_;
    job_.in_flight = static_cast<std::uint32_t>(p.at("in_flight"));
    job_.compute_us = static_cast<std::uint32_t>(p.at("compute_us"));
    job_.wait_ms = wait_ms_;
    job_.payload_bytes = static_cast<std::uint32_t>(p.at("payload_bytes"));
    job_.nodes = setup.nodes;
    job_.token = setup.token;
    job_.deadline = setup.deadline;
    job_.counters = &calls_->counters;
    job_.payload_of = &payload_of;
    job_.call_started = &call_started;
    job_.call_finished = &call_finished;
    job_.context = calls_;
  }

  model_config config() const override { return config_; }
  std::uint64_t run(model_instance& model) override { return model.run_scatter(job_); }

  run_observations observe() const override {
    latency_ = latency_histogram{};
    for (std::uint64_t t = 0; t < tasks_; ++t) {
      const call_record& r = calls_->records[t];
      const std::int64_t started = r.started_ns.load(), finished = r.finished_ns.load();
      if (started > 0 && finished >= started) latency_.record(static_cast<std::uint64_t>(finished - started));
    }
    const remote_counters& c = calls_->counters;
    run_observations seen;
    seen.metrics = {{"coordinator_connections", static_cast<double>(c.connections.load())},
                    {"coordinator_bytes_sent", static_cast<double>(c.bytes_sent.load())},
                    {"coordinator_bytes_received", static_cast<double>(c.bytes_received.load())},
                    {"calls_in_flight_peak", static_cast<double>(peak_in_flight())}};
    seen.latency = &latency_;
    return seen;
  }

  // Every task called once and answered after its wait; never more calls in flight than C and
  // the model allow; and, when the calls wait, more than one in flight where the model claims it.
  std::string verify(const model_info& model, std::map<std::string, double>& /*metrics*/) const override {
    const auto wait_ns = static_cast<std::int64_t>(wait_ms_) * 1'000'000;
    for (std::uint64_t t = 0; t < tasks_; ++t) {
      const call_record& r = calls_->records[t];
      if (r.calls.load() != 1) {
        return "task " + std::to_string(t) + " was called " + std::to_string(r.calls.load()) + " times";
      }
      if (r.finished_ns.load() == 0) return "task " + std::to_string(t) + " was called but never came back";
      if (r.finished_ns.load() - r.started_ns.load() < wait_ns) {
        return "task " + std::to_string(t) + " came back after " +
               std::to_string((r.finished_ns.load() - r.started_ns.load()) / 1000) + " us, before its " +
               std::to_string(wait_ms_) + " ms wait: the node did not wait";
      }
    }
    const std::uint64_t allowed =
        std::min<std::uint64_t>(job_.in_flight, wait_limit(model.waits, config_, tasks_));
    const std::uint64_t peak = peak_in_flight();
    if (peak > allowed) {
      return std::to_string(peak) + " calls in flight at once, more than the " + std::to_string(allowed) +
             " C and the model allow";
    }
    if (wait_ms_ > 0 && allowed > 1 && peak < 2) {
      return "the calls never overlapped (the model should hold " + std::to_string(allowed) + " at once)";
    }
    return {};
  }

 private:
  // The most calls in flight at once, from every call's start and end (exact, after the run).
  std::uint64_t peak_in_flight() const {
    std::vector<std::pair<std::int64_t, int>> edges;
    edges.reserve(2 * tasks_);
    for (std::uint64_t t = 0; t < tasks_; ++t) {
      const call_record& r = calls_->records[t];
      if (r.started_ns.load() == 0) continue;
      edges.emplace_back(r.started_ns.load(), 1);
      edges.emplace_back(r.finished_ns.load(), -1);
    }
    std::sort(edges.begin(), edges.end());  // an end before a start at the same instant
    std::int64_t now = 0, peak = 0;
    for (const auto& [at, delta] : edges) peak = std::max(peak, now += delta);
    return static_cast<std::uint64_t>(peak);
  }

  model_config config_;
  std::uint64_t tasks_;
  std::uint32_t wait_ms_;
  shared_region region_;
  shared_calls* calls_ = nullptr;
  scatter_job job_;
  mutable latency_histogram latency_;
};

// The ideal makespan: the C calls in flight each take at least the wait and the compute, and the
// nodes' CPUs compute every task at best in parallel.
double ideal_seconds(const param_values& p, double node_cpus) {
  const auto tasks = static_cast<double>(p.at("tasks"));
  const double in_flight = std::min(static_cast<double>(p.at("in_flight")), tasks);
  const double task_s = static_cast<double>(p.at("wait_ms")) * 1e-3 + static_cast<double>(p.at("compute_us")) * 1e-6;
  const double waves = std::ceil(tasks / std::max(1.0, in_flight));
  const double cpu_s = tasks * static_cast<double>(p.at("compute_us")) * 1e-6 / std::max(1.0, node_cpus);
  return std::max(waves * task_s, cpu_s);
}

workload_entry make_scatter() {
  return workload_entry{
      .name = "scatter",
      .description = "the coordinator sends N remote calls to W nodes, C in flight, and gathers the results",
      .measures = "makespan over its ideal, tasks per second, per-call latency; CPU and memory of both sides",
      .params = {{"tasks", "remote calls (tasks) in the run", 1, 10'000'000, 200, 1000, 20'000},
                 {"in_flight", "C: the most calls in flight at once", 1, 100'000, 16, 64, 10'000, false, true},
                 {"compute_us", "the shared kernel a node runs per task, microseconds", 0, 1'000'000, 20, 50, 20},
                 {"wait_ms", "the wait a node does per task before computing, milliseconds", 0, 60'000, 2, 5, 20},
                 {"payload_bytes", "bytes of payload in every request", 0, 1 << 20, 64, 64, 64},
                 {"nodes", "W: nodes the tasks are spread over", 1, 1024, 2, 2, 2},
                 workers_param(8, 32, 32),
                 {"node_model", "pin the node side to this model (0: the row's model)", 0, 1'000'000, 0, 0, 0,
                  false, false, true},
                 {"coordinator_model", "pin the coordinator side to this model (0: the row's model)", 0, 1'000'000,
                  0, 0, 0, false, false, true}},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<scatter_run>(p);
      },
      .reference = [](const param_values& p) {
        std::uint64_t sum = 0;
        for (std::uint64_t t = 0; t < static_cast<std::uint64_t>(p.at("tasks")); ++t) {
          sum += reference_value(t, static_cast<std::uint32_t>(p.at("compute_us")),
                                 static_cast<std::uint32_t>(p.at("payload_bytes")));
        }
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("tasks")); },
      .cost = [](const param_values& p, const model_info& model, unsigned cpus) {
        const auto tasks = static_cast<std::uint64_t>(p.at("tasks"));
        param_values capped = p;
        capped["concurrency"] = p.at("in_flight");
        const double waits = wait_rounds_seconds(capped, model, tasks, static_cast<double>(p.at("wait_ms")) * 1e-3);
        const double compute = static_cast<double>(tasks) * static_cast<double>(p.at("compute_us")) * 1e-6;
        return cost_estimate{std::max(waits, compute / std::max(1u, cpus)), compute};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const auto cpus = f.observed.find("node_cpus");
        const double ideal_s = ideal_seconds(p, cpus == f.observed.end() ? 1.0 : cpus->second);
        std::map<std::string, double> m{{"ideal_ms", ideal_s * 1e3}};
        if (ideal_s > 0 && f.wall_seconds > 0) m["makespan_over_ideal"] = f.wall_seconds / ideal_s;
        if (f.wall_seconds > 0) m["tasks_per_second"] = static_cast<double>(p.at("tasks")) / f.wall_seconds;
        return m;
      },
      .order = 100,
      .figures = {{"makespan_over_ideal", "makespan over its ideal", "x ideal", figure_kind::ratio, better::lower},
                  {"tasks_per_second", "remote calls gathered per second", "tasks/s", figure_kind::rate,
                   better::higher},
                  {"latency_p50_ns", "per-call latency, median", "p50", figure_kind::time_ns, better::lower},
                  {"latency_p99_ns", "per-call latency, 99th percentile", "p99", figure_kind::time_ns, better::lower}},
      .read_against_floor = true,
      .unit = "task",
      .alive = [](const param_values& p) {
        return std::min(static_cast<std::uint64_t>(p.at("tasks")), static_cast<std::uint64_t>(p.at("in_flight")));
      },
      .floor_probe = "tcp_round_trip",
      .work_in_latency_ns = [](const param_values& p) {
        return static_cast<double>(p.at("wait_ms")) * 1e6 + static_cast<double>(p.at("compute_us")) * 1e3;
      },
      .remote = true,
      .node_value = &task_value,
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(scatter, make_scatter);

}  // namespace cmbench
