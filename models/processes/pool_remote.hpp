// processes/pool's remote jobs, the workers' side.
//
// Coordinator (scatter): the caller pushes one descriptor per lane, min(C, W, tasks) of them; the
// worker that pops a lane claims call after call from a shared counter until none is left, each
// on the worker's own connection to the call's node (task t -> node t % nodes, opened at the
// lane's first call there, closed when the lane ends), so at most min(C, W) calls are in flight.
// The first failure is written into the shared remote_state (kind and message) and stops every
// lane claiming more; the caller turns it into the exception.
//
// Node (serve): the caller pushes one descriptor per worker (its index); each worker runs its own
// poll loop over the listening socket it inherited at fork (shared by every worker), the stop
// descriptor and its own connections, serving one request to its end at a time, until stop_fd is
// readable; so the node holds W requests at once. Connections are spread over the workers as
// nginx spreads them: a worker accepts only while it holds no more connections than the least
// loaded worker (counts in the job area); a more loaded one that sees a connection waiting leaves
// it to the others for accept_defer, and takes it if it is still waiting then.
//
// The job's node addresses and token (a vector and a string in the caller's heap, which workers
// forked earlier do not have) travel in the job area, written by the caller with pwrite().
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "models/model.hpp"
#include "models/processes/shared_memory.hpp"
#include "models/system_limits.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench::detail::shm_pool {

// A scatter job's plain fields (its nodes and token are in the job area).
struct scatter_shape {
  std::uint64_t tasks = 0;
  std::uint32_t compute_us = 0;
  std::uint32_t wait_ms = 0;
  std::uint32_t payload_bytes = 0;
  std::chrono::steady_clock::time_point deadline;
  remote_counters* counters = nullptr;
  void (*payload_of)(const void*, std::uint64_t, std::uint8_t*, std::uint32_t) = nullptr;
  std::uint32_t (*payload_size_of)(const void*, std::uint64_t) = nullptr;
  void (*call_started)(const void*, std::uint64_t) = nullptr;
  void (*call_finished)(const void*, std::uint64_t, std::uint64_t) = nullptr;
  const void* context = nullptr;
};

// A serve job's plain fields. Its job area: each serving worker's connection count, each one's
// pid (so the caller, which reads it with pread(), knows which index a dead worker served), then
// the token.
struct serve_shape {
  int listen_fd = -1;
  int stop_fd = -1;
  remote_counters* counters = nullptr;
  std::uint64_t (*task_value)(const void*, std::uint64_t, std::uint32_t, const std::uint8_t*, std::uint32_t) = nullptr;
  void (*log)(const void*, std::string_view) = nullptr;
  const void* context = nullptr;
  std::uint32_t workers = 0;
  std::size_t pids_offset = 0;   // where the pids start in the job area
  std::size_t token_offset = 0;  // where the token starts
};

inline scatter_shape shape_scatter(const scatter_job& job) {
  return {job.tasks, job.compute_us, job.wait_ms, job.payload_bytes, job.deadline, job.counters,
          job.payload_of, job.payload_size_of, job.call_started, job.call_finished, job.context};
}

inline serve_shape shape_serve(const serve_job& job, std::uint32_t workers) {
  const std::size_t slots = round_up(workers * sizeof(std::uint32_t), cache_line);
  return {job.listen_fd, job.stop_fd, job.counters, job.task_value, job.log, job.context, workers, slots, 2 * slots};
}

// A remote job's progress and first failure, in the control block.
struct remote_state {
  enum failure_kind : std::uint32_t { none, failed, limit };

  alignas(cache_line) std::atomic<std::uint64_t> next_task{0};  // scatter: the next call to claim
  alignas(cache_line) std::atomic<std::uint32_t> running{0};    // lanes or serving workers not yet done
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint32_t> stop{0};  // a failure: claim no more calls
  std::atomic<std::uint32_t> kind{none};
  std::atomic<std::uint32_t> written{0};  // `message` is complete
  char message[1024] = {};

  // By the caller, before the job's first push.
  void reset(std::uint32_t units) noexcept {
    next_task.store(0, std::memory_order_relaxed);
    running.store(units, std::memory_order_relaxed);
    sum.store(0, std::memory_order_relaxed);
    stop.store(0, std::memory_order_relaxed);
    kind.store(none, std::memory_order_relaxed);
    written.store(0, std::memory_order_relaxed);
  }

  // By a worker: the first failure wins.
  void record(failure_kind k, std::string_view what) noexcept {
    stop.store(1, std::memory_order_relaxed);
    std::uint32_t expected = none;
    if (!kind.compare_exchange_strong(expected, k)) return;
    const std::size_t n = std::min(what.size(), sizeof message - 1);
    std::memcpy(message, what.data(), n);
    message[n] = '\0';
    written.store(1, std::memory_order_release);
  }
  void record(const std::exception& e, std::string_view context) noexcept {
    try {
      if (out_of_descriptors(e)) {
        record(limit, std::string(context) + e.what() + " (" + describe_descriptor_limit(e) + ")");
      } else {
        record(failed, std::string(context) + e.what());
      }
    } catch (...) {
      record(failed, e.what());
    }
  }
};

// ---- the job area's bytes: numbers in this machine's order, a text as a u32 length and its bytes ----

template <class T>
void put_raw(std::vector<std::byte>& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

inline void put_text(std::vector<std::byte>& out, std::string_view text) {
  put_raw(out, static_cast<std::uint32_t>(text.size()));
  const auto* t = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), t, t + text.size());
}

template <class T>
T get_raw(const std::byte*& at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  at += sizeof value;
  return value;
}

inline std::string get_text(const std::byte*& at) {
  const auto n = get_raw<std::uint32_t>(at);
  std::string text(reinterpret_cast<const char*>(at), n);
  at += n;
  return text;
}

