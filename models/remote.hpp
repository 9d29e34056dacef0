// The distributed half of the backend contract: remote calls over TCP, both sides.
//
// A scatter job is the coordinator's side: `tasks` remote calls sent to the nodes, at most
// `in_flight` of them outstanding at once, their results gathered. A serve job is a node's side:
// accept connections on a listening socket and answer every task request on it, until told to
// stop. Each model does both with its own unit of concurrency and its own sockets (blocking
// sockets in threads and processes, Asio sockets on event loops), speaking the wire protocol of
// models/wire/frame.hpp, so the workload never sees a socket and the model never sees the
// workload's logic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cmbench {

// What a side of a remote job did on the wire, counted by the model as it does it. It lives in
// memory every process of the model shares (MAP_SHARED, zeroed by the caller), so a process per
// call or per connection counts into the same words.
struct remote_counters {
  std::atomic<std::uint64_t> connections{0};     // TCP connections opened (coordinator) or accepted (node)
  std::atomic<std::uint64_t> bytes_sent{0};      // every byte written to a socket, frames and handshakes
  std::atomic<std::uint64_t> bytes_received{0};  // every byte read from a socket
  std::atomic<std::uint64_t> requests{0};        // node: tasks answered
  std::atomic<std::uint64_t> refused{0};         // node: connections refused at the handshake
  std::atomic<std::uint64_t> in_flight{0};       // node: requests being served now
  std::atomic<std::uint64_t> peak_in_flight{0};  // node: the most served at once

  void add_sent(std::uint64_t n) { bytes_sent.fetch_add(n, std::memory_order_relaxed); }
  void add_received(std::uint64_t n) { bytes_received.fetch_add(n, std::memory_order_relaxed); }
  void add_connection() { connections.fetch_add(1, std::memory_order_relaxed); }
  // A node's request starts and ends being served (the gauge of what the node holds at once).
  void request_started() {
    const std::uint64_t now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint64_t peak = peak_in_flight.load(std::memory_order_relaxed);
    while (now > peak && !peak_in_flight.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }
  void request_finished() {
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    requests.fetch_add(1, std::memory_order_relaxed);
  }
};

struct node_address {
  std::string host;  // numeric address or name
  std::uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// The coordinator's side. Task t's request is task_request{id = t, compute_us, wait_ms, payload}
// with payload = payload_of(t) (payload_size_of(t) bytes, or payload_bytes for every task when
// payload_size_of is null), sent to node t % nodes: every model routes so, whatever its units and
// connections, so a workload can address a task to a node (mapreduce's shuffle sends each block to
// the node that reduces it; tests/remote_conformance_test.cpp checks it). Before a call's
// request is written the unit that makes it calls call_started(t); once its result is read, it
// calls call_finished(t, value), in that same unit (thread, process or coroutine). The job's
// result is the wrapping sum of every value. A connection is opened with the handshake
// (wire::client_handshake, role coordinator, `token`) and carries one call at a time.
//
// Every wait on a node ends by `deadline`: a node that closes a connection, answers with an
// error frame, sends a bad frame, or does not answer in time makes run_scatter throw a
// std::runtime_error naming the node and the task (never hang, never retry elsewhere).
struct scatter_job {
  std::uint64_t tasks = 0;
  std::uint32_t in_flight = 1;  // C: the most calls outstanding at once, over all nodes
  std::uint32_t compute_us = 0;
  std::uint32_t wait_ms = 0;
  std::uint32_t payload_bytes = 0;
  std::vector<node_address> nodes;  // task t goes to nodes[t % nodes.size()]
  std::string token;
  std::chrono::steady_clock::time_point deadline;
  remote_counters* counters = nullptr;  // shared memory
  void (*payload_of)(const void* context, std::uint64_t task, std::uint8_t* out, std::uint32_t bytes) = nullptr;
  // Task t's payload size, when tasks differ (at most wire::max_payload less the request's 20 bytes);
  // null: payload_bytes for every task.
  std::uint32_t (*payload_size_of)(const void* context, std::uint64_t task) = nullptr;
  void (*call_started)(const void* context, std::uint64_t task) = nullptr;
  void (*call_finished)(const void* context, std::uint64_t task, std::uint64_t value) = nullptr;
  const void* context = nullptr;  // shared memory: every process of the model writes into it
};

// A node's side. Accept connections on `listen_fd` (bound, listening, non-blocking; owned by the
// caller, which may have forked the model's processes to share it); on each, first the handshake
// (wire::serve_handshake or the same checks asynchronously: role coordinator, `token`, a client
// that says nothing within wire::default_handshake_timeout is refused), then answer each
// task_request in order: wait `wait_ms` with the model's natural wait (a blocking sleep in a
// thread or a process, a timer on an event loop), then value = task_value(id, compute_us,
// payload), replied as task_result{id, value}. A bad frame after the handshake gets an error
// frame (best effort) and the connection is closed. A refused or dropped connection is logged
// with log(line) and never stops the node serving everyone else.
//
// Returns when `stop_fd` becomes readable (a byte written, or its other end closed): stop accepting, close every
// connection, end every unit the model made.
// How errors and logs name a node of a scatter job: "node 1 (127.0.0.1:5555)", counted from 1 as
// the harness and the report's node1_... figures count them.
inline std::string node_name(const scatter_job& job, std::size_t node) {
  return "node " + std::to_string(node + 1) + " (" + job.nodes.at(node).text() + ")";
}

struct serve_job {
  int listen_fd = -1;
  int stop_fd = -1;
  std::string token;
  remote_counters* counters = nullptr;  // shared memory
  std::uint64_t (*task_value)(const void* context, std::uint64_t task, std::uint32_t compute_us,
                              const std::uint8_t* payload, std::uint32_t bytes) = nullptr;
  void (*log)(const void* context, std::string_view line) = nullptr;
  const void* context = nullptr;
};

}  // namespace cmbench
