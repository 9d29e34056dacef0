// The load generator every model's server is measured with: the same code whatever model serves,
// so the rows differ only by the server.
//
// K connections spread over T Asio event loops (one thread each), each connection carrying one
// request at a time (as wrk2's connections do). Open loop: request i of a step is due at
// start + i / rate and goes out on connection i % K as soon as it is due and that connection is
// free. Each request is timed from when it was *due*, not from when it went out, so a server that
// stalls cannot hide the requests queued behind the stall: the coordinated-omission error wrk2
// corrects. The time from the actual send (what a closed-loop client would report) is kept too,
// so the difference shows.
//
// Requests are scatter's task requests (models/remote.hpp): request id i carries the payload of
// slot i % slots, and its answer must carry expected[i % slots], so every answer is checked
// without recomputing it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/remote.hpp"
#include "workloads/latency_histogram.hpp"

namespace cmbench::server {

struct generator_setup {
  std::vector<node_address> servers;  // connection c talks to servers[c % servers.size()]
  std::string token;
  unsigned connections = 1;  // K
  unsigned threads = 1;      // T event loops, one thread each
  std::uint32_t compute_us = 0;
  std::uint32_t wait_ms = 0;
  std::uint32_t payload_bytes = 0;
  std::uint32_t slots = 1;
  const std::uint8_t* payloads = nullptr;   // slots * payload_bytes bytes: slot s's payload at s * payload_bytes
  const std::uint64_t* expected = nullptr;  // slots values; null: any value is right (the echo server's)
  remote_counters* counters = nullptr;      // every connection, byte and handshake, counted as the models count them
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// One step of load.
struct step_result {
  double offered_rps = 0;       // the schedule's rate (0: closed loop)
  std::uint64_t scheduled = 0;  // requests due in the step
  std::uint64_t completed = 0;  // answered with the right value
  std::uint64_t unsent = 0;     // not yet sent at the step's cutoff: never sent, timed as late as the cutoff
  std::uint64_t errors = 0;     // failed: a wrong answer, a lost connection, or no answer by the drain deadline
  std::uint64_t wrong = 0;      // of the errors, wrong answers: a wrong value, another request's id, an error frame
  std::string first_error;      // what the first error was
  std::string first_wrong;      // what the first wrong answer was
  bool expired = false;         // the drain deadline passed with answers still due
  double elapsed_seconds = 0;   // from the step's start to its last answer
  double answering_seconds = 0; // from its first answer to its last
  std::uint64_t value_sum = 0;     // wrapping sum of the completed answers' values
  std::uint64_t received_sum = 0;  // wrapping sum of every value received for its own request, right or not
  latency_histogram latency;    // from each request's due time to its answer (unsent ones: to the cutoff)
  latency_histogram service;    // from each request's actual send to its answer
  latency_histogram send_lag;   // how long after max(due, its connection free) each request went out

  // Answers per second over the span in which they came (n answers span n - 1 gaps), so a long
  // round trip (a slow link) does not count against a short step; one answer: over the step.
  // Never more than the schedule allows: answers that came bunched (a server catching up after a
  // stall) span at least the schedule's gaps.
  double achieved_rps() const {
    double span = answering_seconds;
    if (offered_rps > 0 && completed > 1) span = std::max(span, static_cast<double>(completed - 1) / offered_rps);
    if (completed > 1 && span > 0) return static_cast<double>(completed - 1) / span;
    return elapsed_seconds > 0 ? static_cast<double>(completed) / elapsed_seconds : 0.0;
  }
};

class load_generator {
 public:
  // Opens and handshakes every connection (blocking). Throws std::runtime_error naming the server
  // that could not be reached or refused.
  explicit load_generator(generator_setup setup);
  ~load_generator();
  load_generator(const load_generator&) = delete;
  load_generator& operator=(const load_generator&) = delete;

  // Open loop: `rate` requests per second for `duration`, ids first_id, first_id + 1, ... A
  // request still unsent `cutoff_after` past the end of the schedule is never sent; answers are
  // waited for at most `drain` past the cutoff (then the connection is dropped: an error, and it
  // is opened again before the next step). Connections lost in an earlier step are reopened first.
  step_result open_loop(double rate, std::chrono::nanoseconds duration, std::chrono::nanoseconds cutoff_after,
                        std::chrono::nanoseconds drain, std::uint64_t first_id);
  // Closed loop: ids first_id .. first_id + count - 1, every connection sending its next request
  // as soon as its last is answered (all are due at the start).
  step_result closed_loop(std::uint64_t first_id, std::uint64_t count, std::chrono::nanoseconds drain);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// The generator's own capacity on this machine: the requests per second it completes, closed loop
// over `connections` connections on `threads` threads, against a trivial Asio echo server (one
// loop, one thread, in this process: it answers every request at once), for about `duration`.
double echo_capacity_rps(unsigned connections, unsigned threads, std::uint32_t payload_bytes,
                         std::chrono::nanoseconds duration);

// The same run as a floor: `count` requests closed loop against the echo server, in nanoseconds
// (connections opened before the clock starts).
std::int64_t echo_requests_ns(unsigned connections, unsigned threads, std::uint32_t payload_bytes,
                              std::uint64_t count);

}  // namespace cmbench::server
