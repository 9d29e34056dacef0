// pingpong: two units exchange M messages of S bytes each way. Unit 0 sends on channel 0, unit 1
// reads the whole message, answers on channel 1 with a digest of it, and unit 0 times every round
// trip into a log-linear histogram. Measures round-trip latency percentiles of the model's hand-off.
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct pingpong_context {
  std::uint64_t round_trips;
  std::uint32_t bytes;
  latency_histogram latency;  // written by unit 0 only
};

// What unit 1 answers to the message of round r.
std::uint64_t reply_to(std::uint64_t round, std::uint64_t payload) { return kernels::mix64(round ^ (payload << 1)); }

unit_action pingpong_step(void* context, unit_state& s, std::byte* message) {
  auto& c = *static_cast<pingpong_context*>(context);
  if (s.unit == 0) {
    if (s.pc == 1) {  // sent: wait for the answer
      s.pc = 2;
      return {unit_op::receive, 1};
    }
    if (s.pc == 2) {  // the answer arrived: one round trip
      const std::uint64_t now = graph::now_ns();
      c.latency.record(now - s.stamp);
      s.value = kernels::mix64(s.value ^ graph::word(message, 0));
      if (++s.count == c.round_trips) {
        s.result = s.value;
        return {unit_op::finish};
      }
      s.stamp = now;
    } else {
      s.stamp = graph::now_ns();
    }
    graph::set_word(message, 0, s.count);
    graph::fill_payload(message, c.bytes, s.count);
    s.pc = 1;
    return {unit_op::send, 0};
  }
  // Unit 1: receive, answer, until every round trip is done.
  if (s.pc == 1) {
    const std::uint64_t round = graph::word(message, 0);
    graph::set_word(message, 0, reply_to(round, graph::payload_sum(message, c.bytes)));
    s.pc = 2;
    return {unit_op::send, 1};
  }
  if (s.pc == 2 && ++s.count == c.round_trips) return {unit_op::finish};
  s.pc = 1;
  return {unit_op::receive, 0};
}

std::uint64_t reference(std::uint64_t round_trips, std::uint32_t bytes) {
  std::uint64_t value = 0;
  for (std::uint64_t r = 0; r < round_trips; ++r) {
    value = kernels::mix64(value ^ reply_to(r, graph::expected_payload_sum(bytes, r)));
  }
  return value;
}

class pingpong_run final : public graph::graph_run<pingpong_context> {
 public:
  pingpong_run(const param_values& p, std::uint64_t round_trips, std::uint32_t bytes)
      : graph_run(p, graph_job{2, 2, 1, bytes, 0, {}, &pingpong_step, nullptr},
                  pingpong_context{round_trips, bytes, {}}) {}

 protected:
  const latency_histogram* latency() const override { return &context().latency; }
};

workload_entry make_pingpong() {
  return workload_entry{
      .name = "pingpong",
      .description = "two units exchange M messages of S bytes (and the answers): a round trip each",
      .measures = "round-trip latency: p50, p90, p99, p99.9, max, mean",
      .params = {{"messages", "round trips (a message and its answer)", 1, 100'000'000, 2000, 100'000,
                  1'000'000},
                 {"bytes", "bytes of every message (a multiple of 8, at least 16)", 16, 1 << 20, 64, 64, 64},
                 workers_param()},
      .validate = [](const param_values& p) { graph::check_message_bytes("pingpong", p); },
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<pingpong_run>(p, static_cast<std::uint64_t>(p.at("messages")),
                                              static_cast<std::uint32_t>(p.at("bytes")));
      },
      .reference = [](const param_values& p) {
        return reference(static_cast<std::uint64_t>(p.at("messages")), static_cast<std::uint32_t>(p.at("bytes")));
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("messages")); },
      .cost = [](const param_values& p, const model_info&, unsigned) {
        // Two hand-offs of 20 ns per round trip, a byte read in 0.1 ns: below any model.
        const double trips = static_cast<double>(p.at("messages"));
        return cost_estimate{trips * 40e-9, trips * static_cast<double>(p.at("bytes")) * 0.1e-9};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        // The message phase only: creating and joining the two units is reported apart.
        const double trips = static_cast<double>(p.at("messages"));
        const auto phase = f.observed.find("message_ns");
        if (phase == f.observed.end() || phase->second <= 0) return std::map<std::string, double>{};
        return std::map<std::string, double>{{"round_trip_ns_mean", phase->second / trips},
                                             {"round_trips_per_second", trips * 1e9 / phase->second}};
      },
      .order = 50,
      // The message phase only: creating and joining the two units is in create_ns / join_ns.
      .figures = {{"round_trip_ns_mean", "time per round trip (message phase)", "ns/trip", figure_kind::time_ns,
                   better::lower},
                  {"latency_p99_ns", "p99 round trip", "p99 ns", figure_kind::time_ns, better::lower}},
      .read_against_floor = true,
      .unit = "round trip",
      .alive = [](const param_values&) { return std::uint64_t{2}; },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(pingpong, make_pingpong);

}  // namespace cmbench
