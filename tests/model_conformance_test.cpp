// Every registered model runs the same jobs and must return serial/baseline's answer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "models/model.hpp"
#include "tests/every_model.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

struct job_input {
  std::uint64_t salt;
};

std::uint64_t compute(const void* context, std::uint64_t task, std::uint32_t round) {
  const auto* in = static_cast<const job_input*>(context);
  std::uint64_t x = in->salt ^ (task << 8) ^ round;
  for (int i = 0; i < 64; ++i) x = kernels::mix64(x);
  return x;
}

std::uint64_t expected_bulk(const bulk_job& job) {
  std::uint64_t sum = 0;
  for (std::uint64_t t = 0; t < job.tasks; ++t) {
    for (std::uint32_t r = 0; r < job.rounds; ++r) sum += job.run_round(t, r);
  }
  return sum;
}

class model_conformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<model_instance> make(unsigned workers, std::uint64_t max_alive = 0) {
    const model_entry* entry = find_model(GetParam());
    EXPECT_NE(entry, nullptr);
    return entry->make(model_config{workers, max_alive});
  }
};

TEST_P(model_conformance, bulk_of_cpu_tasks_matches_reference) {
  static const job_input input{0x1234};
  for (unsigned workers : {1u, 2u, 3u}) {
    auto model = make(workers, workers);
    for (std::uint64_t tasks : {0ull, 1ull, 7ull, 500ull}) {
      bulk_job job{tasks, 1, std::chrono::nanoseconds{0}, &compute, &input};
      EXPECT_EQ(model->run_bulk(job), expected_bulk(job)) << "workers=" << workers << " tasks=" << tasks;
    }
  }
}

TEST_P(model_conformance, model_is_reusable_across_jobs) {
  static const job_input a{1}, b{2};
  auto model = make(2, 2);
  for (int i = 0; i < 3; ++i) {
    bulk_job ja{100, 2, std::chrono::nanoseconds{0}, &compute, &a};
    bulk_job jb{33, 1, std::chrono::nanoseconds{0}, &compute, &b};
    EXPECT_EQ(model->run_bulk(ja), expected_bulk(ja));
    EXPECT_EQ(model->run_bulk(jb), expected_bulk(jb));
    EXPECT_EQ(model->run_tree(tree_job{100, 10}), 4950u);
  }
}

TEST_P(model_conformance, waits_run_concurrently_up_to_the_models_limit) {
  static const job_input input{7};
  // 40 tasks each waiting 20 ms, with 2 workers and no cap on live units.
  bulk_job job{40, 2, std::chrono::milliseconds{20}, &compute, &input};
  auto model = make(2, 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(model->run_bulk(job), expected_bulk(job));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Every model waits at least one round trip of waits; none may skip them.
  EXPECT_GE(elapsed, std::chrono::milliseconds{40});
}

TEST_P(model_conformance, tree_sums_leaf_indices) {
  auto model = make(2, 0);
  EXPECT_EQ(model->run_tree(tree_job{1, 10}), 0u);
  EXPECT_EQ(model->run_tree(tree_job{10, 10}), 45u);
  EXPECT_EQ(model->run_tree(tree_job{1000, 10}), 499500u);
  EXPECT_EQ(model->run_tree(tree_job{1024, 2}), 1024u * 1023u / 2u);
  EXPECT_EQ(model->run_tree(tree_job{10000, 10}), 49995000u);
}

TEST_P(model_conformance, tree_with_one_worker_does_not_deadlock) {
  auto model = make(1, 0);
  EXPECT_EQ(model->run_tree(tree_job{1000, 10}), 499500u);
}

INSTANTIATE_TEST_SUITE_P(all, model_conformance, ::testing::ValuesIn(test_support::model_names()),
                         test_support::model_test_name{});

TEST(model_registry, has_all_eight_models) {
  for (const char* name : {"serial/baseline", "threads/spawn", "threads/pool", "threads/tbb",
                           "processes/spawn", "processes/pool", "coroutines/asio",
                           "coroutines/asio-mt"}) {
    EXPECT_NE(find_model(name), nullptr) << name;
  }
}

TEST(model_registry, tree_units_counts_every_level) {
  EXPECT_EQ(tree_units(tree_job{1, 10}), 1u);
  EXPECT_EQ(tree_units(tree_job{1000, 10}), 1111u);
  EXPECT_EQ(tree_units(tree_job{1000000, 10}), 1111111u);
}

}  // namespace
}  // namespace cmbench
