// The slow-link proxy (harness/link_proxy.hpp) against servers of this test on loopback: the delay
// and the jitter a chunk gets, order and bytes kept, the rate one link carries and shares, ends and
// resets passed on, what a clear waits for, its buffering bounded, its cost measured, and no
// process left. Bounds are one-sided where the link's semantics promise them (never sooner than
// the conditions say) and generous on the other side: the machine is shared and noisy.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/link_proxy.hpp"
#include "models/median.hpp"

namespace cmbench {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point start) { return std::chrono::duration<double>(steady::now() - start).count(); }

wire::deadline soon() { return wire::deadline_in(30s); }

// A loopback server: every connection it accepts runs `handler` on a thread of its own. Each test
// starts its proxy first: the proxy is a fork, which is simplest from a process with one thread.
class test_server {
 public:
  explicit test_server(std::function<void(int)> handler)
      : listener_(wire::listen_tcp("127.0.0.1", 0)), handler_(std::move(handler)) {
    acceptor_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        wire::unique_fd fd = wire::accept_until(listener_.fd.get(), wire::deadline_in(20ms));
        if (!fd) continue;
        ++accepted_;
        handlers_.emplace_back([this, f = std::move(fd)] { handler_(f.get()); });
      }
    });
  }
  ~test_server() {
    acceptor_.request_stop();
    acceptor_.join();
  }
  node_address address() const { return {"127.0.0.1", listener_.port}; }
  int accepted() const { return accepted_; }

 private:
  wire::listener listener_;
  std::function<void(int)> handler_;
  std::atomic<int> accepted_{0};
  std::vector<std::jthread> handlers_;  // joined after the acceptor (declared before it)
  std::jthread acceptor_;
};

// Echoes whatever it reads until the end of stream, then ends its side too.
void echo(int fd) {
  std::vector<std::uint8_t> buffer(64 << 10);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) return;
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    if (!wire::write_all(fd, {buffer.data(), static_cast<std::size_t>(n)}, soon())) return;
  }
  ::shutdown(fd, SHUT_WR);
}

// Reads until the end of stream, then answers the byte count (8 bytes, little-endian).
std::uint64_t count_to_end(int fd) {
  std::vector<std::uint8_t> buffer(64 << 10);
  std::uint64_t count = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) return count;
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    count += static_cast<std::uint64_t>(n);
  }
  return count;
}

void sink(int fd) {
  const std::uint64_t count = count_to_end(fd);
  std::array<std::uint8_t, 8> answer{};
  for (std::size_t i = 0; i < 8; ++i) answer[i] = static_cast<std::uint8_t>(count >> (8 * i));
  (void)wire::write_all(fd, answer, soon());
}

wire::unique_fd connect_to(const node_address& at) { return wire::connect_tcp(at.host, at.port, soon()); }

std::string read_to_end(int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) return text + "<timeout>";
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

// Sends `bytes` to a sink and waits for its count; the seconds that took.
double send_and_count(const node_address& at, std::size_t bytes) {
  const auto start = steady::now();
  wire::unique_fd fd = connect_to(at);
  const std::vector<std::uint8_t> block(bytes, 0x42);
  EXPECT_TRUE(wire::write_all(fd.get(), block, soon()));
  ::shutdown(fd.get(), SHUT_WR);
  std::array<std::uint8_t, 8> answer{};
  EXPECT_TRUE(wire::read_exact(fd.get(), answer, soon()));
  std::uint64_t count = 0;
  for (std::size_t i = 0; i < 8; ++i) count |= static_cast<std::uint64_t>(answer[i]) << (8 * i);
  EXPECT_EQ(count, bytes);
  return seconds_since(start);
}

