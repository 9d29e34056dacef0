// pipeline: a producer, K stages and a consumer joined by bounded channels of capacity B. Every
// item passes every stage in order; each stage does a little work on it. The consumer folds the
// items in arrival order, so an item lost, duplicated or reordered changes the answer. Measures
// items per second and how often a sender found the next channel full (back-pressure).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct pipeline_context {
  std::uint64_t items;
  std::uint32_t stages;
  std::uint32_t bytes;
  std::uint64_t stage_numbers;  // Collatz numbers of work per item per stage
};

std::uint64_t produce(std::uint64_t item) { return kernels::mix64(item); }
std::uint64_t transform(const pipeline_context& c, std::uint32_t stage, std::uint64_t item, std::uint64_t value) {
  return value + (c.stage_numbers == 0 ? stage : kernels::compute_round(item, stage, c.stage_numbers));
}
std::uint64_t fold(std::uint64_t acc, std::uint64_t value) { return kernels::mix64(acc ^ value); }

// Units: 0 the producer, 1..K the stages, K+1 the consumer; channel k joins unit k to unit k+1.
// Message: word 0 the item's index, then the payload filled from the item's value.
unit_action pipeline_step(void* context, unit_state& s, std::byte* message) {
  const auto& c = *static_cast<const pipeline_context*>(context);
  const std::uint32_t consumer = c.stages + 1;
  if (s.unit == 0) {
    if (s.count == c.items) return {unit_op::finish};
    graph::set_word(message, 0, s.count);
    graph::fill_payload(message, c.bytes, produce(s.count));
    ++s.count;
    return {unit_op::send, 0};
  }
  if (s.pc == 1) {  // an item arrived from channel unit - 1
    const std::uint64_t item = graph::word(message, 0);
    const std::uint64_t received = graph::word(message, 1) - 1;
    const std::uint64_t damage = graph::payload_sum(message, c.bytes) - graph::expected_payload_sum(c.bytes, received);
    const std::uint64_t value = received + damage + (item == s.count ? 0 : 1);  // out of order: wrong answer
    ++s.count;
    if (s.unit == consumer) {
      s.value = fold(s.value, value);
    } else {
      graph::fill_payload(message, c.bytes, transform(c, s.unit, item, value));
      s.pc = 2;
      return {unit_op::send, s.unit};
    }
  }
  if (s.count == c.items) {
    s.result = s.value;
    return {unit_op::finish};
  }
  s.pc = 1;
  return {unit_op::receive, s.unit - 1};
}

std::uint64_t reference(const pipeline_context& c) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < c.items; ++i) {
    std::uint64_t value = produce(i);
    for (std::uint32_t stage = 1; stage <= c.stages; ++stage) value = transform(c, stage, i, value);
    acc = fold(acc, value);
  }
  return acc;
}

pipeline_context context_of(const param_values& p) {
  return {static_cast<std::uint64_t>(p.at("items")), static_cast<std::uint32_t>(p.at("stages")),
          static_cast<std::uint32_t>(p.at("bytes")),
          static_cast<std::uint64_t>(p.at("stage_ns")) * kernels::numbers_per_us / 1000};
}

workload_entry make_pipeline() {
  return workload_entry{
      .name = "pipeline",
      .description = "producer -> K stages -> consumer over bounded channels of capacity B, in order",
      .measures = "items per second; sends that found the next channel full (back-pressure)",
      .params = {{"items", "items the producer sends", 1, 1'000'000'000, 2000, 100'000, 1'000'000},
                 {"stages", "stages between producer and consumer", 1, 10'000, 2, 4, 8},
                 {"capacity", "messages every channel holds", 1, 1'000'000, 4, 16, 16},
                 {"bytes", "bytes of every item message (a multiple of 8, at least 16)", 16, 1 << 20, 64, 64, 64},
                 {"stage_ns", "nominal work per item per stage, ns on the reference machine (0: none)", 0,
                  100'000'000, 1000, 1000, 1000},
                 workers_param()},
      .validate = [](const param_values& p) { graph::check_message_bytes("pipeline", p); },
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        const pipeline_context c = context_of(p);
        return std::make_unique<graph::graph_run<pipeline_context>>(
            p, graph_job{c.stages + 2, c.stages + 1, static_cast<std::uint32_t>(p.at("capacity")), c.bytes, 0, {},
                         &pipeline_step, nullptr},
            c);
      },
      .reference = [](const param_values& p) { return reference(context_of(p)); },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("items")); },
      .cost = [](const param_values& p, const model_info&, unsigned cpus) {
        const double items = static_cast<double>(p.at("items"));
        const double stages = static_cast<double>(p.at("stages"));
        const double work = items * stages * static_cast<double>(p.at("stage_ns")) * 1e-9;
        const double handoffs = items * (stages + 1) * 10e-9;  // a hand-off in 10 ns
        return cost_estimate{(work + handoffs) / std::max(1u, cpus), work};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const double items = static_cast<double>(p.at("items"));
        const double sends = items * static_cast<double>(p.at("stages") + 1);
        std::map<std::string, double> m{{"items_per_second", items / f.wall_seconds}};
        if (const auto it = f.observed.find("blocked_sends"); it != f.observed.end()) {
          m["blocked_send_fraction"] = it->second / sends;
        }
        return m;
      },
      .order = 70,
      .figures = {{"items_per_second", "items per second", "items/s", figure_kind::rate, better::higher}},
      .speedup = true,
      .unit = "item",
      // The producer, the stages and the consumer.
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("stages") + 2); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(pipeline, make_pipeline);

}  // namespace cmbench
