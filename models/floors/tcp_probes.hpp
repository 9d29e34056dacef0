// The loopback TCP floors: an 8-byte request written over one connected TCP socket with
// TCP_NODELAY to a server in another process and echoed back, with a minimal blocking server and
// client (tcp_round_trip) and a minimal Asio one (asio_tcp_round_trip). They are what a remote
// call costs at the least on this machine, the floors the distributed workloads (issue 13) are
// read against. The built-in probe table (probes.cpp) lists them; the tests call the functions
// below directly to give them a port or make the server stop early.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "models/floors/probe_support.hpp"

namespace cmbench::floors::tcp {

// How one volley is set up. The server always listens on 127.0.0.1, never another address.
struct setup {
  std::uint16_t port = 0;  // 0: the OS picks a free one
  // Requests the server answers before it closes the connection and exits (the untimed first
  // exchange counts): a test's way to have the server go away mid-volley.
  std::uint64_t answers = std::numeric_limits<std::uint64_t>::max();
  placement where = placement::any;  // where the client (the caller) and the server process run
};

// n timed round trips (after one untimed exchange: the server has accepted and answered once),
// returning their nanoseconds and, with `each`, appending each one's. The server process is reaped
// and every descriptor closed before they return or throw; a failed call, a server that closes the
// connection or dies, or a wrong echo throws std::runtime_error with the reason.
std::int64_t blocking_round_trip(const setup& s, std::uint64_t n, std::vector<std::uint32_t>* each);
std::int64_t asio_round_trip(const setup& s, std::uint64_t n, std::vector<std::uint32_t>* each);

// The probes' functions, with the default setup.
inline std::int64_t blocking_round_trip_on(placement where, std::uint64_t n, std::vector<std::uint32_t>* each) {
  return blocking_round_trip({.where = where}, n, each);
}
inline std::int64_t asio_round_trip_default(std::uint64_t n, std::vector<std::uint32_t>* each) {
  return asio_round_trip({}, n, each);
}

}  // namespace cmbench::floors::tcp
