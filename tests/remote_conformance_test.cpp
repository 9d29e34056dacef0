// Every model's remote side: as a coordinator it gathers the right sum from nodes that serve on
// every model (itself, and serial/baseline's iterative server); as a node it answers every
// request, holds as many at once as its facts say, refuses hostile clients with a logged reason
// while serving everyone else, and a node that dies or hangs fails the coordinator's run with the
// reason before its deadline.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "models/model.hpp"
#include "models/shared_region.hpp"
#include "models/wire/blocking.hpp"
#include "tests/every_model.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t max_tasks = 4096;
constexpr const char* token = "remote-conformance-token";

// What both sides share: the counters, and what each call saw (in shared memory, since a
// process per call writes into it).
struct shared_state {
  remote_counters coordinator;
  remote_counters node;
  std::atomic<std::uint64_t> started[max_tasks];
  std::atomic<std::uint64_t> finished[max_tasks];
  std::atomic<std::uint64_t> values[max_tasks];
  std::atomic<std::uint64_t> served_by[max_tasks];  // 1 + the index of the node that served the task
  std::atomic<std::int64_t> outstanding;
  std::atomic<std::int64_t> peak_outstanding;
  std::atomic<std::uint64_t> hang_after;  // the node stops answering after this many requests (0: never)
  std::atomic<std::uint64_t> die_after;   // the node's process exits after this many (0: never)
  char log[8192];
  std::atomic<std::uint32_t> log_used;
};

void payload_of(const void*, std::uint64_t task, std::uint8_t* out, std::uint32_t bytes) {
  for (std::uint32_t i = 0; i < bytes; ++i) out[i] = static_cast<std::uint8_t>(kernels::mix64(task + i));
}

// The index a serving_node was given, set in its process before it serves (its model's processes
// inherit it): which node served a task.
int serving_index = -1;

std::uint64_t task_value(const void* context, std::uint64_t task, std::uint32_t compute_us, const std::uint8_t* payload,
                         std::uint32_t bytes) {
  auto* s = static_cast<shared_state*>(const_cast<void*>(context));
  s->served_by[task].store(static_cast<std::uint64_t>(serving_index + 1));
  const std::uint64_t served = s->node.requests.load() + 1;
  if (s->die_after.load() != 0 && served > s->die_after.load()) ::_exit(9);
  if (s->hang_after.load() != 0 && served > s->hang_after.load()) ::pause();
  std::uint64_t h = kernels::compute_round(task, 0, compute_us * kernels::numbers_per_us);
  for (std::uint32_t i = 0; i < bytes; ++i) h = kernels::mix64(h ^ payload[i]);
  return h;
}

