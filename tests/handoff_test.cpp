// Hand-offs are what each model's real counterpart does, and the figures that count them are right:
// a pool runs a woken unit in the order its queue gives (no run-next privilege), and every graph
// run counts the messages received and how many crossed an OS thread or process.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.hpp"
#include "models/shared_region.hpp"
#include "tests/every_model.hpp"
#include "workloads/observe.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

// Units 0 (B) and 1 (C) wait to receive; unit 2 (A) then wakes C, then B, then finishes. Each woken
// unit logs itself when it runs again, so the log is the order the model ran the two wakes in.
struct wake_log {
  std::atomic<std::uint32_t> next{0};
  std::uint32_t order[2] = {9, 9};
};

unit_action wake_step(void* context, unit_state& s, std::byte*) {
  auto& log = *static_cast<wake_log*>(context);
  if (s.unit == 2) {  // A
    if (s.pc == 0) {
      s.pc = 1;
      return {unit_op::send, 1};  // readies C
    }
    if (s.pc == 1) {
      s.pc = 2;
      return {unit_op::send, 0};  // readies B
    }
    return {unit_op::finish};
  }
  if (s.pc == 0) {
    s.pc = 1;
    return {unit_op::receive, s.unit};  // B on channel 0, C on channel 1
  }
  log.order[log.next.fetch_add(1)] = s.unit;
  return {unit_op::finish};
}

std::vector<std::uint32_t> wake_order(const std::string& model_name) {
  shared_region region(sizeof(wake_log));
  auto* log = new (region.data()) wake_log{};
  const model_entry* entry = find_model(model_name);
  EXPECT_NE(entry, nullptr);
  auto model = entry->make(model_config{1, 0});
  model->run_graph(graph_job{3, 2, 1, 16, 0, {}, &wake_step, log});
  return {log->order[0], log->order[1]};
}

// One worker, C readied before B: a pool's shared FIFO queue runs C first, as ThreadPoolExecutor
// and multiprocessing.Pool would. (With a run-next slot, B, readied last, would run first.)
TEST(pool_handoff, a_woken_unit_waits_its_turn_in_the_shared_queue) {
  for (const char* model : {"threads/pool", "processes/pool"}) {
    EXPECT_EQ(wake_order(model), (std::vector<std::uint32_t>{1, 0})) << model;
  }
}

// oneTBB spawns a woken task into the running thread's own deque, which the thread pops LIFO:
// with one thread, B (spawned last) runs first. That is oneTBB's scheduling, kept as it is.
TEST(pool_handoff, tbb_runs_the_last_spawned_task_first_as_onetbb_does) {
  EXPECT_EQ(wake_order("threads/tbb"), (std::vector<std::uint32_t>{0, 1}));
}

// Unit 0 (B) waits to receive; unit 1 (A) readies it, then, without parking, waits (up to 10 s)
// for B to run. A pool whose queue gives B to any worker runs it on the other worker meanwhile;
// one that kept B for A's own worker (a run-next slot) would leave A waiting out its deadline.
struct cross_check {
  std::atomic<std::uint32_t> b_ran{0};
  std::atomic<std::uint64_t> b_place{0};
  std::atomic<std::uint64_t> a_place{0};
};

unit_action cross_step(void* context, unit_state& s, std::byte*) {
  auto& check = *static_cast<cross_check*>(context);
  if (s.unit == 0) {  // B
    if (s.pc++ == 0) return {unit_op::receive, 0};
    check.b_place.store(observe::current_place());
    check.b_ran.store(1, std::memory_order_release);
    return {unit_op::finish};
  }
  if (s.pc++ == 0) return {unit_op::send, 0};  // A readies B
  check.a_place.store(observe::current_place());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (check.b_ran.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < deadline) {
  }
  return {unit_op::finish};
}

TEST(pool_handoff, a_woken_unit_can_run_on_another_worker) {
  for (const char* model_name : {"threads/pool", "processes/pool", "threads/tbb"}) {
    shared_region region(sizeof(cross_check));
    auto* check = new (region.data()) cross_check{};
    auto model = find_model(model_name)->make(model_config{2, 0});
    model->run_graph(graph_job{2, 1, 1, 16, 0, {}, &cross_step, check});
    EXPECT_EQ(check->b_ran.load(), 1u) << model_name << ": the woken unit never ran while its waker waited";
    EXPECT_NE(check->b_place.load(), check->a_place.load()) << model_name;
  }
}

struct graph_figures {
  std::uint64_t checksum = 0;
  std::map<std::string, double> metrics;
};

graph_figures run_workload(const std::string& workload_name, const std::string& model_name, const param_values& p) {
  const workload_entry* workload = find_workload(workload_name);
  const model_entry* entry = find_model(model_name);
  EXPECT_NE(workload, nullptr);
  EXPECT_NE(entry, nullptr);
  auto prepared = workload->prepare(p);
  auto model = entry->make(prepared->config());
  graph_figures f;
  f.checksum = prepared->checksum(prepared->run(*model));
  model.reset();
  EXPECT_EQ(f.checksum, workload->reference(p)) << workload_name << " on " << model_name;
  f.metrics = prepared->observe().metrics;
  return f;
}

class handoff_counts : public ::testing::TestWithParam<std::string> {};

// Every message received is a hand-off: the token's hops and the stop token's lap in a ring, both
// directions of every round trip in pingpong. A model's units on one OS thread never cross; a
// thread or a process per unit always does.
TEST_P(handoff_counts, every_message_is_counted_and_its_crossing_measured) {
  const std::string& model = GetParam();
  const param_values ring{{"units", 17}, {"hops", 500}, {"bytes", 16}, {"workers", 2}};
  const param_values pingpong{{"messages", 300}, {"bytes", 32}, {"workers", 2}};
  for (const auto& [workload, params, expected] :
       {std::tuple{"ring", ring, 500.0 + 17 - 1}, std::tuple{"pingpong", pingpong, 2.0 * 300}}) {
    const graph_figures f = run_workload(workload, model, params);
    EXPECT_EQ(f.metrics.at("handoffs"), expected) << workload;
    const double crossed = f.metrics.at("handoffs_crossed");
    EXPECT_GE(crossed, 0);
    EXPECT_LE(crossed, expected);
    if (model == "serial/baseline" || model == "coroutines/asio") {
      EXPECT_EQ(crossed, 0) << workload;
    }
    if (model == "threads/spawn" || model == "processes/spawn") {
      EXPECT_EQ(crossed, expected) << workload;
    }
    // The message phase lies inside the measured region, apart from creating and joining units.
    for (const char* phase : {"create_ns", "message_ns", "join_ns"}) {
      ASSERT_TRUE(f.metrics.contains(phase)) << workload << " " << phase;
      EXPECT_GE(f.metrics.at(phase), 0) << workload << " " << phase;
    }
    EXPECT_GT(f.metrics.at("message_ns"), 0) << workload;
  }
}

INSTANTIATE_TEST_SUITE_P(all, handoff_counts, ::testing::ValuesIn(test_support::model_names()),
                         test_support::model_test_name{});

}  // namespace
}  // namespace cmbench
