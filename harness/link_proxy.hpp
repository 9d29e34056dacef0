// The slow-link proxy: a process of its own, forked by the suite and living for it, that stands
// between the coordinator and the nodes and applies a link's conditions (harness/link.hpp) to every
// connection, in user space (no root, no netem).
//
// For each target address it is given, it listens on a port of its own (one listener per target);
// every connection accepted there gets one connection of its own to the target, so both ends count
// the same connections and the same bytes. Per direction of each connection, every chunk of bytes
// read is delivered no earlier than its arrival + delay + a jitter sample (uniform in [-jitter,
// +jitter], from a fixed seed), and never before the chunk read ahead of it (a TCP stream is never
// reordered). `rate` is the capacity of the link to one target, per direction, shared by every
// connection to it: a chunk of n bytes occupies it for n * 8 / rate seconds (a serialisation
// clock), and its delay starts when it has crossed. Bytes are never lost or altered. When one side
// ends (or resets) its direction, the other side is shut for writing (or closed) once what is
// queued for it has been delivered. A direction holding more than 4 MiB stops being read until it
// drains, so a fast sender cannot grow the proxy's memory without bound.
//
// It is one event loop (epoll, a timerfd for the next delivery) in one process, in its own process
// group (a Ctrl-C at the terminal does not reach it), that dies with the process that forked it
// (PR_SET_PDEATHSIG) or when its control socket closes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/link.hpp"
#include "models/remote.hpp"
#include "models/wire/io.hpp"

namespace cmbench {

// The bytes one direction of a proxied connection may hold (beyond it, its sender is not read until
// it drains): what a clear may have to wait for, at the link's rate.
inline constexpr std::size_t link_queue_limit = std::size_t{4} << 20;

// What the proxy carried for the routes a clear() ended.
struct proxy_totals {
  std::uint64_t connections = 0;        // accepted, each given its own connection to its target
  std::uint64_t failed_connects = 0;    // of those, the ones whose target refused or could not be reached
  std::uint64_t bytes_to_targets = 0;   // read from the clients (all delivered unless `dropped` says not)
  std::uint64_t bytes_from_targets = 0; // read from the targets
  std::uint64_t dropped_bytes = 0;      // queued for a side that had gone (reset or closed) before delivery
  std::uint64_t undrained = 0;          // connections with bytes for their target still queued at the deadline
};

class link_proxy {
 public:
  // Forks the proxy process; its listeners will listen on `listen_host` (loopback by default; the
  // coordinator's host under a launcher, for addresses other machines must reach). Throws
  // std::runtime_error when it cannot start.
  explicit link_proxy(std::string listen_host = "127.0.0.1");
  link_proxy(link_proxy&& other) noexcept;
  link_proxy& operator=(link_proxy&& other) noexcept;
  ~link_proxy() { shut_down(); }  // closes its control socket (it exits), reaps it; killed if it does not exit

  pid_t pid() const { return pid_; }
  const std::string& listen_host() const { return listen_host_; }

  // One new listener per target, in order; returns their addresses, which reach the targets
  // through `conditions` (no conditions: nothing added but the proxy's own cost). A target keeps
  // one link, with its rate shared by every connection to it, until clear(): routing a target
  // again gives another listener on the same link (and must give the same conditions). Any list of
  // addresses the suite hands out (the coordinator's, or nodes' to each other) can be routed so.
  // Throws std::runtime_error naming the target or the proxy's failure.
  std::vector<node_address> route(const std::vector<node_address>& targets, const link_conditions& conditions);

  // Ends every route: stops listening, waits up to `drain` for each connection's bytes towards its
  // target to be delivered and passed on as an end of stream (so the targets count every byte the
  // clients sent), then closes what is left and forgets the links. Returns what they carried.
  proxy_totals clear(std::chrono::milliseconds drain);

 private:
  nlohmann::json ask(const nlohmann::json& order, std::chrono::milliseconds timeout);
  void shut_down() noexcept;

  std::string listen_host_;
  pid_t pid_ = -1;
  wire::unique_fd control_;
  std::string pending_;  // bytes read from the control socket past the last answer
};

// The proxy's own cost on this machine, measured through `proxy` with no conditions against a
// loopback echo server of this process: round trips of a small message directly and through the
// proxy, interleaved (medians of each), and the bytes per second one connection carries through it
// (and directly) with nothing limiting the rate. Throws std::runtime_error when a measurement fails.
struct link_cost {
  int round_trips = 0;
  std::size_t message_bytes = 0;
  double direct_round_trip_ns = 0;       // median
  double proxied_round_trip_ns = 0;      // median
  double proxy_added_round_trip_ns = 0;  // proxied - direct
  double proxy_capacity_bytes_per_second = 0;
  double direct_capacity_bytes_per_second = 0;
};
link_cost measure_link_cost(link_proxy& proxy);

// The report's context.link: the conditions as given and as numbers, and the proxy's measured cost.
nlohmann::ordered_json link_context(const link_conditions& conditions, const link_cost& cost,
                                    const std::string& listen_host);

}  // namespace cmbench
