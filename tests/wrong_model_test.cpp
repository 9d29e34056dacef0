// Models that do less than the work asks while returning the right checksum, registered only in
// this test binary: the trial must fail them on what the workload verifies, not take their word.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness/trial.hpp"
#include "models/model.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

std::uint64_t serial_rounds(const bulk_job& job, std::uint64_t task, bool begin, std::chrono::nanoseconds sleep) {
  std::uint64_t sum = 0;
  for (std::uint32_t round = 0; round < job.rounds; ++round) {
    if (job.wait.count() > 0) {
      if (begin) job.begin_wait(task, round);
      if (sleep.count() > 0) std::this_thread::sleep_for(sleep);
    }
    sum += job.run_round(task, round);
  }
  return sum;
}

std::uint64_t serial_tree(const tree_job& job, std::uint64_t first, std::uint64_t size) {
  if (size == 1) return job.leaf_value(first);
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < job.fanout; ++c) sum += serial_tree(job, first + c * (size / job.fanout), size / job.fanout);
  return sum;
}

// What the three share: every task's rounds computed, the waits done `how`.
template <class Self>
struct wrong_base {
  std::uint64_t run_tree(const tree_job& job) { return serial_tree(job, 0, job.leaves); }
  graph_result run_graph(const graph_job&) { throw std::logic_error("not a graph model"); }
};

// A wrong model's mechanism: what it does wrong, every other field saying it is a test's.
constexpr mechanism_info test_only(std::string_view summary) {
  return {summary,     "test only", "test only", "test only", "test only", "test only",
          "test only", "test only", "test only", "test only", "test only"};
}

// Computes every round and never waits (nor says it began one).
class skips_waits : public wrong_base<skips_waits> {
 public:
  static constexpr model_info info{.family = "wrong", .variant = "skips-waits",
                                   .description = "test only: never waits", .order = 900,
                                   .mechanism = test_only("no waits at all"), .waits = wait_capacity::tasks};
  explicit skips_waits(const model_config&) {}
  std::uint64_t run_bulk(const bulk_job& job) {
    std::uint64_t sum = 0;
    for (std::uint64_t t = 0; t < job.tasks; ++t) sum += serial_rounds(job, t, false, {});
    return sum;
  }
};
CMBENCH_REGISTER_MODEL(skips_waits);

// Says it began each wait, then waits only a tenth of it, all tasks at once (one thread each).
class shortens_waits : public wrong_base<shortens_waits> {
 public:
  static constexpr model_info info{.family = "wrong", .variant = "shortens-waits",
                                   .description = "test only: waits a tenth", .order = 901,
                                   .mechanism = test_only("short waits"), .waits = wait_capacity::tasks};
  explicit shortens_waits(const model_config&) {}
  std::uint64_t run_bulk(const bulk_job& job) {
    std::vector<std::uint64_t> sums(job.tasks);
    std::vector<std::jthread> threads;
    for (std::uint64_t t = 0; t < job.tasks; ++t) {
      threads.emplace_back([&, t] { sums[t] = serial_rounds(job, t, true, job.wait / 10); });
    }
    threads.clear();
    std::uint64_t sum = 0;
    for (auto s : sums) sum += s;
    return sum;
  }
};
CMBENCH_REGISTER_MODEL(shortens_waits);

// Claims one wait per worker, like a pool, but its W workers hold one lock across every wait:
// the waits are real and full length, one at a time.
class serialises_waits : public wrong_base<serialises_waits> {
 public:
  static constexpr model_info info{.family = "wrong", .variant = "serialises-waits",
                                   .description = "test only: one wait at a time", .order = 902,
                                   .mechanism = test_only("W threads, one lock held across every wait"),
                                   .waits = wait_capacity::workers};
  explicit serialises_waits(const model_config& config) : workers_(std::max(1u, config.workers)) {}
  std::uint64_t run_bulk(const bulk_job& job) {
    std::atomic<std::uint64_t> next{0}, sum{0};
    std::mutex one_at_a_time;
    std::vector<std::jthread> threads;
    for (unsigned w = 0; w < workers_; ++w) {
      threads.emplace_back([&] {
        for (std::uint64_t t; (t = next.fetch_add(1)) < job.tasks;) {
          std::lock_guard lock(one_at_a_time);
          sum += serial_rounds(job, t, true, job.wait);
        }
      });
    }
    threads.clear();
    return sum.load();
  }

 private:
  unsigned workers_;
};
CMBENCH_REGISTER_MODEL(serialises_waits);

