#include "models/coroutines/asio_remote.hpp"  // first: it fixes Asio's configuration

#include "workloads/server/load_generator.hpp"

#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <optional>
#include <thread>

#include "models/wire/blocking.hpp"

namespace cmbench::server {

using clock = std::chrono::steady_clock;
using detail::loop_task;
using detail::tcp_socket;
using detail::use_loop_tuple;

namespace {

// The longest answer the generator accepts: a task result is 16 bytes, an error a line.
constexpr std::uint32_t answer_limit = 64 * 1024;

std::uint64_t ns_between(clock::time_point from, clock::time_point to) {
  return to > from ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count())
                   : 0;
}

// from + span, or `limit` if sooner (without overflowing when the limit is time_point::max()).
clock::time_point capped(clock::time_point from, std::chrono::nanoseconds span, clock::time_point limit) {
  return limit <= from || span >= limit - from ? limit : from + span;
}

}  // namespace

// A connection: its socket lives on one loop and is touched only by that loop's thread.
struct connection {
  explicit connection(asio::io_context& loop) : socket(loop.get_executor()) {}
  tcp_socket socket;
  std::size_t server = 0;
  bool alive = false;
  bool waiting = false;  // a request is out and its answer not yet read
  detail::frame_buffers buffers;
  std::vector<std::uint8_t> frame;  // the request being sent, reused
};

// What one loop's connections counted in a step: merged into the step's result once every loop
// has stopped, so no count or histogram is shared between threads.
struct tally {
  step_result r;
  clock::time_point first_answer = clock::time_point::max();
  clock::time_point last_answer{};
  std::uint64_t connections_left = 0;
  detail::loop_timer* watchdog = nullptr;
  bool expired = false;  // the drain deadline passed: the connections still waiting were dropped
  std::string failure;   // a connection's coroutine threw this
};

// The schedule of one step.
struct plan {
  clock::time_point start;
  std::chrono::nanoseconds period{0};  // between two requests' due times; 0: all due at the start
  std::uint64_t count = 0;
  std::uint64_t first_id = 0;
  clock::time_point cutoff;          // nothing is sent after it
  clock::time_point drain_deadline;  // no answer is waited for after it
};

struct load_generator::impl {
  explicit impl(generator_setup s)
      : setup(std::move(s)), loops(std::clamp(setup.threads, 1u, std::max(1u, setup.connections))) {
    if (setup.servers.empty()) throw std::invalid_argument("the load generator needs a server");
    if (setup.connections < 1) throw std::invalid_argument("the load generator needs at least one connection");
    if (setup.slots < 1) throw std::invalid_argument("the load generator needs at least one slot");
    job.compute_us = setup.compute_us;
    job.wait_ms = setup.wait_ms;
    job.payload_bytes = setup.payload_bytes;
    job.nodes = setup.servers;
    job.token = setup.token;
    job.deadline = setup.deadline;
    job.counters = setup.counters;
    job.context = this;
    job.payload_of = [](const void* context, std::uint64_t task, std::uint8_t* out, std::uint32_t bytes) {
      const auto& self = *static_cast<const impl*>(context);
      std::memcpy(out, self.setup.payloads + (task % self.setup.slots) * bytes, bytes);
    };
    for (auto& loop : loops) loop = std::make_unique<asio::io_context>(1);
    for (unsigned c = 0; c < setup.connections; ++c) {
      connections.push_back(std::make_unique<connection>(*loops[c % loops.size()]));
      connections.back()->server = c % setup.servers.size();
    }
    reopen();
  }

