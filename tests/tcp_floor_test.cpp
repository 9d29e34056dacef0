// The loopback TCP floors (models/floors/tcp_probes.cpp): both probes time every round trip, are
// measured like the local floors, and leave no descriptor, thread or process behind, whether they
// succeed or fail; a failure (a port taken, a server gone mid-volley) throws instead of hanging.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "models/floors/probes.hpp"
#include "models/floors/tcp_probes.hpp"

namespace cmbench::floors {
namespace {

std::size_t entries(const char* directory) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(directory)) ++count;
  return count;
}

// What a probe may leave behind: descriptors, threads, children (reaped or not).
struct leftovers {
  std::size_t fds = entries("/proc/self/fd");
  std::size_t threads = entries("/proc/self/task");
};

bool has_children() {
  errno = 0;
  return !(::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD);
}

void expect_nothing_left(const leftovers& before) {
  const leftovers after;
  EXPECT_EQ(after.fds, before.fds) << "a descriptor was left open";
  EXPECT_EQ(after.threads, before.threads) << "a thread was left running";
  EXPECT_FALSE(has_children()) << "a server process was left, running or unreaped";
}

constexpr std::string_view probe_names[] = {"tcp_round_trip", "tcp_round_trip_same_cpu", "tcp_round_trip_cross_cpu",
                                            "asio_tcp_round_trip"};

TEST(tcp_floor, both_probes_time_every_round_trip_and_leave_nothing_behind) {
  ASSERT_FALSE(has_children());
  for (const auto name : probe_names) {
    SCOPED_TRACE(name);
    const probe* p = find_probe(name);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->timed_each);
    EXPECT_EQ(p->per, "round trip");
    const leftovers before;
    std::vector<std::uint32_t> each;
    try {
      const std::int64_t ns = p->run(20, &each);
      EXPECT_GT(ns, 0);
      ASSERT_EQ(each.size(), 20u);
      std::int64_t sum = 0;
      for (const auto e : each) {
        EXPECT_GT(e, 0u);
        sum += e;
      }
      EXPECT_LE(sum, ns + 1000) << "the round trips timed one by one add up to no more than the volley";
      EXPECT_GT(p->run(1, nullptr), 0);
    } catch (const not_applicable&) {
      EXPECT_TRUE(name.ends_with("_cross_cpu")) << "only the cross-CPU placement needs two CPUs";
    }
    expect_nothing_left(before);
  }
}

TEST(tcp_floor, both_probes_are_measured_like_the_local_floors) {
  for (const auto name : {"tcp_round_trip", "asio_tcp_round_trip"}) {
    SCOPED_TRACE(name);
    const leftovers before;
    const measurement m = measure(*find_probe(name), std::chrono::milliseconds(2), 3);
    EXPECT_GT(m.ns_per_op, 0);
    EXPECT_GT(m.p50_ns, 0);
    EXPECT_EQ(m.samples_ns.size(), 3u);
    expect_nothing_left(before);
  }
}

using volley = std::function<std::int64_t(const tcp::setup&, std::uint64_t, std::vector<std::uint32_t>*)>;

struct client_kind {
  const char* name;
  volley run;
};

const client_kind kinds[] = {{"blocking", tcp::blocking_round_trip}, {"asio", tcp::asio_round_trip}};

// Runs a volley that must fail: it throws std::runtime_error naming one of `reasons`, within
// seconds, and leaves nothing behind.
void expect_failure(const client_kind& kind, const tcp::setup& s, std::uint64_t n,
                    std::initializer_list<std::string_view> reasons) {
  SCOPED_TRACE(kind.name);
  const leftovers before;
  const auto start = std::chrono::steady_clock::now();
  try {
    kind.run(s, n, nullptr);
    ADD_FAILURE() << "the volley did not fail";
  } catch (const std::runtime_error& e) {
    const std::string_view what = e.what();
    EXPECT_TRUE(std::any_of(reasons.begin(), reasons.end(), [&](auto r) { return what.find(r) != what.npos; }))
        << what;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  expect_nothing_left(before);
}

TEST(tcp_floor, a_port_already_taken_throws) {
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t size = sizeof(address);
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&address), &size), 0);
  for (const auto& kind : kinds) {
    expect_failure(kind, {.port = ntohs(address.sin_port)}, 10, {"bind 127.0.0.1:"});
  }
  ::close(taken);
}

// A server closing the connection with a request unread resets it (RST, not FIN), so the client
// may see either, and a send after that fails with EPIPE.
TEST(tcp_floor, a_server_gone_mid_volley_fails_the_probe_instead_of_hanging_it) {
  for (const auto& kind : kinds) {
    for (const std::uint64_t answers : {0, 5}) {  // before the clock, in the volley
      SCOPED_TRACE(answers);
      expect_failure(kind, {.answers = answers}, 100,
                     {"the server closed the connection", "Connection reset by peer", "Broken pipe"});
    }
  }
}

}  // namespace
}  // namespace cmbench::floors