std::uint64_t expected_value(std::uint64_t task, std::uint32_t compute_us, std::uint32_t bytes) {
  std::uint8_t payload[256];
  payload_of(nullptr, task, payload, bytes);
  std::uint64_t h = kernels::compute_round(task, 0, compute_us * kernels::numbers_per_us);
  for (std::uint32_t i = 0; i < bytes; ++i) h = kernels::mix64(h ^ payload[i]);
  return h;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

void call_started(const void* context, std::uint64_t task) {
  auto* s = static_cast<shared_state*>(const_cast<void*>(context));
  s->started[task].store(now_ns());
  const std::int64_t now = s->outstanding.fetch_add(1) + 1;
  std::int64_t peak = s->peak_outstanding.load();
  while (now > peak && !s->peak_outstanding.compare_exchange_weak(peak, now)) {
  }
}

void call_finished(const void* context, std::uint64_t task, std::uint64_t value) {
  auto* s = static_cast<shared_state*>(const_cast<void*>(context));
  s->outstanding.fetch_sub(1);
  s->values[task].store(value);
  s->finished[task].store(now_ns());
}

void log_line(const void* context, std::string_view line) {
  auto* s = static_cast<shared_state*>(const_cast<void*>(context));
  const std::string text = std::string(line) + "\n";
  const std::uint32_t at = s->log_used.fetch_add(static_cast<std::uint32_t>(text.size()));
  if (at + text.size() < sizeof s->log) std::memcpy(s->log + at, text.data(), text.size());
}

// A node serving on `model` in a process of its own, on a port the OS picked on 127.0.0.1;
// stopped (its stop pipe closed, then waited for) when it goes out of scope.
class serving_node {
 public:
  serving_node(const std::string& model, unsigned workers, shared_state* state, int index = 0) {
    wire::listener l = wire::listen_tcp("127.0.0.1", 0);
    port_ = l.port;
    int stop[2];
    if (::pipe2(stop, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    ::fcntl(l.fd.get(), F_SETFL, O_NONBLOCK);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);  // its own group: whatever it forks is stopped with it
      ::close(stop[1]);
      serving_index = index;
      int rc = 0;
      try {
        auto instance = find_model(model)->make(model_config{workers, 0});
        serve_job job;
        job.listen_fd = l.fd.get();
        job.stop_fd = stop[0];
        job.token = token;
        job.counters = &state->node;
        job.task_value = &task_value;
        job.log = &log_line;
        job.context = state;
        instance->serve(job);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "serving node: %s\n", e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    ::close(stop[0]);
    stop_ = stop[1];
  }
  serving_node(const serving_node&) = delete;
  serving_node& operator=(const serving_node&) = delete;
  ~serving_node() { stop(); }

  // Writes to its stop pipe and waits up to `wait` for the serving process; returns its exit status
  // (-1: it had to be killed).
  int stop(std::chrono::milliseconds wait = 10s) {
    if (pid_ <= 0) return status_;
    // A byte, not only the close: a node forked later holds a copy of this end (a dead node's
    // pipe has no reader: SIGPIPE is ignored, below).
    (void)!::write(stop_, "x", 1);
    ::close(stop_);
    const auto until = std::chrono::steady_clock::now() + wait;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status_ = -1;
      }
      std::this_thread::sleep_for(5ms);
    }
    ::kill(-pid_, SIGKILL);  // anything of its group still alive
    pid_ = -1;
    return status_ = status;
  }
  std::uint16_t port() const { return port_; }
  node_address address() const { return {"127.0.0.1", port_}; }

 private:
  pid_t pid_ = -1;
  int stop_ = -1;
  int status_ = 0;
  std::uint16_t port_ = 0;
};

class remote_conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    region_ = shared_region(sizeof(shared_state));
    state_ = new (region_.data()) shared_state{};
  }
  scatter_job job(std::vector<node_address> nodes, std::uint64_t tasks, std::uint32_t in_flight,
                  std::uint32_t compute_us, std::uint32_t wait_ms, std::chrono::milliseconds deadline = 60s) {
    scatter_job j;
    j.tasks = tasks;
    j.in_flight = in_flight;
    j.compute_us = compute_us;
    j.wait_ms = wait_ms;
    j.payload_bytes = 32;
    j.nodes = std::move(nodes);
    j.token = token;
    j.deadline = std::chrono::steady_clock::now() + deadline;
    j.counters = &state_->coordinator;
    j.payload_of = &payload_of;
    j.call_started = &call_started;
    j.call_finished = &call_finished;
    j.context = state_;
    return j;
  }
  void expect_every_call_answered(const scatter_job& j, std::uint64_t sum) {
    std::uint64_t expected = 0;
    for (std::uint64_t t = 0; t < j.tasks; ++t) {
      const std::uint64_t v = expected_value(t, j.compute_us, j.payload_bytes);
      expected += v;
      ASSERT_EQ(state_->values[t].load(), v) << "task " << t;
      ASSERT_NE(state_->started[t].load(), 0u) << "task " << t;
      ASSERT_GE(state_->finished[t].load(), state_->started[t].load() + j.wait_ms * 1'000'000ull) << "task " << t;
    }
    EXPECT_EQ(sum, expected);
    EXPECT_EQ(state_->node.requests.load(), j.tasks);
    EXPECT_EQ(state_->coordinator.bytes_sent.load(), state_->node.bytes_received.load());
    EXPECT_EQ(state_->coordinator.bytes_received.load(), state_->node.bytes_sent.load());
    EXPECT_EQ(state_->coordinator.connections.load(), state_->node.connections.load());
    EXPECT_EQ(state_->outstanding.load(), 0);
  }
  std::unique_ptr<model_instance> make(const std::string& name, unsigned workers, std::uint64_t max_alive = 0) {
    return find_model(name)->make(model_config{workers, max_alive});
  }

  shared_region region_;
  shared_state* state_ = nullptr;
};