// The token, the node count, and each node's port and host.
inline std::vector<std::byte> encode_scatter_area(const scatter_job& job) {
  std::vector<std::byte> out;
  put_text(out, job.token);
  put_raw(out, static_cast<std::uint32_t>(job.nodes.size()));
  for (const node_address& node : job.nodes) {
    put_raw(out, node.port);
    put_text(out, node.host);
  }
  return out;
}

inline std::vector<std::byte> encode_serve_area(const serve_job& job) {
  std::vector<std::byte> out;
  put_text(out, job.token);
  return out;
}

// The scatter job again, in a worker: plain fields from the shape, nodes and token from the area.
inline scatter_job decode_scatter(const scatter_shape& shape, const std::byte* area) {
  scatter_job job;
  job.tasks = shape.tasks;
  job.compute_us = shape.compute_us;
  job.wait_ms = shape.wait_ms;
  job.payload_bytes = shape.payload_bytes;
  job.deadline = shape.deadline;
  job.counters = shape.counters;
  job.payload_of = shape.payload_of;
  job.payload_size_of = shape.payload_size_of;
  job.call_started = shape.call_started;
  job.call_finished = shape.call_finished;
  job.context = shape.context;
  const std::byte* at = area;
  job.token = get_text(at);
  job.nodes.resize(get_raw<std::uint32_t>(at));
  for (node_address& node : job.nodes) {
    node.port = get_raw<std::uint16_t>(at);
    node.host = get_text(at);
  }
  return job;
}

// One lane of a scatter job: calls claimed one after another until none is left or a lane
// failed. Returns the sum of its values; a failure is recorded in `state`.
inline std::uint64_t run_scatter_lane(const scatter_shape& shape, remote_state& state, const std::byte* area) noexcept {
  std::uint64_t sum = 0;
  try {
    const scatter_job job = decode_scatter(shape, area);
    std::vector<std::optional<wire::call_connection>> connections(job.nodes.size());
    while (state.stop.load(std::memory_order_relaxed) == 0) {
      const std::uint64_t task = state.next_task.fetch_add(1, std::memory_order_relaxed);
      if (task >= job.tasks) break;
      const std::size_t node = task % job.nodes.size();
      if (!connections[node]) connections[node].emplace(job, node);
      sum += connections[node]->call(job, task);
    }
  } catch (const std::exception& e) {
    state.record(e, "");
  }
  return sum;  // the lane's connections are closed by now
}

// How long a worker holding more connections than the least loaded one leaves a waiting
// connection to the others before it takes it itself.
inline constexpr std::chrono::milliseconds accept_defer{50};

// Worker `worker`'s serving loop (see the top of this file), until stop_fd is readable. Then it
// closes its connections and its copies of the listening socket and the stop descriptor.
// A failure of the loop itself (not of a connection) is logged and recorded in `state`.
inline void serve_connections(const serve_shape& shape, remote_state& state, std::uint32_t worker,
                              std::byte* area) noexcept {
  auto* counts = reinterpret_cast<std::atomic<std::uint32_t>*>(area);
  reinterpret_cast<std::atomic<std::int32_t>*>(area + shape.pids_offset)[worker].store(::getpid());
  serve_job job;
  job.listen_fd = shape.listen_fd;
  job.stop_fd = shape.stop_fd;
  job.counters = shape.counters;
  job.task_value = shape.task_value;
  job.log = shape.log;
  job.context = shape.context;
  try {
    const std::byte* at = area + shape.token_offset;
    job.token = get_text(at);
    wire::polled_connections connections;
    std::vector<pollfd> fds;
    std::optional<wire::deadline> deferred;  // a connection seen waiting, left to the less loaded until then
    auto least_loaded = [&] {
      std::uint32_t least = UINT32_MAX;
      for (std::uint32_t w = 0; w < shape.workers; ++w) least = std::min(least, counts[w].load(std::memory_order_relaxed));
      return least;
    };
    for (;;) {
      counts[worker].store(static_cast<std::uint32_t>(connections.size()), std::memory_order_relaxed);
      const bool eligible = connections.size() <= least_loaded();
      if (eligible) deferred.reset();
      bool accepting = eligible;
      if (deferred && wire::clock::now() >= *deferred) {  // still waiting? then it is ours
        accepting = true;
        deferred.reset();
      }
      const bool watch_listener = accepting || !deferred;
      fds.assign({{job.stop_fd, POLLIN, 0}, {watch_listener ? job.listen_fd : -1, POLLIN, 0}});
      const int wake_ms = connections.watch(fds, deferred ? *deferred : wire::clock::time_point::max());
      const int timeout_ms = accepting && !eligible ? 0 : wake_ms;  // a deferred connection: only if it still waits
      if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        throw std::system_error(errno, std::generic_category(), "poll");
      }
      if (fds[0].revents != 0) break;
      connections.serve(job, fds, 2);
      if (fds[1].revents == 0) continue;
      if (!accepting) {
        deferred = wire::clock::now() + accept_defer;
        continue;
      }
      if (wire::unique_fd fd = wire::try_accept_connection(job)) connections.add(std::move(fd));
    }
  } catch (const std::exception& e) {
    const std::string where = "serving worker " + std::to_string(worker) + ": ";
    state.record(e, where);
    if (job.log != nullptr) job.log(job.context, "processes/pool: " + where + e.what());
  }
  counts[worker].store(0, std::memory_order_relaxed);
  // This worker's copies, inherited at fork: the socket must not stay open in an idle worker.
  ::close(shape.listen_fd);
  ::close(shape.stop_fd);
}

}  // namespace cmbench::detail::shm_pool