TEST(link_proxy, delay_applies_to_each_direction) {
  link_proxy proxy;
  test_server server(echo);
  const auto delay = 20ms;
  const node_address at = proxy.route({server.address()}, parse_link("delay=20ms")).front();
  EXPECT_EQ(at.host, "127.0.0.1");
  EXPECT_NE(at.port, server.address().port);
  wire::unique_fd fd = connect_to(at);
  std::vector<double> trips;
  for (int i = 0; i < 5; ++i) {
    std::array<std::uint8_t, 16> message{};
    message.fill(static_cast<std::uint8_t>(i));
    const auto start = steady::now();
    ASSERT_TRUE(wire::write_all(fd.get(), message, soon()));
    std::array<std::uint8_t, 16> back{};
    ASSERT_TRUE(wire::read_exact(fd.get(), back, soon()));
    trips.push_back(seconds_since(start));
    EXPECT_EQ(back, message);
  }
  const double least = 2 * std::chrono::duration<double>(delay).count();
  for (const double t : trips) EXPECT_GE(t, least);  // a round trip crosses the link twice
  EXPECT_LE(median(trips), least + 0.5);
  fd.reset();
  const proxy_totals totals = proxy.clear(5s);
  EXPECT_EQ(totals.connections, 1u);
  EXPECT_EQ(totals.bytes_to_targets, 5u * 16);
  EXPECT_EQ(totals.bytes_from_targets, 5u * 16);
  EXPECT_EQ(totals.dropped_bytes, 0u);
}

// Messages sent one way, a millisecond apart, each stamped with its number and its send time.
TEST(link_proxy, jitter_spreads_delays_within_bounds_and_keeps_order_and_bytes) {
  constexpr int messages = 300;
  constexpr std::size_t size = 40;
  const link_conditions conditions = parse_link("delay=6ms,jitter=4ms");
  std::vector<double> one_way;  // seconds, in the order received
  std::vector<std::uint64_t> numbers;
  std::mutex m;
  link_proxy proxy;
  test_server server([&](int fd) {
    for (int i = 0; i < messages; ++i) {
      std::array<std::uint8_t, size> message{};
      if (!wire::read_exact(fd, message, soon())) return;
      const auto received = steady::now().time_since_epoch().count();
      std::uint64_t number = 0;
      std::int64_t sent = 0;
      std::memcpy(&number, message.data(), 8);
      std::memcpy(&sent, message.data() + 8, 8);
      bool filled = true;  // the rest of the message is its number's byte, unaltered
      for (std::size_t b = 16; b < size; ++b) filled = filled && message[b] == static_cast<std::uint8_t>(number);
      std::lock_guard lock(m);
      numbers.push_back(filled ? number : ~std::uint64_t{0});
      one_way.push_back(std::chrono::duration<double>(steady::duration(received - sent)).count());
    }
  });
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, conditions).front());
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::array<std::uint8_t, size> message{};
    message.fill(static_cast<std::uint8_t>(i));
    const std::int64_t sent = steady::now().time_since_epoch().count();
    std::memcpy(message.data(), &i, 8);
    std::memcpy(message.data() + 8, &sent, 8);
    ASSERT_TRUE(wire::write_all(fd.get(), message, soon()));
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(
      [&] {
        for (int i = 0; i < 3000; ++i) {
          {
            std::lock_guard lock(m);
            if (numbers.size() == messages) return true;
          }
          std::this_thread::sleep_for(1ms);
        }
        return false;
      }());
  std::lock_guard lock(m);
  for (std::uint64_t i = 0; i < messages; ++i) ASSERT_EQ(numbers[i], i) << "out of order or altered";
  const double low = std::chrono::duration<double>(conditions.delay - conditions.jitter).count();
  const double high = std::chrono::duration<double>(conditions.delay + conditions.jitter).count();
  for (const double t : one_way) EXPECT_GE(t, low);  // never sooner than delay - jitter
  const double least = *std::min_element(one_way.begin(), one_way.end());
  const double most = *std::max_element(one_way.begin(), one_way.end());
  // Spread: the samples cover most of [delay - jitter, delay + jitter] (a later message may wait
  // for an earlier one, never the other way), and a median near the delay.
  EXPECT_GE(most - least, std::chrono::duration<double>(conditions.jitter).count());
  EXPECT_LE(median(one_way), high + 0.2);
  fd.reset();
  EXPECT_EQ(proxy.clear(5s).dropped_bytes, 0u);
}

