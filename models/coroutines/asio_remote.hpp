// The remote jobs (models/remote.hpp) on Asio event loops, shared by coroutines/asio, asio-mt and
// asio-pool: the coordinator's lanes and the node's acceptor and connections as C++20 coroutines
// on the models' io_contexts. The bytes on the wire, what is counted and what is logged are those
// of models/wire/blocking.cpp, done with Asio's asynchronous sockets.
//
// Coordinator: min(in_flight, tasks) lanes, each a coroutine making one call at a time (write the
// request, read the result) on its own socket to its node, taking that node's next task from the
// node's counter (task t -> node t % nodes, the contract of models/remote.hpp): lane l calls node
// l % nodes, so C lanes hold C connections as before; with fewer lanes than nodes a lane calls
// several, in turn, with a socket to each opened at its first call there. One timer at the job's deadline guards every lane: when it
// fires (or when a lane fails) every lane's socket is shut down (::shutdown, safe from any thread
// while the lane still owns its descriptor), so whatever each lane is waiting on ends at once and
// the lanes unwind; a lane's error after the deadline is a timeout.
//
// Node: an acceptor coroutine on a duplicate of the listening socket, racing each accept against
// the stop descriptor, hands each connection to a loop (round robin over the model's loops) as a
// coroutine of its own: the handshake (its hello raced against a timer), then one request after
// another, each waiting its wait_ms on a steady_timer. Stopping shuts down every connection's
// socket, so each connection coroutine ends at its next read or write.
#pragma once

#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration

#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <variant>
#include <vector>

#include "models/remote.hpp"
#include "models/wire/blocking.hpp"
#include "models/wire/frame.hpp"
#include "models/wire/io.hpp"
#include "models/wire/token.hpp"