// Returns the closed form of skynet's sum of leaf indexes without running a unit, and runs a graph
// one unit at a time, each to its end, as if the barrier were not there.
class shortcuts : public wrong_base<shortcuts> {
 public:
  static constexpr model_info info{.family = "wrong", .variant = "shortcuts",
                                   .description = "test only: formula tree, no barrier", .order = 903,
                                   .mechanism = test_only("shortcuts"), .waits = wait_capacity::one};
  explicit shortcuts(const model_config&) {}
  std::uint64_t run_bulk(const bulk_job& job) {
    std::uint64_t sum = 0;
    for (std::uint64_t t = 0; t < job.tasks; ++t) sum += serial_rounds(job, t, true, job.wait);
    return sum;
  }
  std::uint64_t run_tree(const tree_job& job) { return job.leaves * (job.leaves - 1) / 2; }
  graph_result run_graph(const graph_job& job) {
    graph_result r;
    std::vector<std::uint64_t> message(job.message_bytes / 8);
    for (std::uint32_t u = 0; u < job.units; ++u) {
      unit_state state;
      state.unit = u;
      for (unit_action a = job.next(state, reinterpret_cast<std::byte*>(message.data())); a.op != unit_op::finish;
           a = job.next(state, reinterpret_cast<std::byte*>(message.data()))) {
        if (a.op != unit_op::arrive) throw std::logic_error("only barriers here");
      }
      r.checksum += state.result;
    }
    return r;
  }
};
CMBENCH_REGISTER_MODEL(shortcuts);

trial_result run_in_this_process(const std::string& workload, const std::string& model, const param_values& params) {
  const std::string path = ::testing::TempDir() + "wrong_model_result_" + std::to_string(::getpid()) + ".json";
  EXPECT_EQ(run_trial_here(trial_request{workload, model, params, {}, {}, 0, 0}, path), 0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path.c_str());
  const auto result = nlohmann::json::parse(text.str()).get<trial_result>();
  std::printf("%s on %s: %s\n", model.c_str(), workload.c_str(), result.ok ? "ok" : result.error.c_str());
  return result;
}

const param_values io_params{{"tasks", 8}, {"wait_ms", 20}, {"workers", 4}, {"concurrency", 0}};
const param_values mixed_params{{"tasks", 6},       {"rounds", 2},  {"round_us", 10'000},
                                {"compute_pct", 20}, {"workers", 3}, {"concurrency", 0}};

TEST(wrong_models, a_real_model_passes_the_same_checks) {
  for (const char* model : {"serial/baseline", "threads/pool", "coroutines/asio"}) {
    const trial_result io = run_in_this_process("io", model, io_params);
    EXPECT_TRUE(io.ok) << model << ": " << io.error;
    const trial_result mixed = run_in_this_process("mixed", model, mixed_params);
    EXPECT_TRUE(mixed.ok) << model << ": " << mixed.error;
  }
}

TEST(wrong_models, skipping_the_waits_fails_verification) {
  for (const auto* params : {&io_params, &mixed_params}) {
    const trial_result t = run_in_this_process(params == &io_params ? "io" : "mixed", "wrong/skips-waits", *params);
    EXPECT_FALSE(t.ok);
    EXPECT_NE(t.error.find("verification failed"), std::string::npos) << t.error;
    EXPECT_NE(t.error.find("never begun"), std::string::npos) << t.error;
  }
}

TEST(wrong_models, shortening_the_waits_fails_verification) {
  const trial_result t = run_in_this_process("io", "wrong/shortens-waits", io_params);
  EXPECT_FALSE(t.ok);
  EXPECT_NE(t.error.find("lasted less than"), std::string::npos) << t.error;
}

TEST(wrong_models, serialising_the_waits_fails_verification) {
  for (const auto* params : {&io_params, &mixed_params}) {
    const trial_result t = run_in_this_process(params == &io_params ? "io" : "mixed", "wrong/serialises-waits", *params);
    EXPECT_FALSE(t.ok);
    EXPECT_NE(t.error.find("serialised"), std::string::npos) << t.error;
  }
}

// The checksums depend on every unit's work: a tree answered by formula, or a barrier that lets
// units through one at a time, computes the wrong sum.
TEST(wrong_models, checksums_catch_a_formula_tree_and_a_barrier_that_does_not_hold) {
  for (const auto& [workload_name, params] :
       {std::pair{"spawn", param_values{{"leaves", 1000}, {"fanout", 10}, {"workers", 1}}},
        std::pair{"memory", param_values{{"units", 50}, {"hold_ms", 0}, {"workers", 1}}}}) {
    const workload_entry* workload = find_workload(workload_name);
    ASSERT_NE(workload, nullptr);
    for (const char* model_name : {"serial/baseline", "wrong/shortcuts"}) {
      auto prepared = workload->prepare(params);
      auto model = find_model(model_name)->make(prepared->config());
      const std::uint64_t checksum = prepared->checksum(prepared->run(*model));
      if (std::string(model_name) == "serial/baseline") {
        EXPECT_EQ(checksum, workload->reference(params)) << workload_name;
      } else {
        EXPECT_NE(checksum, workload->reference(params)) << workload_name;
      }
    }
  }
}

}  // namespace
}  // namespace cmbench
