// memory: N units alive at once, every one blocked at the barrier of all units; the last to
// arrive holds them `hold_ms` so the harness's sampler sees the peak. Measures bytes per unit
// (peak memory of every process of the trial, less memory before the run, over N) and the largest
// N each model reaches: a model stops at its real limit (threads, processes, memory) and says which.
#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct no_context {};  // the units share nothing but the barrier

unit_action memory_step(void*, unit_state& s, std::byte*) {
  if (s.pc++ == 0) return {unit_op::arrive};
  s.result = kernels::mix64(s.unit);
  return {unit_op::finish};
}

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
        return std::make_unique<graph::graph_run<no_context>>(
            p, graph_job{static_cast<std::uint32_t>(p.at("units")), 0, 1, 16, 0,
                         std::chrono::milliseconds{p.at("hold_ms")}, &memory_step, nullptr});
      },
      .reference = [](const param_values& p) {
        std::uint64_t sum = 0;
        for (std::int64_t u = 0; u < p.at("units"); ++u) sum += kernels::mix64(static_cast<std::uint64_t>(u));
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units")); },
      .metrics = nullptr,
      .summary_metric = "bytes_per_unit",
      .summary_label = "B/unit",
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(memory, make_memory);

}  // namespace cmbench
