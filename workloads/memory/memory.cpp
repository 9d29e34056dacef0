// memory: N units alive at once, every one blocked at the barrier of all units, held `hold_ms`.
// The unit that completes the count of arrivals asks the harness to measure the memory of every
// process of the trial then, with every unit provably alive, and waits until it has. Measures bytes
// per unit (that measurement less the memory before the run, over the units alive at it) and the
// largest N each model reaches: a model stops at its real limit (threads, processes, memory) and
// says which.
#include <algorithm>
#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct memory_context {
  std::uint32_t units = 0;
  alignas(64) std::atomic<std::uint32_t> arrived{0};  // units that reached the barrier
  std::atomic<std::uint64_t> sample_ns{0};            // how long the harness took to measure
  std::atomic<std::uint32_t> sampled{0};              // 1: measured with every unit alive
};

// What unit u returns: a mix of its index and of how many units it saw arrive at the barrier, so
// a model whose barrier lets a unit through early (or that never has them all alive at once)
// computes a different sum.
std::uint64_t unit_result(std::uint64_t unit, std::uint64_t units, std::uint64_t seen) {
  return kernels::mix64(unit * (units + 1) + seen);
}

unit_action memory_step(void* context, unit_state& s, std::byte*) {
  auto& c = *static_cast<memory_context*>(context);
  if (s.pc++ == 0) {
    observe::units_alive_add(1);
    if (c.arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == c.units) {
      // Every unit exists now, and none can finish before the barrier opens: the moment to
      // measure. This unit blocks until the harness has (every other unit is parked or blocked
      // at the barrier meanwhile); the hold then still applies.
      const std::uint64_t start = graph::now_ns();
      if (observe::sample_memory_now()) c.sampled.store(1, std::memory_order_relaxed);
      c.sample_ns.store(graph::now_ns() - start, std::memory_order_relaxed);
    }
    return {unit_op::arrive};
  }
  s.result = unit_result(s.unit, c.units, c.arrived.load(std::memory_order_acquire));
  observe::units_alive_add(-1);
  return {unit_op::finish};
}

class memory_run final : public graph::graph_run<memory_context> {
 public:
  explicit memory_run(const param_values& p)
      : graph_run(p, graph_job{static_cast<std::uint32_t>(p.at("units")), 0, 1, 16, 0,
                               std::chrono::milliseconds{p.at("hold_ms")}, &memory_step, nullptr}) {
    context().units = static_cast<std::uint32_t>(p.at("units"));
    observe::page().gauge_used.store(1);
  }

 protected:
  std::map<std::string, double> extra_metrics() const override {
    return {{"measured_with_all_alive", static_cast<double>(context().sampled.load())},
            {"memory_sample_ns", static_cast<double>(context().sample_ns.load())}};
  }
};

workload_entry make_memory() {
  return workload_entry{
      .name = "memory",
      .description = "N units alive at once, all blocked at one barrier, held hold_ms, then released",
      .measures = "bytes per live unit, every process counted; the largest N each model sustains",
      .params = {{"units", "units alive at once", 1, 100'000'000, 1000, 10'000, 1'000'000},
                 {"hold_ms", "how long every unit stays blocked once all are alive, ms", 0, 600'000, 60, 200, 500},
                 workers_param()},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<memory_run>(p);
      },
      .reference = [](const param_values& p) {
        const auto units = static_cast<std::uint64_t>(p.at("units"));
        std::uint64_t sum = 0;
        for (std::uint64_t u = 0; u < units; ++u) sum += unit_result(u, units, units);
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units")); },
      .cost = [](const param_values& p, const model_info&, unsigned) {
        const double units = static_cast<double>(p.at("units"));  // a unit made in 50 ns, at best
        return cost_estimate{static_cast<double>(p.at("hold_ms")) * 1e-3 + units * 50e-9, units * 2e-9};
      },
      .metrics = nullptr,
      .order = 90,
      .figures = {{"bytes_per_unit", "memory per unit alive", "B/unit", figure_kind::bytes, better::lower}},
      .memory_per_unit = true,
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units")); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(memory, make_memory);

}  // namespace cmbench
