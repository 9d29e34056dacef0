// ring: the classic thread-ring. U units in a ring pass a token H hops: unit u receives on channel
// u and sends on channel (u + 1) % U. Each hop is one hand-off from a unit to the next, so the
// time per hop is the cost of one wake-up and switch of the model. After the last hop a stop token
// goes round once (U - 1 more hand-offs, counted in `stop_hops`) so that every unit ends. The
// time per hop is the message phase's: from the first unit's first step to the last one's finish.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct ring_context {
  std::uint32_t units;
  std::uint64_t hops;
  std::uint32_t bytes;
};

constexpr std::uint64_t stop_base = std::uint64_t{1} << 63;  // a stop token: stop_base + its origin

// What the unit making hop `hop` (1-based) adds to the token it received.
std::uint64_t token_after(std::uint64_t value, std::uint64_t hop) { return kernels::mix64(value + hop); }

// Message: word 0 the hop count (or a stop token), then the payload filled from the token's value.
unit_action ring_step(void* context, unit_state& s, std::byte* message) {
  const auto& c = *static_cast<const ring_context*>(context);
  const std::uint32_t next = (s.unit + 1) % c.units;
  switch (s.pc) {
    case 0:
      if (s.unit == 0) {  // unit 0 starts the token
        graph::set_word(message, 0, 0);
        graph::fill_payload(message, c.bytes, 0);
        s.pc = 3;
        return {unit_op::send, next};
      }
      s.pc = 1;
      return {unit_op::receive, s.unit};
    case 1: {  // the token arrived
      const std::uint64_t hops = graph::word(message, 0);
      s.pc = 2;
      if (hops >= stop_base) {
        if (next == hops - stop_base) return {unit_op::finish};
        return {unit_op::send, next};  // pass the stop token on
      }
      // A torn or stale payload changes the answer instead of passing unnoticed.
      const std::uint64_t received = graph::word(message, 1) - 1;
      const std::uint64_t damage = graph::payload_sum(message, c.bytes) - graph::expected_payload_sum(c.bytes, received);
      const std::uint64_t value = token_after(received + damage, hops + 1);
      if (hops + 1 == c.hops) {  // the last hop: this unit holds the answer
        s.result = value;
        graph::set_word(message, 0, stop_base + s.unit);
        return {unit_op::send, next};
      }
      graph::set_word(message, 0, hops + 1);
      graph::fill_payload(message, c.bytes, value);
      s.pc = 3;
      return {unit_op::send, next};
    }
    case 3:
      s.pc = 1;
      return {unit_op::receive, s.unit};
    default:
      return {unit_op::finish};
  }
}

workload_entry make_ring() {
  return workload_entry{
      .name = "ring",
      .description = "thread-ring: U units in a ring pass a token H hops, then a stop token goes round once",
      .measures = "cost of one hand-off between units (ns per hop)",
      .params = {{"units", "units in the ring", 2, 10'000'000, 503, 503, 503},
                 {"hops", "hand-offs of the token", 1, 1'000'000'000, 10'000, 200'000, 2'000'000},
                 {"bytes", "bytes of the token message (a multiple of 8, at least 16)", 16, 1 << 20, 16, 16, 16},
                 workers_param()},
      .validate = [](const param_values& p) { graph::check_message_bytes("ring", p); },
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        const ring_context c{static_cast<std::uint32_t>(p.at("units")), static_cast<std::uint64_t>(p.at("hops")),
                             static_cast<std::uint32_t>(p.at("bytes"))};
        return std::make_unique<graph::graph_run<ring_context>>(
            p, graph_job{c.units, c.units, 1, c.bytes, 0, {}, &ring_step, nullptr}, c);
      },
      .reference = [](const param_values& p) {
        std::uint64_t value = 0;
        for (std::int64_t hop = 1; hop <= p.at("hops"); ++hop) value = token_after(value, static_cast<std::uint64_t>(hop));
        return value;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("hops")); },
      .cost = [](const param_values& p, const model_info&, unsigned) {
        const double hops = static_cast<double>(p.at("hops"));  // a hand-off in 10 ns, a mix in 2 ns
        return cost_estimate{hops * 10e-9, hops * 2e-9};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        // Hand-offs of the message phase: the token's hops and the stop token's lap (every unit
        // but the one that started it receives it). Creating and joining the units is reported
        // apart (create_ns, join_ns), so a model that makes a thread or process per unit is not
        // charged its creation per hop.
        const double stop_hops = static_cast<double>(p.at("units") - 1);
        std::map<std::string, double> m{{"stop_hops", stop_hops}};
        const auto phase = f.observed.find("message_ns");
        if (phase != f.observed.end()) m["ns_per_hop"] = phase->second / (static_cast<double>(p.at("hops")) + stop_hops);
        return m;
      },
      .order = 60,
      .figures = {{"ns_per_hop", "time per hand-off (message phase)", "ns/hop", figure_kind::time_ns, better::lower}},
      .memory_per_unit = true,
      .unit = "hop",
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units")); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(ring, make_ring);

}  // namespace cmbench