TEST_P(remote_conformance, gathers_every_result_from_nodes_serving_on_the_same_model) {
  serving_node a(GetParam(), 2, state_);
  serving_node b(GetParam(), 2, state_);
  const scatter_job j = job({a.address(), b.address()}, 200, 8, 20, 0);
  auto coordinator = make(GetParam(), 4, j.in_flight);
  const std::uint64_t sum = coordinator->run_scatter(j);
  coordinator.reset();
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  expect_every_call_answered(j, sum);
  EXPECT_LE(state_->peak_outstanding.load(), 8);
}

// The contract a workload addresses nodes by (models/remote.hpp): task t goes to node t % nodes,
// whatever the model's units and connections, so every node serves exactly its own tasks.
TEST_P(remote_conformance, task_t_goes_to_node_t_mod_nodes) {
  serving_node a(GetParam(), 2, state_, 0);
  serving_node b(GetParam(), 2, state_, 1);
  serving_node c(GetParam(), 2, state_, 2);
  for (const std::uint32_t in_flight : {1u, 2u, 5u}) {  // fewer, as many and more calls at once than nodes
    for (std::uint64_t t = 0; t < max_tasks; ++t) state_->served_by[t].store(0);
    const scatter_job j = job({a.address(), b.address(), c.address()}, 60, in_flight, 0, 0);
    const std::uint64_t sum = make(GetParam(), 2, in_flight)->run_scatter(j);
    std::uint64_t expected = 0;
    for (std::uint64_t t = 0; t < j.tasks; ++t) {
      expected += expected_value(t, j.compute_us, j.payload_bytes);
      ASSERT_EQ(state_->served_by[t].load(), t % 3 + 1) << "task " << t << " with " << in_flight << " in flight";
    }
    EXPECT_EQ(sum, expected);
  }
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  EXPECT_EQ(c.stop(), 0);
}

// Tasks of different payload sizes (payload_size_of): each request carries its own task's.
std::uint32_t size_of_task(const void*, std::uint64_t task) { return static_cast<std::uint32_t>(task % 7 * 37); }

TEST_P(remote_conformance, each_task_carries_its_own_payload_size) {
  serving_node node(GetParam(), 2, state_);
  scatter_job j = job({node.address()}, 60, 4, 0, 0);
  j.payload_size_of = &size_of_task;
  const std::uint64_t sum = make(GetParam(), 2, 4)->run_scatter(j);
  EXPECT_EQ(node.stop(), 0);
  std::uint64_t expected = 0;
  for (std::uint64_t t = 0; t < j.tasks; ++t) expected += expected_value(t, 0, size_of_task(nullptr, t));
  EXPECT_EQ(sum, expected);
  EXPECT_EQ(state_->node.requests.load(), j.tasks);
}

// The waits overlap as far as both sides allow: the coordinator's calls in flight (its facts'
// `waits`, capped by in_flight) and the node's requests served at once (its facts' `serves`).
TEST_P(remote_conformance, waits_overlap_as_far_as_both_sides_allow) {
  const model_info& info = find_model(GetParam())->info;
  serving_node node(GetParam(), 3, state_);
  const std::uint32_t in_flight = 6;
  // Each wait outlasts the setting up of every unit both sides make for it (a fork per call and
  // per connection takes milliseconds on a loaded machine, several times that under ASan).
  const scatter_job j = job({node.address()}, 24, in_flight, 0, 100);
  auto coordinator = make(GetParam(), 3, in_flight);
  const std::uint64_t sum = coordinator->run_scatter(j);
  coordinator.reset();
  EXPECT_EQ(node.stop(), 0);
  expect_every_call_answered(j, sum);
  const std::uint64_t calls = std::min<std::uint64_t>(in_flight, wait_limit(info.waits, {3, in_flight}, j.tasks));
  const std::uint64_t served = std::min<std::uint64_t>(calls, wait_limit(info.serves, {3, 0}, j.tasks));
  EXPECT_LE(static_cast<std::uint64_t>(state_->peak_outstanding.load()), calls);
  EXPECT_EQ(state_->node.peak_in_flight.load(), served) << "requests served at once";
}