namespace cmbench::detail {

using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, loop_executor>;
using tcp_acceptor = asio::basic_socket_acceptor<asio::ip::tcp, loop_executor>;
using stream_descriptor = asio::posix::basic_stream_descriptor<loop_executor>;
// Completions as (error_code, ...) tuples: a closed peer or a shut-down socket is an outcome to
// report, not an exception to unwind.
inline constexpr auto use_loop_tuple = asio::experimental::as_tuple(use_loop_task);

// The loops a remote job's coroutines are placed on: one (asio, asio-pool) or one per thread
// (asio-mt), round robin.
struct remote_loops {
  const loop_executor* executors = nullptr;
  unsigned count = 1;
  const loop_executor& executor(std::uint64_t i) const { return executors[i % count]; }
};

// ---------------------------------------------------------------------------------------------
// Frames on an Asio socket, reported as wire::read_frame reports them.

// An Asio completion as the blocking helpers' io_result: end of stream and a reset are `closed`,
// a cancelled operation a `timeout` (only a timer cancels one).
inline wire::io_result io_of(const std::error_code& ec, std::size_t transferred) {
  if (!ec) return {wire::io_status::ok, 0, transferred};
  if (ec == asio::error::eof) return {wire::io_status::closed, 0, transferred};
  if (ec == asio::error::connection_reset) return {wire::io_status::closed, ECONNRESET, transferred};
  if (ec == asio::error::broken_pipe) return {wire::io_status::closed, EPIPE, transferred};
  if (ec == asio::error::operation_aborted) return {wire::io_status::timeout, 0, transferred};
  return {wire::io_status::failed, ec.value(), transferred};
}

// A connection's read buffers, reused frame after frame.
struct frame_buffers {
  std::array<std::uint8_t, wire::header_size> head{};
  wire::bytes payload;
};

// What was wrong with a header, worded as wire::read_frame words it.
inline std::string header_detail(wire::frame_error error, const std::array<std::uint8_t, wire::header_size>& head,
                                 std::uint32_t limit) {
  std::string detail(wire::frame_error_name(error));
  if (error == wire::frame_error::oversized) {
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= std::uint32_t{head[8 + i]} << (8 * i);
    detail += ": " + std::to_string(length) + " bytes announced, limit " +
              std::to_string(std::min(limit, wire::max_payload));
  } else if (error == wire::frame_error::unsupported_version) {
    detail += ": " + std::to_string(head[4] | (head[5] << 8)) + " (this side speaks " +
              std::to_string(wire::protocol_version) + ")";
  } else if (error == wire::frame_error::unknown_type) {
    detail += ": " + std::to_string(head[6]);
  }
  return detail;
}

// One frame off the socket: the header, checked before the payload is allocated or read, then
// the payload, decoded. `progress` (if given) follows the bytes read so far, for a caller that may
// give up on the read before it completes.
inline loop_task<wire::frame_read> read_frame(tcp_socket& socket, frame_buffers& buffers, std::uint32_t limit,
                                              std::size_t* progress = nullptr) {
  wire::frame_read r;
  const auto [head_error, head_bytes] =
      co_await asio::async_read(socket, asio::buffer(buffers.head), use_loop_tuple);
  if (progress != nullptr) *progress = head_bytes;
  r.io = io_of(head_error, head_bytes);
  if (!r.io) {
    // A peer that closes part-way through a header sent a truncated one.
    if (r.io.status == wire::io_status::closed && head_bytes > 0) {
      r.error = wire::frame_error::truncated_header;
      r.detail = "truncated header: " + std::to_string(head_bytes) + " of " + std::to_string(wire::header_size) +
                 " bytes, then the connection closed";
    }
    co_return r;
  }
  wire::header h;
  r.error = wire::decode_header(buffers.head, h, limit);
  if (r.error != wire::frame_error::none) {
    r.detail = header_detail(r.error, buffers.head, limit);
    co_return r;
  }
  buffers.payload.resize(h.length);  // h.length <= limit: checked above, before this allocation
  if (h.length > 0) {
    const auto [payload_error, payload_bytes] =
        co_await asio::async_read(socket, asio::buffer(buffers.payload), use_loop_tuple);
    if (progress != nullptr) *progress = wire::header_size + payload_bytes;
    r.io = io_of(payload_error, payload_bytes);
  }
  r.io.transferred += wire::header_size;
  if (!r.io) {
    if (r.io.status == wire::io_status::closed) {
      r.error = wire::frame_error::truncated_payload;
      r.detail = "truncated payload: " + std::to_string(r.io.transferred - wire::header_size) + " of " +
                 std::to_string(h.length) + " bytes, then the connection closed";
    }
    co_return r;
  }
  wire::decoded d = wire::decode_payload(h.type, buffers.payload);
  r.error = d.error;
  r.detail = std::move(d.detail);
  r.msg = std::move(d.msg);
  co_return r;
}

// A frame sent best effort, as the blocking helpers send a refusal or an error before closing:
// one non-blocking send of a small frame, never a wait on a peer that does not read.
inline void send_best_effort(int fd, const wire::message& m) {
  const wire::bytes frame = wire::encode_frame(m);
  (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// ---------------------------------------------------------------------------------------------
// The coordinator's side.


inline std::string address_text(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// A node's addresses, resolved once per job (wire::connect_tcp's getaddrinfo, same hints), or why not.
struct resolved_node {
  std::vector<asio::ip::tcp::endpoint> endpoints;
  std::string error;  // "cannot resolve host:port: ..." when empty endpoints
};

inline resolved_node resolve_node(const node_address& address) {
  resolved_node out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* head = nullptr;
  const std::string service = std::to_string(address.port);
  const int rc = ::getaddrinfo(address.host.c_str(), service.c_str(), &hints, &head);
  if (rc != 0) {
    out.error = std::system_error(std::make_error_code(std::errc::invalid_argument),
                                  "cannot resolve " + address_text(address.host, address.port) + ": " +
                                      ::gai_strerror(rc))
                    .what();
    return out;
  }
  for (const addrinfo* ai = head; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    asio::ip::tcp::endpoint endpoint;
    std::memcpy(endpoint.data(), ai->ai_addr, ai->ai_addrlen);
    endpoint.resize(ai->ai_addrlen);
    out.endpoints.push_back(endpoint);
  }
  ::freeaddrinfo(head);
  if (out.endpoints.empty()) out.error = "no address for " + address_text(address.host, address.port);
  return out;
}

// What every lane of one scatter job shares, in the driver's frame. Shared: lanes run on several
// threads (asio-mt's loops, asio-pool's threads), so the task counter is an atomic.
//
// Ending the job early (the deadline, or a lane's failure): every lane's socket is registered
// here while the lane owns it (a slot per lane and node), and ending shuts each one down (both
// directions) under the lock.
// A shut-down socket makes the lane's pending or next read, write or connect complete at once, on
// the lane's own loop, so no lane's socket is ever touched by another thread; a lane unregisters
// its socket (under the same lock) before closing it, so no descriptor number is shut down after
// it was reused.
template <bool Shared>
class scatter_run {
 public:
  scatter_run(const scatter_job& job, std::uint64_t lanes)
      : job_(job),
        hello_(wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, job.token})),
        fds_(lanes * job.nodes.size(), -1),
        lanes_left_(lanes) {
    nodes_.reserve(job.nodes.size());
    for (const node_address& address : job.nodes) nodes_.push_back(resolve_node(address));
  }
  scatter_run(const scatter_run&) = delete;
  scatter_run& operator=(const scatter_run&) = delete;

  const scatter_job& job() const { return job_; }
  const resolved_node& node(std::size_t n) const { return nodes_[n]; }
  const wire::bytes& hello_frame() const { return hello_; }

  // The next task of `node` (node, node + W, node + 2W, ...: task t goes to node t % W) not yet
  // taken; job.tasks or more when none is left.
  std::uint64_t take_task(std::size_t node) {
    std::uint64_t k = 0;
    if constexpr (Shared) {
      k = next_of_node_[node].fetch_add(1, std::memory_order_relaxed);
    } else {
      k = next_of_node_[node]++;
    }
    return node + k * nodes_.size();
  }

  // The nodes lane `lane` of `lanes` calls: with at least as many lanes as nodes, one node each
  // (lane % W), so every lane holds one connection and each node's tasks are shared by its lanes;
  // with fewer, every lanes-th node from the lane's own (a connection to each).
  std::vector<std::size_t> nodes_of_lane(std::size_t lane, std::size_t lanes) const {
    std::vector<std::size_t> out;
    if (lanes >= nodes_.size()) {
      out.push_back(lane % nodes_.size());
    } else {
      for (std::size_t n = lane; n < nodes_.size(); n += lanes) out.push_back(n);
    }
    return out;
  }

  // The job is ending (the deadline passed, or a lane failed): no lane starts another call.
  bool ending() const { return ending_.load(std::memory_order_relaxed); }
  bool expired() const { return expired_.load(std::memory_order_relaxed); }

  // The slot of a lane's socket to a node.
  std::size_t slot(std::size_t lane, std::size_t node) const { return lane * nodes_.size() + node; }

  // A lane's socket, registered in its slot while the lane owns it; false (and not registered) if
  // the job is already ending.
  bool attach(std::size_t slot, int fd) {
    const std::lock_guard lock(mutex_);
    if (ending_.load(std::memory_order_relaxed)) return false;
    fds_[slot] = fd;
    return true;
  }
  void detach(std::size_t slot) {
    const std::lock_guard lock(mutex_);
    fds_[slot] = -1;
  }

  // The watchdog: the deadline passed. Every wait of every lane ends now, as a timeout.
  void expire() {
    const std::lock_guard lock(mutex_);
    expired_.store(true, std::memory_order_relaxed);
    end_locked();
  }

  // A lane failed: the first failure is the job's; the other lanes are ended.
  void fail(std::exception_ptr error) {
    const std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(error);
    end_locked();
  }

  // After the deadline every failed wait is the deadline's doing.
  void settle(wire::io_result& io) const {
    if (!io && expired()) io.status = wire::io_status::timeout;
  }
  void settle(wire::frame_read& r) const {
    if (!expired()) return;
    if (r.io.status != wire::io_status::ok || r.error == wire::frame_error::truncated_header ||
        r.error == wire::frame_error::truncated_payload) {
      r.io.status = wire::io_status::timeout;
      r.error = wire::frame_error::none;
      r.detail.clear();
    }
  }

  // Lanes that finished (or were never started); the last one cancels the watchdog, so that its
  // handler runs now and the job can complete. The watchdog's wait was started before any lane.
  void lanes_finished(std::uint64_t n) {
    if (lanes_left_.fetch_sub(n, std::memory_order_acq_rel) == n && watchdog_ != nullptr) watchdog_->cancel();
  }
  void set_watchdog(loop_timer* timer) { watchdog_ = timer; }

  // After every lane and the watchdog completed: the first failure, if any.
  const std::exception_ptr& error() const { return error_; }

 private:
  void end_locked() {
    ending_.store(true, std::memory_order_relaxed);
    for (const int fd : fds_) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
  }

  const scatter_job& job_;
  std::vector<resolved_node> nodes_;
  wire::bytes hello_;
  // Per node: how many of its tasks were taken.
  std::vector<std::conditional_t<Shared, std::atomic<std::uint64_t>, std::uint64_t>> next_of_node_ =
      std::vector<std::conditional_t<Shared, std::atomic<std::uint64_t>, std::uint64_t>>(job_.nodes.size());
  std::mutex mutex_;  // fds_, error_; taken when a lane connects or closes, and when the job ends
  std::vector<int> fds_;
  std::exception_ptr error_;
  std::atomic<bool> ending_{false};
  std::atomic<bool> expired_{false};
  std::atomic<std::uint64_t> lanes_left_;
  loop_timer* watchdog_ = nullptr;
};

// Unregisters a lane's socket before the socket closes (declared after it).
template <bool Shared>
class lane_registration {
 public:
  lane_registration(scatter_run<Shared>& run, std::size_t slot) : run_(run), slot_(slot) {}
  lane_registration(const lane_registration&) = delete;
  lane_registration& operator=(const lane_registration&) = delete;
  ~lane_registration() { run_.detach(slot_); }

 private:
  scatter_run<Shared>& run_;
  std::size_t slot_;
};

// A lane's connection to one node: its socket, then the registration that unregisters it first.
template <bool Shared>
struct lane_connection {
  lane_connection(const loop_executor& executor, scatter_run<Shared>& run, std::size_t slot)
      : socket(executor), registration(run, slot) {}
  tcp_socket socket;
  const lane_registration<Shared> registration;
};

// Opens the lane's socket and connects it to its node (each of the node's addresses in turn, as
// wire::connect_tcp does), TCP_NODELAY set, counted. Throws as call_connection's constructor does:
// a std::system_error when out of descriptors, else "node N (...) is unreachable: ...".
template <bool Shared>
loop_task<void> connect_lane(scatter_run<Shared>& run, tcp_socket& socket, std::size_t slot, std::size_t node) {
  const scatter_job& job = run.job();
  const resolved_node& target = run.node(node);
  if (target.endpoints.empty()) throw std::runtime_error(node_name(job, node) + " is unreachable: " + target.error);
  int last = 0;
  for (const asio::ip::tcp::endpoint& endpoint : target.endpoints) {
    const int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
    if (fd < 0) {
      last = errno;
      continue;
    }
    std::error_code ec;
    socket.assign(endpoint.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      last = ec.value();
      continue;
    }
    if (!run.attach(slot, fd)) {
      socket.close(ec);
      last = ETIMEDOUT;  // the job is ending: the deadline passed, or another lane failed
      break;
    }
    const auto [connect_error] = co_await socket.async_connect(endpoint, use_loop_tuple);
    if (!connect_error) {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
      job.counters->add_connection();
      co_return;
    }
    last = run.expired() ? ETIMEDOUT : connect_error.value();
    run.detach(slot);
    socket.close(ec);
    if (run.ending()) break;
  }
  const std::system_error failure(last, std::generic_category(),
                                  "cannot connect to " + address_text(job.nodes[node].host, job.nodes[node].port));
  // Running out of descriptors stays a system_error: the trial names it as a limit.
  if (last == EMFILE || last == ENFILE) throw failure;
  throw std::runtime_error(node_name(job, node) + " is unreachable: " + failure.what());
}

// The client's handshake (wire::client_handshake's steps and wording), counted as
// call_connection counts it: the hello as sent whatever happens, the welcome once accepted.
template <bool Shared>
loop_task<void> lane_handshake(scatter_run<Shared>& run, tcp_socket& socket, frame_buffers& buffers,
                               std::size_t node) {
  const scatter_job& job = run.job();
  auto refused = [&](const std::string& detail) {
    return std::runtime_error(node_name(job, node) + " refused the connection: " + detail);
  };
  const wire::bytes& hello = run.hello_frame();
  const auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(hello), use_loop_tuple);
  job.counters->add_sent(hello.size());
  if (write_error) {
    wire::io_result w = io_of(write_error, written);
    run.settle(w);
    throw refused("sending hello: " + w.describe());
  }
  wire::frame_read r = co_await read_frame(socket, buffers, wire::max_payload);
  run.settle(r);
  if (!r.ok()) throw refused("waiting for welcome: " + r.describe());
  if (const auto* refusal = std::get_if<wire::refuse>(&r.msg)) {
    throw refused("refused (" + std::string(wire::refuse_reason_name(refusal->reason)) + "): " + refusal->message);
  }
  const auto* welcome = std::get_if<wire::welcome>(&r.msg);
  if (welcome == nullptr) {
    throw refused("expected welcome, got " + std::string(wire::frame_type_name(wire::type_of(r.msg))));
  }
  if (welcome->version != wire::protocol_version) {
    throw refused("welcome speaks version " + std::to_string(welcome->version));
  }
  job.counters->add_received(r.io.transferred);
}

// One lane: one call at a time, each for the next task not yet taken of the lane's nodes (in
// turn, when it has several), on the lane's connection to the task's node (opened, with the
// handshake, at the lane's first call there), until none is left or the job ends. Returns the sum
// of its calls' values.
template <bool Shared>
loop_task<std::uint64_t> scatter_lane(scatter_run<Shared>& run, std::size_t lane, std::size_t lanes) {
  const scatter_job& job = run.job();
  const loop_executor executor = co_await asio::this_coro::executor;
  std::vector<std::unique_ptr<lane_connection<Shared>>> connections(job.nodes.size());
  frame_buffers buffers;  // a frame is read whole, header then payload: nothing is left between reads
  std::vector<std::uint8_t> request;
  std::uint64_t sum = 0;
  std::vector<std::size_t> mine = run.nodes_of_lane(lane, lanes);
  for (std::size_t turn = 0; !mine.empty(); ++turn) {
    const std::size_t node = mine[turn % mine.size()];
    const std::uint64_t task = run.take_task(node);
    if (task >= job.tasks) {  // this node's tasks are all taken
      mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(turn % mine.size()));
      continue;
    }
    if (run.ending()) {
      // Another lane's failure is the job's; but after the deadline, a task left is one no node
      // answered in time (every lane may have seen its last reply arrive just before the end).
      if (run.expired()) {
        throw std::runtime_error(node_name(job, node) + " did not answer task " + std::to_string(task) +
                                 " before the trial's deadline");
      }
      break;
    }
    if (!connections[node]) {
      connections[node] = std::make_unique<lane_connection<Shared>>(executor, run, run.slot(lane, node));
      co_await connect_lane(run, connections[node]->socket, run.slot(lane, node), node);
      co_await lane_handshake(run, connections[node]->socket, buffers, node);
    }
    tcp_socket& socket = connections[node]->socket;
    wire::encode_request(job, task, request);
    job.call_started(job.context, task);
    const auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(request), use_loop_tuple);
    if (write_error) {
      wire::io_result w = io_of(write_error, written);
      run.settle(w);
      throw std::runtime_error(node_name(job, node) + ": sending task " + std::to_string(task) + ": " + w.describe());
    }
    job.counters->add_sent(request.size());
    wire::frame_read r = co_await read_frame(socket, buffers, wire::max_payload);
    run.settle(r);
    job.counters->add_received(r.io.transferred);
    const std::uint64_t value = wire::result_value(job, node, task, r);  // throws naming the node and task
    job.call_finished(job.context, task, value);
    sum += value;
  }
  co_return sum;
}