TEST(link_proxy, rate_bounds_the_time_to_carry_bytes) {
  link_proxy proxy;
  test_server server(sink);
  const link_conditions conditions = parse_link("rate=16mbit");  // 2 MB/s
  const std::size_t bytes = 1'000'000;
  const node_address at = proxy.route({server.address()}, conditions).front();
  const double least = conditions.serialisation_seconds(bytes);  // 0.5 s
  const double took = send_and_count(at, bytes);
  EXPECT_GE(took, least);
  EXPECT_LE(took, 4 * least + 2);
  EXPECT_EQ(proxy.clear(5s).dropped_bytes, 0u);
}

// Two connections, through two listeners of the same target, share its link: together they take
// as long as one carrying both's bytes.
TEST(link_proxy, connections_to_one_target_share_its_rate) {
  link_proxy proxy;
  test_server server(sink);
  const link_conditions conditions = parse_link("rate=16mbit");
  const std::vector<node_address> at = proxy.route({server.address(), server.address()}, conditions);
  ASSERT_EQ(at.size(), 2u);
  EXPECT_NE(at[0].port, at[1].port);
  const std::size_t each = 500'000;
  const auto start = steady::now();
  {
    std::jthread a([&] { send_and_count(at[0], each); });
    std::jthread b([&] { send_and_count(at[1], each); });
  }
  const double took = seconds_since(start);
  const double least = conditions.serialisation_seconds(2 * each);
  EXPECT_GE(took, least);
  EXPECT_LE(took, 4 * least + 2);
  EXPECT_EQ(server.accepted(), 2);
  const proxy_totals totals = proxy.clear(5s);
  EXPECT_EQ(totals.connections, 2u);
  EXPECT_EQ(totals.bytes_to_targets, 2 * each);
}

// Any list of addresses: one listener per target, each reaching its own.
TEST(link_proxy, routes_each_target_of_a_list_to_itself) {
  auto named = [](char name) {
    return [name](int fd) {
      (void)count_to_end(fd);
      (void)wire::write_all(fd, {reinterpret_cast<const std::uint8_t*>(&name), 1}, soon());
    };
  };
  link_proxy proxy;
  test_server a(named('a')), b(named('b')), c(named('c'));
  const std::vector<node_address> at =
      proxy.route({a.address(), b.address(), c.address()}, parse_link("delay=1ms,rate=1gbit"));
  ASSERT_EQ(at.size(), 3u);
  std::string seen;
  for (const node_address& to : at) {
    wire::unique_fd fd = connect_to(to);
    ::shutdown(fd.get(), SHUT_WR);
    seen += read_to_end(fd.get());
  }
  EXPECT_EQ(seen, "abc");
  EXPECT_EQ(proxy.clear(5s).connections, 3u);
}

TEST(link_proxy, bulk_bytes_through_an_echo_come_back_unaltered) {
  link_proxy proxy;
  test_server server(echo);
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=1ms,jitter=1ms")).front());
  std::vector<std::uint8_t> sent(12 << 20);
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<std::uint8_t>(i * 7 + i / 4099);
  std::jthread writer([&] {
    EXPECT_TRUE(wire::write_all(fd.get(), sent, soon()));
    ::shutdown(fd.get(), SHUT_WR);
  });
  std::vector<std::uint8_t> back(sent.size());
  ASSERT_TRUE(wire::read_exact(fd.get(), back, soon()));
  writer.join();
  EXPECT_TRUE(back == sent);
  EXPECT_EQ(read_to_end(fd.get()), "");  // then the end of stream, passed on from the echo
  fd.reset();
  EXPECT_EQ(proxy.clear(5s).dropped_bytes, 0u);
}

