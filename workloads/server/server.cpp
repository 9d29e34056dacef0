// server: request/response under open-loop load. One node serves on model M (its serve job, the
// same one scatter's nodes run); the coordinator is the load generator of load_generator.hpp, the
// same code for every model, so rows differ only by the server.
//
// A trial first measures the generator's own capacity against a trivial echo server, then warms
// every connection up with one request per slot closed loop (their answers are the checksum), then
// either offers one rate (`rate` > 0) for `duration_ms`, or (`rate` = 0) searches the saturation
// rate: steps of `duration_ms` at 25, 100, 400, ... requests per second until one fails, then
// four bisections between the last that passed and the first that failed. A step passes when no
// request failed or went unsent, the rate achieved is within `tolerance_pct` of the offered one,
// and the p99 latency (from each request's due time) is under `p99_limit_ms`. The saturation is
// the highest rate achieved by a passing step; the search then measures the p99 at 50% and 90% of
// it, and the row's latency histogram is the 90% step's.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "models/floors/probes.hpp"
#include "workloads/kernels.hpp"
#include "workloads/remote_setup.hpp"
#include "workloads/server/load_generator.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

using namespace std::chrono_literals;

// Distinct requests: request id i is slot i % slots's task, so its answer is known in advance.
constexpr std::uint32_t slots = 1024;
constexpr double search_from_rps = 25;
constexpr double search_factor = 4;
constexpr int bisections = 4;
constexpr double search_to_rps = 10'000'000;
// The generator's capacity is measured for twice a step, at most this long, per trial.
constexpr auto capacity_time = 100ms;
// A saturation this close to the generator's own capacity is the generator's, not the server's.
constexpr double generator_bound_share = 0.9;

void slot_payload(std::uint64_t slot, std::uint8_t* out, std::uint32_t bytes) {
  for (std::uint32_t i = 0; i < bytes; i += 8) {
    const std::uint64_t word = kernels::mix64(slot * 0x9e3779b97f4a7c15ull + i + 1);
    std::memcpy(out + i, &word, std::min<std::uint32_t>(8, bytes - i));
  }
}

// What the server computes for request `id`: compute_us of the shared kernel for its slot,
// folded with the payload.
std::uint64_t request_value(std::uint64_t id, std::uint32_t compute_us, const std::uint8_t* payload,
                            std::uint32_t bytes) {
  std::uint64_t h = kernels::compute_round(id % slots, 1, std::uint64_t{compute_us} * kernels::numbers_per_us);
  for (std::uint32_t i = 0; i < bytes; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, payload + i, std::min<std::uint32_t>(8, bytes - i));
    h = kernels::mix64(h ^ word);
  }
  return h;
}

struct step_figures {
  double offered = 0;
  server::step_result result;
  bool passed = false;
};

class server_run final : public prepared_run {
 public:
  explicit server_run(const param_values& p)
      : rate_(static_cast<double>(p.at("rate"))),
        duration_(std::chrono::milliseconds(p.at("duration_ms"))),
        p99_limit_(std::chrono::milliseconds(p.at("p99_limit_ms"))),
        tolerance_(static_cast<double>(p.at("tolerance_pct")) / 100.0),
        payloads_(std::size_t{slots} * static_cast<std::size_t>(p.at("payload_bytes"))),
        expected_(slots) {
    const remote_setup& remote = current_remote_setup();
    if (remote.nodes.size() != static_cast<std::size_t>(p.at("nodes"))) {
      throw std::runtime_error("server needs " + std::to_string(p.at("nodes")) + " serving nodes, the trial was given " +
                               std::to_string(remote.nodes.size()));
    }
    const auto bytes = static_cast<std::uint32_t>(p.at("payload_bytes"));
    const auto compute_us = static_cast<std::uint32_t>(p.at("compute_us"));
    for (std::uint32_t s = 0; s < slots; ++s) {
      slot_payload(s, payloads_.data() + std::size_t{s} * bytes, bytes);
      expected_[s] = request_value(s, compute_us, payloads_.data() + std::size_t{s} * bytes, bytes);
    }
    setup_.servers = remote.nodes;
    setup_.token = remote.token;
    setup_.connections = static_cast<unsigned>(p.at("connections"));
    setup_.threads = static_cast<unsigned>(p.at("generator_threads"));
    setup_.compute_us = compute_us;
    setup_.wait_ms = static_cast<std::uint32_t>(p.at("wait_ms"));
    setup_.payload_bytes = bytes;
    setup_.slots = slots;
    setup_.payloads = payloads_.data();
    setup_.expected = expected_.data();
    setup_.counters = &counters_;
    setup_.deadline = remote.deadline;
    // Before the measured region: the generator against an echo server, on this machine, now.
    capacity_rps_ = server::echo_capacity_rps(setup_.connections, setup_.threads, bytes,
                                              std::clamp<std::chrono::nanoseconds>(2 * duration_, 20ms, capacity_time));
  }