// A lane's completion: its failure ends the job (the first one is the job's), its sum joins the
// group's. The failure is kept by the run, not the group: a lane that failed because another one
// ended the job may report before the one that caused it.
template <bool Shared>
struct lane_done {
  scatter_run<Shared>* run;
  wait_group<Shared>* group;
  void operator()(std::exception_ptr error, std::uint64_t value) const {
    if (error) run->fail(std::move(error));
    run->lanes_finished(1);
    group->arrive(nullptr, value);  // the driver (and *run) may be gone after this
  }
};

// The watchdog's completion: at the deadline it ends every lane; cancelled (every lane finished)
// it only counts out.
template <bool Shared>
struct watchdog_done {
  scatter_run<Shared>* run;
  wait_group<Shared>* group;
  void operator()(const std::error_code& ec) const {
    if (!ec) run->expire();
    group->arrive(nullptr, 0);
  }
};

// The coordinator's job: min(in_flight, tasks) lanes spread round robin over `loops`, all started
// from this coroutine, which waits for them and the watchdog. Returns the wrapping sum of every
// call's value, or throws the first lane's failure.
template <bool Shared>
loop_task<std::uint64_t> scatter_driver(const scatter_job& job, remote_loops loops) {
  if (job.tasks == 0) co_return 0;
  if (job.nodes.empty()) throw std::invalid_argument("a scatter job needs at least one node");
  const loop_executor executor = co_await asio::this_coro::executor;
  const std::uint64_t lanes = std::min<std::uint64_t>(std::max<std::uint32_t>(job.in_flight, 1), job.tasks);
  scatter_run<Shared> run(job, lanes);
  wait_group<Shared> group;
  loop_task<void> all_done = group.wait();
  loop_timer watchdog(executor);
  watchdog.expires_at(job.deadline);
  run.set_watchdog(&watchdog);
  // The watchdog's wait starts before any lane, so the last lane's cancel always finds it.
  group.add();
  try {
    watchdog.async_wait(watchdog_done<Shared>{&run, &group});
  } catch (...) {
    group.undo_add();
    throw;
  }
  std::uint64_t started = 0;
  for (; started < lanes; ++started) {
    group.add();
    try {
      asio::co_spawn(loops.executor(started),
                     scatter_lane(run, static_cast<std::size_t>(started), static_cast<std::size_t>(lanes)),
                     lane_done<Shared>{&run, &group});
    } catch (...) {
      group.undo_add();
      run.fail(std::current_exception());  // ends the lanes already started
      break;
    }
  }
  if (started < lanes) run.lanes_finished(lanes - started);
  co_await std::move(all_done);
  if (run.error()) std::rethrow_exception(run.error());
  co_return group.result();
}

