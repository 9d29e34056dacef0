// Blocking-socket helpers for a plain-fd client and server speaking the wire protocol: exact
// reads and writes under a deadline, whole frames, TCP listen/connect, and both sides of the
// handshake. Every wait is a poll() bounded by the deadline; EINTR is retried; sends use
// MSG_NOSIGNAL (a closed peer is an error, never SIGPIPE). Nothing here throws on I/O: results
// say what happened. The fds may be blocking or not: every recv/send is MSG_DONTWAIT after poll.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "models/wire/frame.hpp"

namespace cmbench::wire {

using clock = std::chrono::steady_clock;
using deadline = clock::time_point;
inline deadline deadline_in(std::chrono::milliseconds ms) { return clock::now() + ms; }

// How long a server waits for a connection's hello before refusing it (a client that connects
// and says nothing is dropped after this).
inline constexpr std::chrono::milliseconds default_handshake_timeout{5000};

// An owned file descriptor, closed on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1);
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

enum class io_status {
  ok,
  timeout,  // the deadline passed first
  closed,   // the peer closed (end of stream on read; EPIPE/ECONNRESET on write)
  failed,   // any other error (errno in `err`)
};

struct io_result {
  io_status status = io_status::ok;
  int err = 0;                 // errno for `failed` (and `closed` from a reset)
  std::size_t transferred = 0; // bytes moved before the result
  explicit operator bool() const { return status == io_status::ok; }
  std::string describe() const;  // "timed out after 3 of 12 bytes", "closed by peer ...", ...
};

// Reads exactly buf.size() bytes, or fails with why.
io_result read_exact(int fd, std::span<std::uint8_t> buf, deadline until);
// Writes all of buf, or fails with why.
io_result write_all(int fd, byte_view buf, deadline until);

// One frame off a stream: the header first, checked (magic, version, flags, type, length <=
// limit) before the payload is allocated or read; then the payload, decoded.
struct frame_read {
  io_result io;                 // not ok: the stream failed (timeout, closed, error)
  frame_error error = frame_error::none;  // io ok but the frame is bad
  std::string detail;
  message msg;
  bool ok() const { return io.status == io_status::ok && error == frame_error::none; }
  std::string describe() const;  // a log line: "ok hello", "bad magic", "timed out ...", ...
};
frame_read read_frame(int fd, deadline until, std::uint32_t limit = max_payload);
io_result write_frame(int fd, const message& m, deadline until);

// TCP. `host` is a numeric IPv4 or IPv6 address or a name (resolved with getaddrinfo).
struct listener {
  unique_fd fd;
  std::uint16_t port = 0;  // the bound port (the one the OS picked when asked for 0)
};
// Listens on host:port (port 0: the OS picks). Throws std::system_error naming the address.
listener listen_tcp(const std::string& host, std::uint16_t port, int backlog = 128);
// Accepts one connection, waiting until `until`; an empty fd on timeout. Throws
// std::system_error on a failure other than a timeout or an aborted connection.
unique_fd accept_until(int listen_fd, deadline until);
// Connects to host:port before `until`; TCP_NODELAY set. Throws std::system_error (ETIMEDOUT
// when the deadline passes) naming the address.
unique_fd connect_tcp(const std::string& host, std::uint16_t port, deadline until);

// The outcome of a handshake, on either side.
struct handshake_result {
  bool accepted = false;
  refuse_reason reason = refuse_reason::bad_frame;  // when not accepted
  std::string detail;                               // why, for the log
  std::optional<hello> peer_hello;                  // server side: what the client sent
  explicit operator bool() const { return accepted; }
};

// Server side: reads one frame within `timeout`; it must be a hello from `expected_role` with
// this protocol_version and a token equal to `token` (constant time). Answers welcome, or
// refuse with the reason (best effort, within a short time) and returns not accepted: the
// caller then closes the connection and goes on serving others. A client that says nothing is
// refused with `timeout`.
handshake_result serve_handshake(int fd, std::string_view token, role expected_role,
                                 std::chrono::milliseconds timeout = default_handshake_timeout);

// Client side: sends hello(version, my_role, token) and waits for welcome or refuse until `until`.
handshake_result client_handshake(int fd, std::string_view token, role my_role, deadline until);

}  // namespace cmbench::wire