  // Opens every connection that is not open, blocking: connect, handshake, counted as
  // wire::call_connection counts them. Throws naming the server.
  void reopen() {
    for (auto& c : connections) {
      if (c->alive) continue;
      std::error_code ignored;
      c->socket.close(ignored);
      const node_address& address = setup.servers[c->server];
      wire::unique_fd fd;
      try {
        fd = wire::connect_tcp(address.host, address.port, setup.deadline);
      } catch (const std::system_error& e) {
        if (e.code().value() == EMFILE || e.code().value() == ENFILE) throw;
        throw std::runtime_error(node_name(job, c->server) + " is unreachable: " + e.what());
      }
      setup.counters->add_connection();
      const wire::handshake_result h = wire::client_handshake(fd.get(), setup.token, wire::role::coordinator,
                                                              setup.deadline);
      setup.counters->add_sent(wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator,
                                                              setup.token})
                                   .size());
      if (!h) throw std::runtime_error(node_name(job, c->server) + " refused the connection: " + h.detail);
      setup.counters->add_received(wire::encode_frame(wire::welcome{}).size());
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
      c->socket.assign(addr.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd.release());
      c->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      c->alive = true;
    }
  }

  // One connection's share of the step: requests index, index + K, ... in order.
  loop_task<void> drive(connection& c, std::uint64_t index, const plan& p, tally& t) {
    const std::uint64_t stride = connections.size();
    detail::loop_timer timer(co_await asio::this_coro::executor);
    clock::time_point free_at = p.start;
    for (std::uint64_t i = index; i < p.count; i += stride) {
      const clock::time_point due = p.start + p.period * static_cast<std::int64_t>(i);
      if (!c.alive) {  // lost earlier in this step
        ++t.r.errors;
        continue;
      }
      if (due > clock::now()) {
        timer.expires_at(due);
        (void)co_await timer.async_wait(use_loop_tuple);
      }
      const clock::time_point sent = clock::now();
      if (sent > p.cutoff) {  // this one and every later one of this connection never go out
        for (; i < p.count; i += stride) {
          ++t.r.unsent;
          t.r.latency.record(ns_between(p.start + p.period * static_cast<std::int64_t>(i), p.cutoff));
        }
        break;
      }
      t.r.send_lag.record(ns_between(std::max(due, free_at), sent));
      const std::uint64_t id = p.first_id + i;
      wire::encode_request(job, id, c.frame);
      c.waiting = true;
      const auto [write_error, written] = co_await asio::async_write(c.socket, asio::buffer(c.frame), use_loop_tuple);
      setup.counters->add_sent(written);
      if (write_error) {
        lose(c, t, "sending request " + std::to_string(id) + ": " + detail::io_of(write_error, written).describe());
        continue;
      }
      const wire::frame_read r = co_await detail::read_frame(c.socket, c.buffers, answer_limit);
      c.waiting = false;
      setup.counters->add_received(r.io.transferred);
      const clock::time_point answered = clock::now();
      free_at = answered;
      if (!r.ok()) {  // the connection is gone: an error, not a wrong answer
        lose(c, t, node_name(job, c.server) + ", request " + std::to_string(id) + ": " +
                       (t.expired ? "no answer by the drain deadline" : r.describe()));
        continue;
      }
      // A well-formed answer that is not this request's right result is a wrong answer: another
      // request's id (a reply sent to the wrong connection), an error frame, or a wrong value.
      const auto* result = std::get_if<wire::task_result>(&r.msg);
      if (result != nullptr && result->id == id) t.r.received_sum += result->value;
      std::string wrong;
      if (result == nullptr) {
        wrong = "answered with a " + std::string(wire::frame_type_name(wire::type_of(r.msg))) + " frame";
        if (const auto* e = std::get_if<wire::error>(&r.msg)) wrong += ": " + e->message;
      } else if (result->id != id) {
        wrong = "answered request " + std::to_string(result->id);
      } else if (setup.expected != nullptr && result->value != setup.expected[id % setup.slots]) {
        wrong = "answered " + std::to_string(result->value) + ", not " + std::to_string(setup.expected[id % setup.slots]);
      }
      if (!wrong.empty()) {
        ++t.r.wrong;
        if (t.r.first_wrong.empty()) {
          t.r.first_wrong = node_name(job, c.server) + ", request " + std::to_string(id) + ": " + wrong;
        }
        lose(c, t, t.r.first_wrong);  // the connection's answers can no longer be matched to requests
        continue;
      }
      ++t.r.completed;
      t.r.value_sum += result->value;
      t.r.latency.record(ns_between(due, answered));
      t.r.service.record(ns_between(sent, answered));
      t.first_answer = std::min(t.first_answer, answered);
      t.last_answer = std::max(t.last_answer, answered);
    }
  }

  // A connection's coroutine ended (normally or by an exception, which is recorded: its requests
  // then fail the step's count check); the loop's last one cancels the watchdog.
  static void driven(tally& t, std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        if (t.failure.empty()) t.failure = e.what();
      } catch (...) {
        if (t.failure.empty()) t.failure = "an unknown exception";
      }
    }
    if (--t.connections_left == 0 && t.watchdog != nullptr) t.watchdog->cancel();
  }

  // The connection failed: an error, and no more requests on it until it is reopened.
  static void lose(connection& c, tally& t, const std::string& why) {
    ++t.r.errors;
    if (t.r.first_error.empty()) t.r.first_error = why;
    c.alive = false;
    std::error_code ignored;
    c.socket.shutdown(asio::socket_base::shutdown_both, ignored);
  }

  // At the drain deadline every connection still waiting on its loop is shut down: its read ends
  // at once, as an error.
  loop_task<void> watch(std::size_t loop, detail::loop_timer& timer, const plan& p, tally& t) {
    timer.expires_at(p.drain_deadline);
    const auto [cancelled] = co_await timer.async_wait(use_loop_tuple);
    if (cancelled) co_return;  // every connection of this loop finished first
    t.expired = true;
    // Only the connections still waiting for an answer: one that is done keeps its connection.
    for (std::size_t c = loop; c < connections.size(); c += loops.size()) {
      if (!connections[c]->waiting) continue;
      std::error_code ignored;
      connections[c]->socket.shutdown(asio::socket_base::shutdown_both, ignored);
      connections[c]->alive = false;
    }
  }

  step_result run(const plan& p, double offered) {
    std::vector<tally> tallies(loops.size());
    std::vector<std::unique_ptr<detail::loop_timer>> watchdogs;
    for (std::size_t l = 0; l < loops.size(); ++l) {
      watchdogs.push_back(std::make_unique<detail::loop_timer>(loops[l]->get_executor()));
      tallies[l].watchdog = watchdogs.back().get();
      tallies[l].connections_left = (connections.size() + loops.size() - 1 - l) / loops.size();
      asio::co_spawn(loops[l]->get_executor(), watch(l, *watchdogs[l], p, tallies[l]), asio::detached);
    }
    for (std::size_t c = 0; c < connections.size(); ++c) {
      const std::size_t l = c % loops.size();
      tally& t = tallies[l];
      asio::co_spawn(loops[l]->get_executor(), drive(*connections[c], c, p, t),
                     [&t](std::exception_ptr error) { driven(t, std::move(error)); });
    }
    std::vector<std::thread> threads;
    for (std::size_t l = 1; l < loops.size(); ++l) threads.emplace_back([&, l] { loops[l]->run(); });
    loops[0]->run();
    for (auto& t : threads) t.join();
    for (auto& loop : loops) loop->restart();

    step_result out;
    out.offered_rps = offered;
    out.scheduled = p.count;
    clock::time_point last = p.start, first = clock::time_point::max();
    for (tally& t : tallies) {
      first = std::min(first, t.first_answer);
      out.completed += t.r.completed;
      out.unsent += t.r.unsent;
      out.errors += t.r.errors;
      out.wrong += t.r.wrong;
      out.received_sum += t.r.received_sum;
      out.expired = out.expired || t.expired;
      if (out.first_wrong.empty()) out.first_wrong = t.r.first_wrong;
      if (!t.failure.empty()) throw std::runtime_error("the load generator failed: " + t.failure);
      out.value_sum += t.r.value_sum;
      if (out.first_error.empty()) out.first_error = t.r.first_error;
      out.latency.merge(t.r.latency);
      out.service.merge(t.r.service);
      out.send_lag.merge(t.r.send_lag);
      last = std::max(last, t.last_answer);
    }
    // Every request is accounted for, once: answered right, unsent, or failed.
    if (out.completed + out.unsent + out.errors != out.scheduled) {
      throw std::logic_error("the load generator lost count: " + std::to_string(out.scheduled) + " scheduled, " +
                             std::to_string(out.completed) + " answered, " + std::to_string(out.unsent) +
                             " unsent, " + std::to_string(out.errors) + " failed");
    }
    out.elapsed_seconds = std::chrono::duration<double>(last - p.start).count();
    if (out.completed > 0) out.answering_seconds = std::chrono::duration<double>(last - first).count();
    return out;
  }

  generator_setup setup;
  scatter_job job;  // what wire::encode_request encodes a request from
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<std::unique_ptr<connection>> connections;
};