TEST_P(remote_conformance, coordinator_against_an_iterative_node_and_node_against_a_serial_coordinator) {
  {
    serving_node node("serial/baseline", 1, state_);
    const scatter_job j = job({node.address()}, 50, 4, 10, 0);
    const std::uint64_t sum = make(GetParam(), 2, 4)->run_scatter(j);
    EXPECT_EQ(node.stop(), 0);
    expect_every_call_answered(j, sum);
  }
  SetUp();
  {
    serving_node node(GetParam(), 2, state_);
    const scatter_job j = job({node.address()}, 50, 1, 10, 0);
    const std::uint64_t sum = make("serial/baseline", 1)->run_scatter(j);
    EXPECT_EQ(node.stop(), 0);
    expect_every_call_answered(j, sum);
  }
}

// A hostile client raw on a socket: its bytes, and what the node says back before closing.
std::string hostile(std::uint16_t port, const std::vector<std::uint8_t>& bytes, bool close_write = false) {
  wire::unique_fd fd = wire::connect_tcp("127.0.0.1", port, wire::deadline_in(5s));
  if (!bytes.empty()) (void)wire::write_all(fd.get(), bytes, wire::deadline_in(5s));
  if (close_write) ::shutdown(fd.get(), SHUT_WR);
  const wire::frame_read r = wire::read_frame(fd.get(), wire::deadline_in(10s));
  if (!r.ok()) return "no answer: " + r.describe();
  if (const auto* refused = std::get_if<wire::refuse>(&r.msg)) return std::string(wire::refuse_reason_name(refused->reason));
  return std::string(wire::frame_type_name(wire::type_of(r.msg)));
}

TEST_P(remote_conformance, refuses_hostile_clients_with_a_logged_reason_and_serves_everyone_else) {
  serving_node node(GetParam(), 2, state_);
  // A client that connects and says nothing stays connected all along: the others are served.
  wire::unique_fd silent = wire::connect_tcp("127.0.0.1", node.port(), wire::deadline_in(5s));
  EXPECT_EQ(hostile(node.port(), wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, "wrong"})),
            "bad_token");
  auto old_version = wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, token});
  old_version[4] = 9;
  EXPECT_EQ(hostile(node.port(), old_version), "bad_version");
  std::vector<std::uint8_t> garbage(40, 0x41);
  EXPECT_EQ(hostile(node.port(), garbage), "bad_frame");
  auto oversized = wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, token});
  oversized[8] = oversized[9] = oversized[10] = oversized[11] = 0xff;
  EXPECT_EQ(hostile(node.port(), oversized), "bad_frame");
  auto truncated = wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, token});
  truncated.resize(truncated.size() - 3);
  EXPECT_EQ(hostile(node.port(), truncated, true), "bad_frame");
  // After a good handshake, a malformed request gets an error frame and the connection ends.
  {
    wire::unique_fd fd = wire::connect_tcp("127.0.0.1", node.port(), wire::deadline_in(5s));
    ASSERT_TRUE(wire::client_handshake(fd.get(), token, wire::role::coordinator, wire::deadline_in(5s)));
    auto bad = wire::encode_frame(wire::task_request{1, 0, 0, {}});
    bad.push_back(0);  // a trailing byte the header does not announce: the payload is short of it
    bad[8] += 1;
    (void)wire::write_all(fd.get(), bad, wire::deadline_in(5s));
    const wire::frame_read r = wire::read_frame(fd.get(), wire::deadline_in(10s));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_TRUE(std::holds_alternative<wire::error>(r.msg));
  }
  const scatter_job j = job({node.address()}, 20, 2, 0, 0);
  const std::uint64_t sum = make(GetParam(), 2, 2)->run_scatter(j);
  silent.reset();
  EXPECT_EQ(node.stop(), 0);
  EXPECT_EQ(sum, [&] {
    std::uint64_t s = 0;
    for (std::uint64_t t = 0; t < j.tasks; ++t) s += expected_value(t, 0, j.payload_bytes);
    return s;
  }());
  const std::string log(state_->log, std::min<std::size_t>(state_->log_used.load(), sizeof state_->log));
  for (const char* reason : {"bad_token", "bad_version", "bad_frame"}) {
    EXPECT_NE(log.find(reason), std::string::npos) << reason << " not logged in:\n" << log;
  }
  EXPECT_NE(log.find("dropped"), std::string::npos) << log;
  EXPECT_GE(state_->node.refused.load(), 5u);
}