  // The coordinator makes no units of its own: the generator's loops are its threads.
  model_config config() const override { return {1, 0}; }

  std::uint64_t run(model_instance& /*generator's side runs no model*/) override {
    server::load_generator generator(setup_);
    // Closed loop, as fast as the server answers (a slow one takes long: no deadline but the trial's).
    const server::step_result warm = generator.closed_loop(0, slots, until_deadline());
    errors_ += warm.errors;
    note_wrong(warm);
    if (warm.completed + warm.wrong != slots) {
      throw std::runtime_error("the warm-up got " + std::to_string(warm.completed + warm.wrong) + " of " +
                               std::to_string(slots) + " answers: " + warm.first_error);
    }
    next_id_ = slots;
    if (rate_ > 0) {
      shown_ = step(generator, rate_);
    } else {
      search(generator);
    }
    // Every value received, right or wrong: a wrong one makes the checksum differ too.
    return warm.received_sum;
  }

  run_observations observe() const override {
    run_observations seen;
    seen.metrics = {{"coordinator_connections", static_cast<double>(counters_.connections.load())},
                    {"coordinator_bytes_sent", static_cast<double>(counters_.bytes_sent.load())},
                    {"coordinator_bytes_received", static_cast<double>(counters_.bytes_received.load())},
                    {"generator_capacity_rps", capacity_rps_},
                    {"steps", static_cast<double>(steps_)},
                    {"errors", static_cast<double>(errors_)},
                    {"wrong_answers", static_cast<double>(wrong_)}};
    if (shown_) {
      const server::step_result& r = shown_->result;
      seen.metrics["offered_rps"] = shown_->offered;
      seen.metrics["achieved_rps"] = r.achieved_rps();
      seen.metrics["kept_up"] = shown_->passed ? 1 : 0;
      seen.metrics["unsent"] = static_cast<double>(r.unsent);
      seen.metrics["step_errors"] = static_cast<double>(r.errors);
      if (r.service.count() > 0) seen.metrics["service_p99_ns"] = static_cast<double>(r.service.percentile(99));
      if (r.send_lag.count() > 0) seen.metrics["send_lag_p99_ns"] = static_cast<double>(r.send_lag.percentile(99));
      seen.latency = &r.latency;
    }
    if (shown_ && shown_->result.service.count() > 0) {
      // What K connections with one request each can carry at the shown step's service time: a
      // saturation near it is the connections' limit (give more), not the server's.
      seen.metrics["connection_limit_rps"] =
          static_cast<double>(setup_.connections) * 1e9 / shown_->result.service.mean();
    }
    if (rate_ == 0) {
      seen.metrics["saturation_rps"] = saturation_rps_;
      seen.metrics["achieved_rps"] = saturation_rps_;  // 0 when no rate passed
      for (const auto& [name, s] : {std::pair{"p99_at_50pct_ns", &at_half_}, {"p99_at_90pct_ns", &at_ninety_}}) {
        if (*s && s->value().result.latency.count() > 0) {
          seen.metrics[name] = static_cast<double>(s->value().result.latency.percentile(99));
        }
      }
      seen.metrics["generator_bound"] = saturation_rps_ >= generator_bound_share * capacity_rps_ ? 1 : 0;
    } else if (shown_) {
      // Offered at or near what the generator can send at all: whatever was achieved, the generator
      // may be what fell short.
      seen.metrics["generator_bound"] = shown_->offered >= generator_bound_share * capacity_rps_ ? 1 : 0;
    }
    return seen;
  }

  // Every answer was the expected value (the checksum covers the warm-up's; the generator checked
  // every later one), and a search found a rate that passed.
  std::string verify(const model_info& /*model*/, std::map<std::string, double>& /*metrics*/) const override {
    if (wrong_ > 0) return std::to_string(wrong_) + " wrong answers: " + first_wrong_;
    // A server slower than the first step is a finding (saturation_rps 0); one whose requests
    // failed even then is broken.
    if (rate_ == 0 && saturation_rps_ <= 0 && errors_ > 0) {
      return "no step passed, not even " + std::to_string(static_cast<int>(search_from_rps)) +
             " requests per second: " + why_failed_;
    }
    return {};
  }