// ---------------------------------------------------------------------------------------------
// The node's side.

// What a node's acceptor and connections share, in serve()'s frame. Every connection's socket is
// registered while its coroutine owns it; stopping shuts each one down under the lock (a
// connection unregisters before its socket closes), so each coroutine ends at its next read or
// write, on its own loop.
class node_run {
 public:
  // `all_done(context)` runs when the acceptor and every connection have finished (asio-mt and
  // asio-pool wake the caller with it; asio's caller returns when its loop runs out of work).
  explicit node_run(const serve_job& job)
      : job_(job), welcome_(wire::encode_frame(wire::welcome{wire::protocol_version, wire::role::node})) {}
  node_run(const node_run&) = delete;
  node_run& operator=(const node_run&) = delete;

  void on_all_done(void (*all_done)(void*), void* context) {
    all_done_ = all_done;
    all_done_context_ = context;
  }

  const serve_job& job() const { return job_; }
  const wire::bytes& welcome_frame() const { return welcome_; }

  void log(const std::string& line) const {
    if (job_.log != nullptr) job_.log(job_.context, line);
  }

  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // false (and not registered) once the node stops.
  bool attach(int fd) {
    const std::lock_guard lock(mutex_);
    if (stopping_.load(std::memory_order_relaxed)) return false;
    connections_.insert(fd);
    return true;
  }
  void detach(int fd) {
    const std::lock_guard lock(mutex_);
    connections_.erase(fd);
  }