// A client that connects and says nothing, and one that stops part-way through its hello, stay
// connected while a run of more than the handshake timeout goes on: no call waits on them (a
// poll-loop server reads a frame only once it has started, waits a bounded time for the rest,
// and refuses an expired handshake at once), and both are refused and logged.
TEST_P(remote_conformance, a_silent_or_stalled_client_holds_up_no_one) {
  serving_node node(GetParam(), 2, state_);
  wire::unique_fd silent = wire::connect_tcp("127.0.0.1", node.port(), wire::deadline_in(5s));
  wire::unique_fd stalled = wire::connect_tcp("127.0.0.1", node.port(), wire::deadline_in(5s));
  const auto hello = wire::encode_frame(wire::hello{wire::protocol_version, wire::role::coordinator, token});
  ASSERT_TRUE(wire::write_all(stalled.get(), wire::byte_view(hello.data(), 3), wire::deadline_in(5s)));
  const auto start = std::chrono::steady_clock::now();
  const scatter_job j = job({node.address()}, 250, 2, 0, 50);
  const std::uint64_t sum = make(GetParam(), 2, 2)->run_scatter(j);
  EXPECT_GT(std::chrono::steady_clock::now() - start, wire::default_handshake_timeout + 500ms);
  std::uint64_t expected = 0, slowest_ns = 0;
  for (std::uint64_t t = 0; t < j.tasks; ++t) {
    expected += expected_value(t, 0, j.payload_bytes);
    slowest_ns = std::max(slowest_ns, state_->finished[t].load() - state_->started[t].load());
  }
  EXPECT_EQ(sum, expected);
  EXPECT_LT(slowest_ns, 1'000'000'000u) << "a call waited on a client that said nothing";
  EXPECT_EQ(node.stop(), 0);
  const std::string log(state_->log, std::min<std::size_t>(state_->log_used.load(), sizeof state_->log));
  EXPECT_GE(state_->node.refused.load(), 2u) << log;
  EXPECT_NE(log.find("timeout"), std::string::npos) << log;
}

TEST_P(remote_conformance, a_node_that_dies_mid_run_fails_the_run_with_the_reason) {
  state_->die_after = 10;
  serving_node node(GetParam(), 2, state_);
  const scatter_job j = job({node.address()}, 100, 2, 0, 0, 20s);
  const auto start = std::chrono::steady_clock::now();
  try {
    (void)make(GetParam(), 2, 2)->run_scatter(j);
    ADD_FAILURE() << "the run went on without the node";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(node.port())), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
}

TEST_P(remote_conformance, a_node_that_hangs_fails_the_run_at_its_deadline) {
  state_->hang_after = 5;
  serving_node node(GetParam(), 2, state_);
  const scatter_job j = job({node.address()}, 50, 2, 0, 0, 2s);
  const auto start = std::chrono::steady_clock::now();
  try {
    (void)make(GetParam(), 2, 2)->run_scatter(j);
    ADD_FAILURE() << "the run went on without the node";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("did not answer"), std::string::npos) << e.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 6s);
  node.stop(200ms);  // a node hung in a request may have to be killed
}

// A node that died has closed its stop pipe: writing to it must be an error, not SIGPIPE (as in
// cmbench itself, which ignores SIGPIPE).
[[maybe_unused]] const auto sigpipe_ignored = ::signal(SIGPIPE, SIG_IGN);

INSTANTIATE_TEST_SUITE_P(every_model, remote_conformance, ::testing::ValuesIn(test_support::model_names()),
                         test_support::model_test_name{});

}  // namespace
}  // namespace cmbench