 private:
  step_figures step(server::load_generator& generator, double rate) {
    step_figures s;
    s.offered = rate;
    // Every answer is waited for (at most K are due, one per connection), up to the trial's
    // deadline: an answer dropped unread would leave the wire's two counts apart.
    s.result = generator.open_loop(rate, duration_, p99_limit_, until_deadline(), next_id_);
    if (s.result.expired) {
      throw std::runtime_error("no answer before the trial's deadline at " + std::to_string(static_cast<long>(rate)) +
                               " requests/s: " + s.result.first_error);
    }
    next_id_ += s.result.scheduled;
    ++steps_;
    errors_ += s.result.errors;
    note_wrong(s.result);
    const server::step_result& r = s.result;
    const auto p99 = r.latency.count() > 0 ? r.latency.percentile(99) : 0;
    s.passed = r.errors == 0 && r.unsent == 0 && r.achieved_rps() >= (1 - tolerance_) * rate &&
               std::chrono::nanoseconds(p99) <= p99_limit_;
    if (!s.passed && why_failed_.empty()) {
      why_failed_ = "at " + std::to_string(static_cast<long>(rate)) + "/s: " + std::to_string(r.completed) + " of " +
                    std::to_string(r.scheduled) + " answered, " + std::to_string(r.errors) + " errors, " +
                    std::to_string(r.unsent) + " unsent, " + std::to_string(static_cast<long>(r.achieved_rps())) +
                    "/s achieved, p99 " + std::to_string(p99 / 1000) + " us" +
                    (r.first_error.empty() ? "" : " (" + r.first_error + ")");
    }
    return s;
  }

  void note_wrong(const server::step_result& r) {
    wrong_ += r.wrong;
    if (first_wrong_.empty()) first_wrong_ = r.first_wrong;
  }

  static std::chrono::nanoseconds until_deadline() {
    return current_remote_setup().deadline - std::chrono::steady_clock::now();
  }

  void search(server::load_generator& generator) {
    std::optional<step_figures> best;
    double failed_at = 0;
    for (double rate = search_from_rps; rate <= search_to_rps; rate *= search_factor) {
      step_figures s = step(generator, rate);
      if (!s.passed) {
        failed_at = rate;
        if (!best) shown_ = std::move(s);  // not even the first rate: the row shows how it failed
        break;
      }
      best = std::move(s);
    }
    if (!best) return;
    if (failed_at > 0) {
      double low = best->offered, high = failed_at;
      for (int b = 0; b < bisections; ++b) {
        const double middle = std::sqrt(low * high);
        step_figures s = step(generator, middle);
        if (s.passed) {
          low = middle;
          if (s.result.achieved_rps() > best->result.achieved_rps()) best = std::move(s);
        } else {
          high = middle;
        }
      }
    }
    saturation_rps_ = best->result.achieved_rps();
    at_half_ = step(generator, 0.5 * saturation_rps_);
    at_ninety_ = step(generator, 0.9 * saturation_rps_);
    shown_ = *at_ninety_;
  }

  double rate_;
  std::chrono::nanoseconds duration_;
  std::chrono::nanoseconds p99_limit_;
  double tolerance_;
  std::vector<std::uint8_t> payloads_;
  std::vector<std::uint64_t> expected_;
  remote_counters counters_;
  server::generator_setup setup_;
  double capacity_rps_ = 0;
  std::uint64_t next_id_ = 0;
  std::uint64_t steps_ = 0, errors_ = 0, wrong_ = 0;
  std::string first_wrong_, why_failed_;
  double saturation_rps_ = 0;
  std::optional<step_figures> shown_, at_half_, at_ninety_;
};