  // Stop serving: every connection ends at its next read or write.
  void stop() {
    const std::lock_guard lock(mutex_);
    if (stopping_.exchange(true, std::memory_order_relaxed)) return;
    for (const int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  }

  // The acceptor's count (held from construction) and each connection's.
  void enter() { live_.fetch_add(1, std::memory_order_relaxed); }
  void leave() {
    // acq_rel: whoever wakes the caller has seen everything the others did.
    if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && all_done_ != nullptr) all_done_(all_done_context_);
  }

  // The acceptor's failure, read by the caller once everything finished.
  std::exception_ptr failure;

 private:
  const serve_job& job_;
  wire::bytes welcome_;
  std::mutex mutex_;
  std::unordered_set<int> connections_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> live_{1};
  void (*all_done_)(void*) = nullptr;
  void* all_done_context_ = nullptr;
};

// Unregisters a connection's socket before the socket closes (declared after it).
class connection_registration {
 public:
  connection_registration(node_run& run, int fd) : run_(run), fd_(fd), attached_(run.attach(fd)) {}
  connection_registration(const connection_registration&) = delete;
  connection_registration& operator=(const connection_registration&) = delete;
  ~connection_registration() {
    if (attached_) run_.detach(fd_);
  }
  bool attached() const { return attached_; }