TEST(link_proxy, ends_pass_on_after_what_is_queued) {
  // The client ends its side: the server reads everything, then the end; it answers and ends.
  link_proxy proxy;
  test_server server([](int fd) {
    const std::string got = read_to_end(fd);
    const std::string reply = "got " + got;
    (void)wire::write_all(fd, {reinterpret_cast<const std::uint8_t*>(reply.data()), reply.size()}, soon());
  });  // the handler returns and the fd closes
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=30ms")).front());
  const std::string hello = "hello";
  ASSERT_TRUE(wire::write_all(fd.get(), {reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size()}, soon()));
  ::shutdown(fd.get(), SHUT_WR);
  EXPECT_EQ(read_to_end(fd.get()), "got hello");
  fd.reset();
  const proxy_totals totals = proxy.clear(5s);
  EXPECT_EQ(totals.undrained, 0u);
  EXPECT_EQ(totals.dropped_bytes, 0u);
}

TEST(link_proxy, a_reset_closes_the_other_side) {
  std::atomic<bool> ended{false};
  link_proxy proxy;
  test_server server([&](int fd) {
    (void)read_to_end(fd);  // the end of stream, or the reset
    ended = true;
  });
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=5ms")).front());
  const linger abort{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  fd.reset();  // a reset
  for (int i = 0; i < 500 && !ended; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(ended);
  EXPECT_EQ(proxy.clear(5s).undrained, 0u);
}

// A clear waits for what the clients sent to reach the targets: the suite stops the nodes right
// after, and their byte counts must match the coordinator's.
TEST(link_proxy, clear_delivers_what_is_queued_before_it_answers) {
  std::atomic<std::uint64_t> counted{0};
  std::atomic<bool> ended{false};
  link_proxy proxy;
  test_server server([&](int fd) {
    counted = count_to_end(fd);
    ended = true;
  });
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=300ms")).front());
  const std::vector<std::uint8_t> bytes(10'000, 1);
  ASSERT_TRUE(wire::write_all(fd.get(), bytes, soon()));
  fd.reset();
  const auto start = steady::now();
  const proxy_totals totals = proxy.clear(10s);
  EXPECT_GE(seconds_since(start), 0.2);  // it waited for the delayed bytes
  EXPECT_EQ(totals.undrained, 0u);
  EXPECT_EQ(totals.dropped_bytes, 0u);
  EXPECT_EQ(totals.bytes_to_targets, bytes.size());
  for (int i = 0; i < 500 && !ended; ++i) std::this_thread::sleep_for(10ms);  // the server's thread reads them
  EXPECT_EQ(counted, bytes.size());
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// A target that never reads: the proxy stops reading the sender once 4 MiB are queued, so the
// sender is held back (by TCP's windows) and the proxy's memory stays bounded.
TEST(link_proxy, a_fast_sender_cannot_grow_its_memory_without_bound) {
  std::atomic<bool> stop{false};
  link_proxy proxy;
  test_server server([&](int) {
    while (!stop) std::this_thread::sleep_for(5ms);
  });
  const std::int64_t before = rss_kib(proxy.pid());
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=1ms")).front());
  const std::vector<std::uint8_t> block(64 << 10, 7);
  std::size_t sent = 0;
  const auto start = steady::now();
  while (seconds_since(start) < 1.5 && sent < (std::size_t{128} << 20)) {
    const ssize_t n = ::send(fd.get(), block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::size_t>(n);
    else std::this_thread::sleep_for(1ms);
  }
  const std::int64_t during = rss_kib(proxy.pid());
  // Kernel buffers (a few MiB each way on loopback) and the proxy's 4 MiB: well under 64 MiB.
  EXPECT_LT(sent, std::size_t{64} << 20);
  EXPECT_LT(during - before, 24 << 10) << "KiB, proxy RSS before " << before;
  stop = true;
  fd.reset();
  (void)proxy.clear(0ms);
}

TEST(link_proxy, refuses_a_target_it_cannot_route_and_goes_on) {
  link_proxy proxy;
  test_server server(echo);
  EXPECT_THROW(proxy.route({{"no-such-host.invalid", 1}}, parse_link("delay=1ms")), std::runtime_error);
  (void)proxy.route({server.address()}, parse_link("delay=1ms"));
  try {
    (void)proxy.route({server.address()}, parse_link("delay=2ms"));
    ADD_FAILURE() << "routed one target with two conditions";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("other conditions"), std::string::npos) << e.what();
  }
  (void)proxy.clear(1s);
  // A cleared proxy forgets the links: the target takes new conditions.
  wire::unique_fd fd = connect_to(proxy.route({server.address()}, parse_link("delay=2ms")).front());
  const std::array<std::uint8_t, 3> message{1, 2, 3};
  ASSERT_TRUE(wire::write_all(fd.get(), message, soon()));
  std::array<std::uint8_t, 3> back{};
  ASSERT_TRUE(wire::read_exact(fd.get(), back, soon()));
  EXPECT_EQ(back, message);
}

TEST(link_proxy, a_target_that_refuses_ends_the_client_connection) {
  node_address closed;
  {
    const wire::listener gone = wire::listen_tcp("127.0.0.1", 0);  // closed at once: nothing listens there
    closed = {"127.0.0.1", gone.port};
  }
  link_proxy proxy;
  wire::unique_fd fd = connect_to(proxy.route({closed}, parse_link("delay=1ms")).front());
  EXPECT_EQ(read_to_end(fd.get()), "");
  fd.reset();
  const proxy_totals totals = proxy.clear(1s);
  EXPECT_EQ(totals.connections, 1u);
  EXPECT_EQ(totals.failed_connects, 1u);
}

TEST(link_proxy, measures_its_own_cost) {
  link_proxy proxy;
  const link_cost cost = measure_link_cost(proxy);
  EXPECT_GT(cost.direct_round_trip_ns, 0);
  EXPECT_GT(cost.proxied_round_trip_ns, 0);
  EXPECT_DOUBLE_EQ(cost.proxy_added_round_trip_ns, cost.proxied_round_trip_ns - cost.direct_round_trip_ns);
  EXPECT_GT(cost.proxy_capacity_bytes_per_second, 0);
  EXPECT_GT(cost.direct_capacity_bytes_per_second, 0);
  const auto j = link_context(parse_link("delay=1ms"), cost, proxy.listen_host());
  EXPECT_EQ(j.at("given"), "delay=1ms");
  EXPECT_EQ(j.at("proxy_added_round_trip_ns").get<double>(), cost.proxy_added_round_trip_ns);
  EXPECT_EQ(j.at("proxy_capacity_bytes_per_second").get<double>(), cost.proxy_capacity_bytes_per_second);
  EXPECT_EQ(j.at("direct_round_trip_ns").get<double>(), cost.direct_round_trip_ns);
  // The proxy is usable after: the measurement cleared its routes.
  test_server server(echo);
  (void)proxy.route({server.address()}, parse_link("delay=3ms"));
}

// Alive and not a zombie (an orphan's zombie waits for whichever process reaps orphans here).
bool running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// Nothing of the proxy outlives its handle, nor the process that started it.
TEST(link_proxy, leaves_no_process) {
  pid_t pid = 0;
  {
    link_proxy proxy;
    pid = proxy.pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no child of this test left, zombie or not

  // A process that dies outright (no destructor runs): its proxy goes with it.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t owner = ::fork();
  if (owner == 0) {
    ::close(fds[0]);
    auto* proxy = new link_proxy();  // never deleted: the owner ends without clean-up
    const pid_t proxied = proxy->pid();
    (void)!::write(fds[1], &proxied, sizeof proxied);
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t orphan = 0;
  ASSERT_EQ(::read(fds[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
  ::close(fds[0]);
  ::waitpid(owner, nullptr, 0);
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = !running(orphan);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "the proxy " << orphan << " outlived the process that started it";
}

}  // namespace
}  // namespace cmbench