workload_entry make_server() {
  return workload_entry{
      .name = "server",
      .description = "one node serves requests under open-loop load from the same Asio load generator for every model",
      .measures = "the saturation rate (requests/s within tolerance, p99 under its limit), and latency from each "
                  "request's due time; the server's CPU, memory and connections",
      .params = {{"rate", "offered requests per second (0: search the saturation rate)", 0, 10'000'000, 0, 0, 0},
                 {"connections", "K: the generator's connections, one request at a time on each", 1, 20'000, 8, 32,
                  256},
                 {"compute_us", "the shared kernel the server runs per request, microseconds", 0, 1'000'000, 20, 20,
                  20},
                 {"wait_ms", "the downstream wait the server does per request before computing, milliseconds", 0,
                  60'000, 0, 0, 0},
                 {"payload_bytes", "bytes of payload in every request", 0, 64 * 1024, 64, 64, 64},
                 {"duration_ms", "how long each rate is offered", 10, 600'000, 20, 200, 2000},
                 {"p99_limit_ms", "a rate passes only with its p99 latency under this", 1, 60'000, 10, 10, 10},
                 {"tolerance_pct", "a rate passes only if the achieved rate is within this of it", 1, 50, 10, 10, 10},
                 {"generator_threads", "the load generator's event loops, one thread each", 1, 64, 1, 1, 1},
                 {"nodes", "servers (nodes) the connections are spread over", 1, 1024, 1, 1, 1},
                 workers_param(8, 32, 32)},
      .validate = [](const param_values& p) {
        if (p.at("p99_limit_ms") * 1000 <= p.at("wait_ms") * 1000 + p.at("compute_us")) {
          throw std::invalid_argument("server: p99_limit_ms (" + std::to_string(p.at("p99_limit_ms")) +
                                      ") must exceed each request's own wait and compute (wait_ms " +
                                      std::to_string(p.at("wait_ms")) + ", compute_us " +
                                      std::to_string(p.at("compute_us")) + "), or no rate can pass");
        }
      },
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<server_run>(p);
      },
      // The warm-up's answers: every slot's value once.
      .reference = [](const param_values& p) {
        const auto bytes = static_cast<std::uint32_t>(p.at("payload_bytes"));
        std::vector<std::uint8_t> payload(bytes);
        std::uint64_t sum = 0;
        for (std::uint32_t s = 0; s < slots; ++s) {
          slot_payload(s, payload.data(), bytes);
          sum += request_value(s, static_cast<std::uint32_t>(p.at("compute_us")), payload.data(), bytes);
        }
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("connections")); },
      .cost = [](const param_values& p, const model_info& /*model*/, unsigned /*cpus*/) {
        const double step_s = static_cast<double>(p.at("duration_ms")) * 1e-3;
        const double steps = p.at("rate") > 0 ? 1.0 : 4.0 + bisections;
        return cost_estimate{steps * step_s, slots * static_cast<double>(p.at("compute_us")) * 1e-6};
      },
      .metrics = [](const param_values& /*p*/, const trial_figures& f) {
        std::map<std::string, double> m;
        const auto cpu = f.observed.find("nodes_cpu_seconds"), requests = f.observed.find("nodes_requests");
        if (cpu != f.observed.end() && requests != f.observed.end() && requests->second > 0) {
          m["server_cpu_us_per_request"] = cpu->second * 1e6 / requests->second;
        }
        return m;
      },
      .order = 110,
      .figures = {{"achieved_rps", "requests answered per second (rate 0: the saturation rate)", "req/s",
                   figure_kind::rate, better::higher},
                  {"latency_p99_ns", "latency from the due time, 99th percentile (rate 0: at 90% of saturation)",
                   "p99", figure_kind::time_ns, better::lower}},
      .read_against_floor = true,
      .unit = "connection",
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("connections")); },
      .floor_probe = "tcp_round_trip",
      .work_in_latency_ns = [](const param_values& p) {
        return static_cast<double>(p.at("wait_ms")) * 1e6 + static_cast<double>(p.at("compute_us")) * 1e3;
      },
      .remote = true,
      .node_value = &request_value,
      .own_coordinator = "an open-loop Asio load generator, the same for every model",
      .headline_bound = {"generator_bound",
                         "the load generator, not the server, limited the rate (at 90% or more of its own capacity "
                         "against an echo server, generator_capacity_rps)"},
  };
}

// The generator's floor, in every report's floors: a request of the load generator answered by a
// trivial echo server, closed loop on the presets' default connections, one thread each side.
std::int64_t generator_echo_requests(std::uint64_t n, std::vector<std::uint32_t>* /*each*/) {
  return server::echo_requests_ns(32, 1, 64, n);
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(server, make_server);
CMBENCH_REGISTER_PROBE(server_generator_echo,
                       "a request of the server workload's load generator (32 connections, one loop) answered by a "
                       "trivial Asio echo server (one loop), closed loop: the generator's own cost",
                       "request", generator_echo_requests);

}  // namespace cmbench