 private:
  node_run& run_;
  int fd_;
  bool attached_;
};

// The server's handshake (wire::serve_handshake's checks, order and wording, done
// asynchronously): a hello within wire::default_handshake_timeout (its read raced against a
// timer), from a coordinator with this version and the token (checked before the role). Counted
// and logged as wire::accept_handshake does. True: welcomed.
inline loop_task<bool> node_handshake(node_run& run, tcp_socket& socket, frame_buffers& buffers,
                                      const std::string& peer) {
  using namespace asio::experimental::awaitable_operators;
  const serve_job& job = run.job();
  loop_timer timer(socket.get_executor());
  timer.expires_after(wire::default_handshake_timeout);
  std::size_t progress = 0;
  auto first = co_await (read_frame(socket, buffers, wire::max_token_size + 16, &progress) ||
                         timer.async_wait(use_loop_task));
  if (run.stopping()) co_return false;
  wire::frame_read r;
  if (first.index() == 0) {
    r = std::move(std::get<0>(first));
  } else {
    r.io = {wire::io_status::timeout, 0, progress};
  }
  auto refuse = [&](wire::refuse_reason reason, const std::string& detail, bool send) {
    // Best effort: the peer may be gone or not reading.
    if (send) send_best_effort(socket.native_handle(), wire::refuse{reason, detail});
    job.counters->refused.fetch_add(1, std::memory_order_relaxed);
    run.log("refused " + peer + ": " + std::string(wire::refuse_reason_name(reason)) + ": " + detail);
    return false;
  };
  if (r.io.status == wire::io_status::timeout) {
    co_return refuse(wire::refuse_reason::timeout,
                     "no hello within " + std::to_string(wire::default_handshake_timeout.count()) + " ms (" +
                         r.io.describe() + ")",
                     true);
  }
  if (r.error == wire::frame_error::unsupported_version) {
    co_return refuse(wire::refuse_reason::bad_version, r.describe(), true);
  }
  if (!r.ok()) co_return refuse(wire::refuse_reason::bad_frame, r.describe(), true);
  const auto* h = std::get_if<wire::hello>(&r.msg);
  if (h == nullptr) {
    co_return refuse(wire::refuse_reason::unexpected,
                     "expected hello, got " + std::string(wire::frame_type_name(wire::type_of(r.msg))), true);
  }
  if (h->version != wire::protocol_version) {
    co_return refuse(wire::refuse_reason::bad_version,
                     "hello speaks version " + std::to_string(h->version) + ", this side " +
                         std::to_string(wire::protocol_version),
                     true);
  }
  // The token before the role: a peer without the token learns nothing else.
  if (!wire::constant_time_equal(job.token, h->token)) {
    co_return refuse(wire::refuse_reason::bad_token, "wrong token", true);
  }
  if (h->sender != wire::role::coordinator) {
    co_return refuse(wire::refuse_reason::unexpected,
                     "hello from a " + std::string(wire::role_name(h->sender)) + ", expected a " +
                         std::string(wire::role_name(wire::role::coordinator)),
                     true);
  }
  const wire::bytes& welcome = run.welcome_frame();
  const auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(welcome), use_loop_tuple);
  if (write_error) {
    if (run.stopping()) co_return false;
    co_return refuse(wire::refuse_reason::timeout, "sending welcome: " + io_of(write_error, written).describe(),
                     false);
  }
  job.counters->add_received(r.io.transferred);
  job.counters->add_sent(welcome.size());
  co_return true;
}

