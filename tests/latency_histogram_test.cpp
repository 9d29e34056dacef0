// The log-linear histogram behind every latency figure: exact small values, bounded relative
// error, percentiles by rank, merging by adding counts.
#include <gtest/gtest.h>

#include <cstdint>

#include "workloads/latency_histogram.hpp"

namespace cmbench {
namespace {

TEST(latency_histogram, buckets_tile_the_range_without_gaps) {
  for (std::size_t b = 0; b + 1 < latency_histogram::bucket_count; ++b) {
    ASSERT_EQ(latency_histogram::highest_of(b) + 1, latency_histogram::lowest_of(b + 1)) << b;
    ASSERT_EQ(latency_histogram::bucket_of(latency_histogram::lowest_of(b)), b);
    ASSERT_EQ(latency_histogram::bucket_of(latency_histogram::highest_of(b)), b);
  }
  EXPECT_EQ(latency_histogram::bucket_of(~std::uint64_t{0}), latency_histogram::bucket_count - 1);
}

TEST(latency_histogram, small_values_are_exact_and_large_ones_within_about_three_percent) {
  for (std::uint64_t v = 0; v < 64; ++v) {
    EXPECT_EQ(latency_histogram::lowest_of(latency_histogram::bucket_of(v)), v);
    EXPECT_EQ(latency_histogram::highest_of(latency_histogram::bucket_of(v)), v);
  }
  for (std::uint64_t v = 64; v < (std::uint64_t{1} << 40); v = v * 3 / 2 + 7) {
    const std::size_t b = latency_histogram::bucket_of(v);
    const double width = static_cast<double>(latency_histogram::highest_of(b) - latency_histogram::lowest_of(b) + 1);
    EXPECT_LE(width / static_cast<double>(latency_histogram::lowest_of(b)), 1.0 / 32 + 1e-12) << v;
  }
}

TEST(latency_histogram, percentiles_follow_ranks) {
  latency_histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);  // 1..100 ns, all exact or nearly
  EXPECT_EQ(h.count(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(10), 10u);
  EXPECT_EQ(h.percentile(100), 100u);
  const std::uint64_t p99 = h.percentile(99);
  EXPECT_GE(p99, 99u);
  EXPECT_LE(p99, 100u);
  EXPECT_EQ(latency_histogram{}.percentile(50), 0u);
}

TEST(latency_histogram, a_rare_slow_value_shows_in_the_tail_only) {
  latency_histogram h;
  for (int i = 0; i < 9999; ++i) h.record(1000);
  h.record(5'000'000);
  EXPECT_LE(h.percentile(99.9), 1031u);
  EXPECT_EQ(h.percentile(100), 5'000'000u);
  EXPECT_EQ(h.max(), 5'000'000u);
}

TEST(latency_histogram, merging_adds_counts) {
  latency_histogram a, b;
  for (int i = 0; i < 100; ++i) a.record(10);
  for (int i = 0; i < 300; ++i) b.record(20);
  a.merge(b);
  EXPECT_EQ(a.count(), 400u);
  EXPECT_EQ(a.percentile(25), 10u);
  EXPECT_EQ(a.percentile(26), 20u);
  EXPECT_EQ(a.min(), 10u);
  EXPECT_EQ(a.max(), 20u);
  latency_histogram rebuilt;
  for (const auto& [bucket, n] : a.nonzero_buckets()) rebuilt.add_bucket(bucket, n);
  rebuilt.add_summary(a.count(), a.sum(), a.min(), a.max());
  EXPECT_EQ(rebuilt.percentile(50), a.percentile(50));
  EXPECT_DOUBLE_EQ(rebuilt.mean(), a.mean());
}

}  // namespace
}  // namespace cmbench
