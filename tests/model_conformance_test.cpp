// Every registered model runs the same jobs and must return the serial computation's answer (each
// model's facts are checked in facts_test.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <tuple>
#include <string>

#include "models/model.hpp"
#include "tests/every_model.hpp"
#include "workloads/kernels.hpp"
#include "workloads/waits.hpp"

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

// A leaf's value: a mix of its index, so every leaf must run, once, for the sum to come out right.
std::uint64_t leaf(const void*, std::uint64_t index) { return kernels::mix64(index ^ 0x5eed); }

tree_job tree(std::uint64_t leaves, std::uint32_t fanout) { return tree_job{leaves, fanout, &leaf, nullptr}; }

std::uint64_t expected_tree(std::uint64_t leaves) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < leaves; ++i) sum += leaf(nullptr, i);
  return sum;
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
    EXPECT_EQ(model->run_tree(tree(100, 10)), expected_tree(100));
  }
}

// Every wait is begun, lasts its full length, and the model holds as many at once as its stated
// capacity allows (its workers, or a unit per task), as the workload's watch verifies.
TEST_P(model_conformance, waits_are_watched_and_verified) {
  static const job_input input{7};
  const model_entry* entry = find_model(GetParam());
  ASSERT_NE(entry, nullptr);
  // Many tasks on few workers, more workers than tasks, and a cap on units alive (`concurrency`).
  for (const auto& [tasks, workers, max_alive] : {std::tuple{40ull, 2u, 0ull}, std::tuple{3ull, 8u, 0ull},
                                                  std::tuple{12ull, 2u, 3ull}}) {
    const model_config config{workers, max_alive};
    waits::watched_bulk bulk(bulk_job{tasks, 2, std::chrono::milliseconds{20}, &compute, &input}, config);
    auto model = entry->make(config);
    bulk_job plain = bulk.job();
    plain.compute = &compute;
    plain.context = &input;
    EXPECT_EQ(model->run_bulk(bulk.job()), expected_bulk(plain));
    std::map<std::string, double> metrics;
    EXPECT_EQ(bulk.verify(entry->info, metrics), "")
        << "tasks=" << tasks << " workers=" << workers << " max_alive=" << max_alive;
    EXPECT_EQ(metrics.at("waits"), static_cast<double>(tasks * 2));
    EXPECT_GE(metrics.at("shortest_wait_ns"), 20e6);
    EXPECT_LE(metrics.at("waits_in_flight_peak"), metrics.at("wait_limit"));
  }
}

TEST_P(model_conformance, tree_sums_every_leafs_value) {
  auto model = make(2, 0);
  EXPECT_EQ(model->run_tree(tree(1, 10)), expected_tree(1));
  EXPECT_EQ(model->run_tree(tree(10, 10)), expected_tree(10));
  EXPECT_EQ(model->run_tree(tree(1000, 10)), expected_tree(1000));
  EXPECT_EQ(model->run_tree(tree(1024, 2)), expected_tree(1024));
  EXPECT_EQ(model->run_tree(tree(10000, 10)), expected_tree(10000));
}

TEST_P(model_conformance, tree_with_one_worker_does_not_deadlock) {
  auto model = make(1, 0);
  EXPECT_EQ(model->run_tree(tree(1000, 10)), expected_tree(1000));
}

INSTANTIATE_TEST_SUITE_P(all, model_conformance, ::testing::ValuesIn(test_support::model_names()),
                         test_support::model_test_name{});

TEST(model_registry, tree_units_counts_every_level) {
  EXPECT_EQ(tree_units(tree(1, 10)), 1u);
  EXPECT_EQ(tree_units(tree(1000, 10)), 1111u);
  EXPECT_EQ(tree_units(tree(1000000, 10)), 1111111u);
}

}  // namespace
}  // namespace cmbench