// A task_result frame: the header and id, value (u64 each), as wire::encode_frame makes it.
inline constexpr std::size_t result_frame_size = wire::header_size + 16;
inline void encode_result(std::array<std::uint8_t, result_frame_size>& out, std::uint64_t id, std::uint64_t value) {
  const auto head = wire::encode_header(wire::header{wire::protocol_version, wire::frame_type::task_result, 0, 16});
  std::copy(head.begin(), head.end(), out.begin());
  for (int i = 0; i < 8; ++i) {
    out[wire::header_size + i] = static_cast<std::uint8_t>(id >> (8 * i));
    out[wire::header_size + 8 + i] = static_cast<std::uint8_t>(value >> (8 * i));
  }
}

// One connection: the handshake, then each request in order (wire::read_request and
// wire::answer's steps, counts and log lines): the wait on a timer, the value, the reply.
inline loop_task<void> serve_connection(node_run& run, tcp_socket accepted) {
  tcp_socket socket = std::move(accepted);
  const int fd = socket.native_handle();
  const connection_registration registration(run, fd);  // before the socket closes: unregistered
  if (!registration.attached()) co_return;               // the node is stopping
  const serve_job& job = run.job();
  const std::string peer = wire::peer_name(fd);
  frame_buffers buffers;
  if (!co_await node_handshake(run, socket, buffers, peer)) co_return;
  std::optional<loop_timer> timer;  // made at the first request that waits
  std::array<std::uint8_t, result_frame_size> reply{};
  for (;;) {
    const wire::frame_read r = co_await read_frame(socket, buffers, wire::max_payload);
    job.counters->add_received(r.io.transferred);
    if (r.io.status == wire::io_status::closed && r.io.transferred == 0) co_return;  // a clean close
    if (run.stopping()) co_return;
    if (!r.ok()) {
      run.log("dropped " + peer + ": " + r.describe());
      // A bad frame on a live connection: say why, best effort.
      if (r.io.status == wire::io_status::ok) send_best_effort(fd, wire::error{0, r.describe()});
      co_return;
    }
    if (std::holds_alternative<wire::bye>(r.msg)) co_return;
    const auto* request = std::get_if<wire::task_request>(&r.msg);
    if (request == nullptr) {
      const std::string what = "expected a task_request, got " + std::string(wire::frame_type_name(wire::type_of(r.msg)));
      run.log("dropped " + peer + ": " + what);
      send_best_effort(fd, wire::error{0, what});
      co_return;
    }
    job.counters->request_started();
    if (request->wait_ms > 0) {
      if (!timer) timer.emplace(socket.get_executor());
      timer->expires_after(std::chrono::milliseconds(request->wait_ms));
      co_await timer->async_wait(use_loop_tuple);
    }
    const std::uint64_t value = job.task_value(job.context, request->id, request->compute_us, request->payload.data(),
                                               static_cast<std::uint32_t>(request->payload.size()));
    encode_result(reply, request->id, value);
    const auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(reply), use_loop_tuple);
    if (!write_error) job.counters->add_sent(reply.size());
    job.counters->request_finished();
    if (write_error) co_return;
  }
}

