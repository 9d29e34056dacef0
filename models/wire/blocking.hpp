// The remote jobs' pieces for models that use blocking sockets (serial, threads, processes): a
// coordinator's connection that makes one call at a time, and a node's handshake, request and
// reply, each counting what it moves in the job's remote_counters. Models build their own
// concurrency around these (a thread per call, a pool of processes, a poll loop); the bytes on
// the wire are the same for every model.
#pragma once

#include <poll.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/remote.hpp"
#include "models/wire/io.hpp"

namespace cmbench::wire {

// A coordinator's connection to one node: connected and handshaken on construction, then one
// call at a time. Every failure throws std::runtime_error naming the node (and the task).
class call_connection {
 public:
  call_connection(const scatter_job& job, std::size_t node);
  // Sends task `task`'s request and waits for its result, with job.call_started/call_finished
  // around it; returns the value.
  std::uint64_t call(const scatter_job& job, std::uint64_t task);
  std::size_t node() const { return node_; }

 private:
  unique_fd fd_;
  std::size_t node_ = 0;
  std::vector<std::uint8_t> frame_;  // the request being sent, reused
};

// Builds task `task`'s whole request frame into `frame` (header, id, compute_us, wait_ms, payload).
void encode_request(const scatter_job& job, std::uint64_t task, std::vector<std::uint8_t>& frame);
// Checks a result frame for task `task` from `node`: returns the value or throws naming both.
std::uint64_t result_value(const scatter_job& job, std::size_t node, std::uint64_t task, const frame_read& r);

// The node's side of one connection.
//
// The handshake, counted and logged: true when the client is welcomed. A refused one is logged
// (job.log) with the peer and the reason, and counted in counters->refused.
// `timeout` bounds the wait for the hello (0: refuse at once unless it is already there).
bool accept_handshake(const serve_job& job, int fd, const std::string& peer,
                      std::chrono::milliseconds timeout = default_handshake_timeout);
// What the next frame on a connection was: a request, or the connection's end (closed by the
// peer, a bad frame, a bye), logged unless it was a clean close or bye.
// `timeout` bounds the wait for the rest of a frame whose first bytes have arrived.
std::optional<task_request> read_request(const serve_job& job, int fd, const std::string& peer,
                                         std::chrono::milliseconds timeout = default_handshake_timeout);

// A server that serves many connections from one thread (a poll loop) reads a frame only once
// its first bytes have arrived, and waits at most this long for the rest: a client that stalls
// part-way holds the loop this long, then is dropped. A connection whose hello has not come by
// its deadline is refused at once, without waiting.
inline constexpr std::chrono::milliseconds poll_loop_frame_time{200};
// Answers a request: value = job.task_value(...), then the result frame. `wait` is the model's
// natural wait of request.wait_ms, run first. False when the reply could not be written.
template <class Wait>
bool answer(const serve_job& job, int fd, const task_request& request, Wait&& wait);
// The same, without the wait: the value and the reply (for a model that waited its own way).
bool reply(const serve_job& job, int fd, const task_request& request);

// "127.0.0.1:5555" for a connected socket's peer.
std::string peer_name(int fd);
// Blocks until `fd` is readable (true) or `stop_fd` is (false).
bool wait_readable_or_stop(int fd, int stop_fd);
// True once `stop_fd` is readable (without waiting).
bool stop_requested(int stop_fd);
// Accepts the next connection on a non-blocking listening socket: a connection, or an empty fd
// when there is none waiting right now (another process took it) or stop_fd became readable
// while waiting (check stop_requested). Counts the connection. Accept failures that end one
// connection only (aborted, reset) are skipped; running out of descriptors is logged and the
// connection left in the backlog.
unique_fd accept_connection(const serve_job& job);
// The same without waiting, for a poll loop that found the listening socket readable and may
// share it with other processes: the connection waiting now, or an empty fd when there is none
// (another process took it, or running out of descriptors left it in the backlog: logged).
unique_fd try_accept_connection(const serve_job& job);

// The connections a one-thread poll-loop server holds, each served a request at a time to its end
// (serial's iterative server, processes/pool's pre-forked workers): it adds their pollfds after
// the caller's own, says when the next expired handshake is due, and after the poll steps every
// connection (an expired handshake refused at once, a started hello or request read within
// poll_loop_frame_time, a request answered with a blocking sleep), dropping those that ended.
class polled_connections {
 public:
  void add(unique_fd fd);
  std::size_t size() const { return connections_.size(); }
  // Appends one pollfd per connection; returns the poll timeout (ms, -1: none) that the next
  // handshake deadline, or `wake` if sooner, asks for.
  int watch(std::vector<pollfd>& fds, clock::time_point wake = clock::time_point::max()) const;
  // Steps every connection; `first` is the index of the first connection's pollfd in `fds`.
  void serve(const serve_job& job, const std::vector<pollfd>& fds, std::size_t first);

 private:
  struct connection {
    unique_fd fd;
    std::string peer;
    bool welcomed = false;
    deadline hello_by;
  };
  std::vector<connection> connections_;
};

template <class Wait>
bool answer(const serve_job& job, int fd, const task_request& request, Wait&& wait) {
  job.counters->request_started();
  if (request.wait_ms > 0) wait(request.wait_ms);
  const bool ok = reply(job, fd, request);
  job.counters->request_finished();
  return ok;
}

}  // namespace cmbench::wire
