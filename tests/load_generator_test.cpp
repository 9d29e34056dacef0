// The server workload's load generator against servers the test scripts: one that stalls (the
// stall must show in the latency timed from each request's due time, where a closed-loop
// measurement, timed from the actual send, hides it), one that answers wrongly, one that drops a
// connection; and what it counts on the wire, byte for byte.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "models/wire/io.hpp"
#include "workloads/server/load_generator.hpp"

namespace cmbench {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr std::uint32_t slots = 4;
std::uint64_t right_value(std::uint64_t id) { return (id % slots) * 7 + 1; }
wire::message right(std::uint64_t id) { return wire::task_result{id, right_value(id)}; }

// A blocking test server on 127.0.0.1: a thread per connection, the handshake, then each request
// answered after whatever `before_answer(id)` does; it returns the frame to send back, or nullopt
// to drop the connection instead.
class scripted_server {
 public:
  using script = std::function<std::optional<wire::message>(std::uint64_t id)>;
  explicit scripted_server(script before_answer)
      : listener_(wire::listen_tcp("127.0.0.1", 0)), script_(std::move(before_answer)) {
    acceptor_ = std::thread([this] {
      for (;;) {
        wire::unique_fd fd;
        try {
          fd = wire::accept_until(listener_.fd.get(), wire::deadline_in(60'000ms));
        } catch (const std::system_error&) {
          return;  // the listening socket was shut down: the test is over
        }
        if (!fd || stopping_) return;
        const std::lock_guard lock(mutex_);
        fds_.push_back(fd.get());
        threads_.emplace_back([this, c = std::move(fd)]() mutable { serve(std::move(c)); });
      }
    });
  }
  ~scripted_server() {
    stopping_ = true;
    ::shutdown(listener_.fd.get(), SHUT_RDWR);
    acceptor_.join();
    const std::lock_guard lock(mutex_);
    for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : threads_) t.join();
  }
  node_address address() const { return {"127.0.0.1", listener_.port}; }
  std::uint64_t bytes_received() const { return received_; }
  std::uint64_t bytes_sent() const { return sent_; }
  std::uint64_t connections() const { return connections_; }

 private:
  void serve(wire::unique_fd fd) {
    ++connections_;
    const wire::handshake_result h = wire::serve_handshake(fd.get(), "", wire::role::coordinator);
    if (!h) return;
    received_ += wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, ""}).size();
    sent_ += wire::encode_frame(wire::welcome{}).size();
    for (;;) {
      const wire::frame_read r = wire::read_frame(fd.get(), wire::deadline_in(60'000ms));
      received_ += r.io.transferred;
      const auto* request = r.ok() ? std::get_if<wire::task_request>(&r.msg) : nullptr;
      if (request == nullptr) return;
      const std::optional<wire::message> answer = script_(request->id);
      if (!answer) return;
      const wire::io_result w = wire::write_frame(fd.get(), *answer, wire::deadline_in(5s));
      sent_ += w.transferred;
      if (!w) return;
    }
  }

  wire::listener listener_;
  script script_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> received_{0}, sent_{0}, connections_{0};
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

struct generator_fixture {
  explicit generator_fixture(const scripted_server& server, unsigned connections = 1, unsigned threads = 1) {
    for (std::uint32_t s = 0; s < slots; ++s) expected[s] = right_value(s);
    setup.servers = {server.address()};
    setup.connections = connections;
    setup.threads = threads;
    setup.payload_bytes = 8;
    setup.slots = slots;
    setup.payloads = payloads.data();
    setup.expected = expected.data();
    setup.counters = &counters;
    setup.deadline = clock::now() + 60s;
  }
  std::array<std::uint8_t, slots * 8> payloads{};
  std::array<std::uint64_t, slots> expected{};
  remote_counters counters;
  server::generator_setup setup;
};

TEST(load_generator, a_stall_shows_in_the_latency_from_due_times_and_hides_from_the_send_times) {
  std::atomic<bool> stalled{false};
  scripted_server server([&](std::uint64_t id) -> std::optional<wire::message> {
    // One stall of 300 ms, a fifth of the way in; every other request answered at once.
    if (id == 200 && !stalled.exchange(true)) std::this_thread::sleep_for(300ms);
    return right(id);
  });
  generator_fixture f(server);
  server::load_generator generator(f.setup);
  const server::step_result r = generator.open_loop(1000, 1s, 2s, 5s, 0);
  ASSERT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_EQ(r.scheduled, 1000u);
  EXPECT_EQ(r.completed, 1000u);
  EXPECT_EQ(r.unsent, 0u);
  // About 300 requests were due during the stall and waited behind it, up to 300 ms: more than
  // 1% of them, so the p99 from the due time is most of the stall.
  EXPECT_GT(r.latency.percentile(99), std::uint64_t{150'000'000}) << "the stall was hidden";
  EXPECT_GE(r.latency.max(), std::uint64_t{250'000'000});
  // Timed from the actual send, as a closed-loop client times, only the stalled request is slow:
  // its p99 does not see the stall.
  EXPECT_LT(r.service.percentile(99), std::uint64_t{100'000'000});
  EXPECT_GE(r.service.max(), std::uint64_t{250'000'000});
}

TEST(load_generator, requests_still_unsent_at_the_cutoff_are_counted_and_timed_to_it) {
  scripted_server server([](std::uint64_t id) -> std::optional<wire::message> {
    if (id == 0) std::this_thread::sleep_for(400ms);  // the only connection is held past the cutoff
    return right(id);
  });
  generator_fixture f(server);
  server::load_generator generator(f.setup);
  const server::step_result r = generator.open_loop(1000, 100ms, 50ms, 5s, 0);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_EQ(r.completed, 1u);
  EXPECT_EQ(r.unsent, r.scheduled - 1);
  EXPECT_EQ(r.latency.count(), r.scheduled) << "every unsent request is timed, to the cutoff";
  EXPECT_GE(r.latency.max(), std::uint64_t{50'000'000});
  EXPECT_LT(r.achieved_rps(), 100.0);
}

TEST(load_generator, a_wrong_answer_is_an_error_naming_the_request) {
  scripted_server server([](std::uint64_t id) -> std::optional<wire::message> {
    return id == 5 ? wire::message(wire::task_result{id, right_value(id) + 1}) : right(id);
  });
  generator_fixture f(server, 2);
  server::load_generator generator(f.setup);
  const server::step_result r = generator.closed_loop(0, 20, 5s);
  EXPECT_EQ(r.wrong, 1u);
  // Request 5's connection (5 % 2) is dropped: its answers can no longer be trusted, and its
  // later requests (7, 9, ..., 19) fail.
  EXPECT_EQ(r.completed, 12u);
  EXPECT_EQ(r.errors, 8u);
  EXPECT_NE(r.first_wrong.find("request 5"), std::string::npos) << r.first_wrong;
  // The received values hold the wrong one: a sum over them differs from the right sum.
  std::uint64_t right_sum = 0;
  for (std::uint64_t id = 0; id <= 5; ++id) right_sum += right_value(id);
  for (std::uint64_t id = 0; id < 20; id += 2) right_sum += id > 5 ? right_value(id) : 0;
  EXPECT_EQ(r.received_sum, right_sum + 1);
}

TEST(load_generator, another_requests_answer_or_an_error_frame_is_a_wrong_answer) {
  scripted_server server([](std::uint64_t id) -> std::optional<wire::message> {
    if (id == 3) return wire::task_result{id + 1, right_value(id + 1)};  // a reply meant for another request
    if (id == 4) return wire::error{id, "no"};
    return right(id);
  });
  generator_fixture f(server, 2);
  server::load_generator generator(f.setup);
  const server::step_result r = generator.closed_loop(0, 6, 5s);
  EXPECT_EQ(r.wrong, 2u);
  EXPECT_EQ(r.completed, 3u);  // 0, 1, 2; 5 went on 3's dropped connection
  EXPECT_EQ(r.completed + r.errors, 6u);
}

TEST(load_generator, the_drain_deadline_drops_only_the_connections_still_waiting) {
  std::atomic<bool> held{false};
  scripted_server server([&](std::uint64_t id) -> std::optional<wire::message> {
    if (id == 1 && !held.exchange(true)) std::this_thread::sleep_for(1500ms);
    return right(id);
  });
  generator_fixture f(server, 2);
  server::load_generator generator(f.setup);
  const server::step_result first = generator.open_loop(200, 20ms, 50ms, 200ms, 0);
  EXPECT_TRUE(first.expired);
  EXPECT_GE(first.errors, 1u);
  EXPECT_EQ(first.completed + first.unsent + first.errors, first.scheduled);
  // Connection 0 had finished: it is kept, and nothing fails on it in the next step; connection 1
  // is opened again.
  std::this_thread::sleep_for(1500ms);
  const server::step_result second = generator.open_loop(200, 50ms, 1s, 5s, 100);
  EXPECT_FALSE(second.expired);
  EXPECT_EQ(second.errors, 0u) << second.first_error;
  EXPECT_EQ(second.completed, second.scheduled);
  EXPECT_EQ(server.connections(), 3u);
}

TEST(load_generator, a_dropped_connection_fails_its_requests_and_is_reopened_for_the_next_step) {
  std::atomic<bool> dropped{false};
  scripted_server server([&](std::uint64_t id) -> std::optional<wire::message> {
    if (id == 10 && !dropped.exchange(true)) return std::nullopt;  // the connection closes
    return right(id);
  });
  generator_fixture f(server);
  server::load_generator generator(f.setup);
  const server::step_result first = generator.closed_loop(0, 30, 5s);
  EXPECT_EQ(first.completed, 10u);
  EXPECT_EQ(first.errors, 20u) << "the lost request and every later one of its connection";
  EXPECT_FALSE(first.first_error.empty());
  const server::step_result second = generator.closed_loop(30, 30, 5s);
  EXPECT_EQ(second.errors, 0u) << second.first_error;
  EXPECT_EQ(second.completed, 30u);
  EXPECT_EQ(server.connections(), 2u);
}

TEST(load_generator, counts_every_connection_and_byte_as_the_server_sees_them) {
  scripted_server server([](std::uint64_t id) -> std::optional<wire::message> { return right(id); });
  {
    generator_fixture f(server, 3, 2);
    server::load_generator generator(f.setup);
    const server::step_result r = generator.open_loop(2000, 100ms, 1s, 5s, 0);
    ASSERT_EQ(r.errors, 0u) << r.first_error;
    EXPECT_EQ(r.completed, r.scheduled);
    std::uint64_t sum = 0;
    for (std::uint64_t id = 0; id < r.scheduled; ++id) sum += right_value(id);
    EXPECT_EQ(r.value_sum, sum);
    EXPECT_EQ(f.counters.connections.load(), 3u);
    // The server has read everything once the generator has its last answer.
    EXPECT_EQ(f.counters.bytes_sent.load(), server.bytes_received());
    EXPECT_EQ(f.counters.bytes_received.load(), server.bytes_sent());
  }
}

TEST(load_generator, measures_its_own_capacity_against_an_echo_server) {
  const double rps = server::echo_capacity_rps(4, 1, 64, 50ms);
  EXPECT_GT(rps, 100.0);
}

}  // namespace
}  // namespace cmbench