// A connection's completion: an exception (no memory, a throwing task_value) drops it, logged.
struct connection_done {
  node_run* run;
  void operator()(std::exception_ptr error) const {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        run->log(std::string("dropped a connection: ") + e.what());
      } catch (...) {
        run->log("dropped a connection: unknown exception");
      }
    }
    run->leave();
  }
};

// A duplicate of a descriptor the caller owns, close-on-exec: Asio closes its own copy.
inline int duplicate_fd(int fd, const char* what) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw std::system_error(errno, std::generic_category(), std::string("duplicating the ") + what);
  return copy;
}

// The node's acceptor: each accept raced against the stop descriptor; every accepted connection
// counted and started as a coroutine on the next loop (round robin). Accept failures that end
// one connection only are skipped; others are logged (running out of descriptors leaves the
// connection in the backlog) and retried after a pause. When the stop descriptor is readable, or
// if this coroutine fails, the node stops: every connection ends.
inline loop_task<void> accept_loop(node_run& run, remote_loops loops) {
  using namespace asio::experimental::awaitable_operators;
  const serve_job& job = run.job();
  const loop_executor executor = co_await asio::this_coro::executor;
  try {
    tcp_acceptor acceptor(executor);
    stream_descriptor stop(executor);
    {
      sockaddr_storage local{};
      socklen_t length = sizeof local;
      if (::getsockname(job.listen_fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading the listening socket's address");
      }
      const int listen_copy = duplicate_fd(job.listen_fd, "listening socket");
      std::error_code ec;
      acceptor.assign(local.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), listen_copy, ec);
      if (ec) {
        ::close(listen_copy);
        throw std::system_error(ec, "adopting the listening socket");
      }
      const int stop_copy = duplicate_fd(job.stop_fd, "stop descriptor");
      stop.assign(stop_copy, ec);
      if (ec) {
        ::close(stop_copy);
        throw std::system_error(ec, "adopting the stop descriptor");
      }
    }
    std::optional<loop_timer> pause;  // made at the first accept failure that waits
    std::uint64_t next = 0;
    for (;;) {
      const loop_executor& target = loops.executor(next);
      auto outcome = co_await (acceptor.async_accept(target, use_loop_tuple) ||
                               stop.async_wait(stream_descriptor::wait_read, use_loop_task));
      if (outcome.index() == 1) break;  // stop
      auto& [ec, socket] = std::get<0>(outcome);
      if (ec) {
        const int e = ec.value();
        if (ec == asio::error::operation_aborted || e == EINTR || e == ECONNABORTED || e == EPROTO ||
            e == EAGAIN || e == EWOULDBLOCK) {
          continue;
        }
        if (e == EMFILE || e == ENFILE) {
          run.log(std::string("cannot accept a connection: ") + std::strerror(e) +
                  " (RLIMIT_NOFILE); it waits in the backlog");
        } else {
          run.log(std::string("accept failed: ") + std::strerror(e));
        }
        if (!pause) pause.emplace(executor);
        pause->expires_after(std::chrono::milliseconds(10));
        co_await pause->async_wait(use_loop_tuple);
        continue;
      }
      std::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      job.counters->add_connection();
      ++next;
      run.enter();
      try {
        asio::co_spawn(target, serve_connection(run, std::move(socket)), connection_done{&run});
      } catch (...) {
        run.leave();
        throw;
      }
    }
  } catch (...) {
    run.stop();
    throw;
  }
  run.stop();
}

// The acceptor's completion: its failure is the serve job's.
struct acceptor_done {
  node_run* run;
  void operator()(std::exception_ptr error) const {
    run->failure = std::move(error);
    run->leave();  // the caller (and *run) may be gone after this
  }
};

}  // namespace cmbench::detail
