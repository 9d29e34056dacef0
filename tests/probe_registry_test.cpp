// Floor probes registered from a model's own source (CMBENCH_REGISTER_PROBE) join the built-in
// ones: after them, found by name, measured like them; a name is taken once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "models/floors/probe_support.hpp"
#include "models/floors/probes.hpp"

namespace cmbench::floors {
namespace {

std::uint64_t calls = 0;

// Each operation "takes" 1 us and is timed one by one, so the measurement is known exactly.
std::int64_t registered_probe_for_test(std::uint64_t n, std::vector<std::uint32_t>* each) {
  ++calls;
  if (each != nullptr) each->insert(each->end(), n, 1000);
  return static_cast<std::int64_t>(n) * 1000;
}

CMBENCH_REGISTER_PROBE(registered_probe_for_test, "a test's own probe, registered from its source", "round trip",
                       registered_probe_for_test, true);

TEST(probe_registry, a_registered_probe_comes_after_the_built_in_ones) {
  const auto all = all_probes();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().name, "fork_exit_wait") << "processes first: they fork before any helper thread exists";
  std::size_t builtin_end = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == "tbb_handoff_round_trip") builtin_end = i + 1;
  }
  ASSERT_GT(builtin_end, 0u);
  std::size_t at = all.size();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == "registered_probe_for_test") at = i;
  }
  ASSERT_LT(at, all.size());
  EXPECT_GE(at, builtin_end);
  const probe* p = find_probe("registered_probe_for_test");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, &all[at]);
  EXPECT_EQ(p->what, "a test's own probe, registered from its source");
  EXPECT_EQ(p->per, "round trip");
  EXPECT_TRUE(p->timed_each);
}

TEST(probe_registry, a_registered_probe_is_measured_like_a_built_in_one) {
  const probe* p = find_probe("registered_probe_for_test");
  ASSERT_NE(p, nullptr);
  calls = 0;
  const measurement m = measure(*p, std::chrono::microseconds(50), 3);
  EXPECT_GT(calls, 3u);
  EXPECT_DOUBLE_EQ(m.ns_per_op, 1000);
  EXPECT_DOUBLE_EQ(m.p50_ns, 1000);
  EXPECT_EQ(m.samples_ns.size(), 3u);
}

TEST(probe_registry, a_name_is_taken_once_and_a_probe_needs_every_field) {
  EXPECT_THROW(register_probe({"registered_probe_for_test", "again", "round trip", registered_probe_for_test}),
               std::logic_error);
  EXPECT_THROW(register_probe({"condvar_round_trip", "a built-in name", "round trip", registered_probe_for_test}),
               std::logic_error);
  EXPECT_THROW(register_probe({"probe_without_function", "no function", "round trip", nullptr}), std::logic_error);
  EXPECT_EQ(find_probe("probe_without_function"), nullptr);
}

// The helpers a model's probe is built from behave as the built-in probes rely on.
TEST(probe_registry, a_round_trip_clock_records_every_round_trip) {
  std::vector<std::uint32_t> each;
  round_trip_clock c(3, &each);
  EXPECT_FALSE(c.ping(0));
  EXPECT_FALSE(c.ping(1));
  EXPECT_FALSE(c.ping(2));
  EXPECT_TRUE(c.ping(3));
  EXPECT_EQ(each.size(), 3u);
  EXPECT_GE(c.total(), 0);
  EXPECT_EQ(cpus_for(placement::any), std::make_pair(-1, -1));
  const auto [a, b] = cpus_for(placement::same_cpu);
  EXPECT_GE(a, 0);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace cmbench::floors