load_generator::load_generator(generator_setup setup) : impl_(std::make_unique<impl>(std::move(setup))) {}
load_generator::~load_generator() = default;

step_result load_generator::open_loop(double rate, std::chrono::nanoseconds duration,
                                      std::chrono::nanoseconds cutoff_after, std::chrono::nanoseconds drain,
                                      std::uint64_t first_id) {
  if (!(rate > 0)) throw std::invalid_argument("an open-loop step needs a rate above zero");
  impl_->reopen();
  plan p;
  p.count = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(rate * std::chrono::duration<double>(duration).count()));
  p.period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate));
  p.first_id = first_id;
  // A little lead, so every connection's coroutine is waiting before the first request is due.
  p.start = clock::now() + std::chrono::milliseconds(1);
  p.cutoff = p.start + duration + cutoff_after;
  p.drain_deadline = capped(p.cutoff, drain, impl_->setup.deadline);
  return impl_->run(p, rate);
}

step_result load_generator::closed_loop(std::uint64_t first_id, std::uint64_t count, std::chrono::nanoseconds drain) {
  impl_->reopen();
  plan p;
  p.count = count;
  p.first_id = first_id;
  p.start = clock::now();
  p.cutoff = capped(p.start, drain, impl_->setup.deadline);
  p.drain_deadline = p.cutoff;
  return impl_->run(p, 0);
}

// ---------------------------------------------------------------------------------------------
// The echo server the generator's capacity is measured against: the handshake, then every task
// request answered at once with value 0.

namespace {

loop_task<void> echo_connection(tcp_socket socket) {
  detail::frame_buffers buffers;
  std::array<std::uint8_t, detail::result_frame_size> answer{};
  const wire::bytes welcome = wire::encode_frame(wire::welcome{});
  for (;;) {
    const wire::frame_read r = co_await detail::read_frame(socket, buffers, wire::max_payload);
    if (!r.ok()) co_return;
    if (std::holds_alternative<wire::hello>(r.msg)) {
      const auto [e, n] = co_await asio::async_write(socket, asio::buffer(welcome), use_loop_tuple);
      if (e) co_return;
    } else if (const auto* request = std::get_if<wire::task_request>(&r.msg)) {
      detail::encode_result(answer, request->id, 0);
      const auto [e, n] = co_await asio::async_write(socket, asio::buffer(answer), use_loop_tuple);
      if (e) co_return;
    } else {
      co_return;
    }
  }
}

loop_task<void> echo_accept(detail::tcp_acceptor& acceptor) {
  for (;;) {
    auto [e, socket] = co_await acceptor.async_accept(use_loop_tuple);
    if (e) co_return;  // closed: the measurement is over
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    asio::co_spawn(acceptor.get_executor(), echo_connection(std::move(socket)), asio::detached);
  }
}


// The generator with an echo server on its own loop and thread in this process, for as long as
// it lives.
class echo_bench {
 public:
  echo_bench(unsigned connections, unsigned threads, std::uint32_t payload_bytes)
      : acceptor_(loop_.get_executor(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        payload_(std::max<std::uint32_t>(1, payload_bytes), 0x5a) {
    asio::co_spawn(loop_.get_executor(), echo_accept(acceptor_), asio::detached);
    server_ = std::thread([this] { loop_.run(); });
    generator_setup setup;
    setup.servers = {{"127.0.0.1", acceptor_.local_endpoint().port()}};
    setup.connections = connections;
    setup.threads = threads;
    setup.payload_bytes = payload_bytes;
    setup.payloads = payload_.data();
    setup.counters = &counters_;
    try {
      generator_.emplace(std::move(setup));
    } catch (...) {
      stop();
      throw;
    }
  }
  ~echo_bench() {
    generator_.reset();
    stop();
  }
  echo_bench(const echo_bench&) = delete;
  echo_bench& operator=(const echo_bench&) = delete;

  // `count` requests closed loop: how long they took, connections already open.
  step_result requests(std::uint64_t count) {
    step_result r = generator_->closed_loop(next_, count, std::chrono::seconds(10));
    next_ += count;
    if (r.errors > 0) throw std::runtime_error("the generator against an echo server failed: " + r.first_error);
    return r;
  }

 private:
  void stop() {
    loop_.stop();
    if (server_.joinable()) server_.join();
  }

  asio::io_context loop_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(loop_);
  detail::tcp_acceptor acceptor_;
  std::vector<std::uint8_t> payload_;
  remote_counters counters_;
  std::thread server_;
  std::optional<load_generator> generator_;
  std::uint64_t next_ = 0;
};

}  // namespace

double echo_capacity_rps(unsigned connections, unsigned threads, std::uint32_t payload_bytes,
                         std::chrono::nanoseconds duration) {
  echo_bench bench(connections, threads, payload_bytes);
  // Closed loop in rounds until `duration` has passed: the rate over all of them.
  std::uint64_t completed = 0;
  double seconds = 0;
  std::uint64_t round = 1000;
  const clock::time_point until = clock::now() + duration;
  do {
    const step_result r = bench.requests(round);
    completed += r.completed;
    seconds += r.elapsed_seconds;
    round = std::min<std::uint64_t>(round * 2, 1u << 20);
  } while (clock::now() < until);
  return seconds > 0 ? static_cast<double>(completed) / seconds : 0.0;
}

std::int64_t echo_requests_ns(unsigned connections, unsigned threads, std::uint32_t payload_bytes,
                              std::uint64_t count) {
  echo_bench bench(connections, threads, payload_bytes);
  return static_cast<std::int64_t>(bench.requests(count).elapsed_seconds * 1e9);
}

}  // namespace cmbench::server
