// A log-linear latency histogram (HdrHistogram's layout, fixed size): exact below 64 ns, then 32
// linear buckets per power of two (at most 3% relative error) up to 2^63 ns. Plain data, no
// allocation, so a workload can keep one in shared memory and record into it from any unit's
// thread or process; histograms merge by adding counts (repetitions, and later nodes).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

namespace cmbench {

class latency_histogram {
 public:
  static constexpr int linear_bits = 5;                          // 32 buckets per power of two
  static constexpr std::uint64_t exact_below = 2u << linear_bits;  // 64: one bucket per ns below
  static constexpr std::size_t bucket_count = exact_below + (63 - linear_bits) * (1u << linear_bits);

  static constexpr std::size_t bucket_of(std::uint64_t ns) {
    if (ns < exact_below) return static_cast<std::size_t>(ns);
    const int top = std::bit_width(ns) - 1;  // >= linear_bits + 1
    const int shift = top - linear_bits;
    const std::uint64_t sub = (ns >> shift) - (std::uint64_t{1} << linear_bits);  // 0..31
    return exact_below + static_cast<std::size_t>(top - linear_bits - 1) * (1u << linear_bits) +
           static_cast<std::size_t>(sub);
  }

  // The smallest and largest value a bucket holds.
  static constexpr std::uint64_t lowest_of(std::size_t bucket) {
    if (bucket < exact_below) return bucket;
    const std::size_t i = bucket - exact_below;
    const int top = static_cast<int>(i >> linear_bits) + linear_bits + 1;
    const std::uint64_t sub = i & ((1u << linear_bits) - 1);
    return ((std::uint64_t{1} << linear_bits) + sub) << (top - linear_bits);
  }
  static constexpr std::uint64_t highest_of(std::size_t bucket) {
    return bucket + 1 < bucket_count ? lowest_of(bucket + 1) - 1 : ~std::uint64_t{0};
  }

  void record(std::uint64_t ns) {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_); }
  std::uint64_t sum() const { return sum_; }

  // The value at percentile q (0..100]: the highest value of the bucket holding that rank
  // (HdrHistogram's convention), capped by the largest value recorded.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q / 100.0 * static_cast<double>(count_) + 0.5);
    const std::uint64_t wanted = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < bucket_count; ++b) {
      seen += counts_[b];
      if (seen >= wanted) return std::min(highest_of(b), max_);
    }
    return max_;
  }

  // Non-empty buckets as (bucket index, count): what a trial sends back and a merge adds up.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> nonzero_buckets() const {
    std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
    for (std::size_t b = 0; b < bucket_count; ++b) {
      if (counts_[b] != 0) out.emplace_back(static_cast<std::uint32_t>(b), counts_[b]);
    }
    return out;
  }

  void add_bucket(std::uint32_t bucket, std::uint64_t count) {
    if (bucket < bucket_count) counts_[bucket] += count;
  }

  // Adds another histogram's counts (the summary figures are added by the caller's add_summary).
  void merge(const latency_histogram& other) {
    for (std::size_t b = 0; b < bucket_count; ++b) counts_[b] += other.counts_[b];
    add_summary(other.count_, other.sum_, other.min(), other.max_);
  }
  void add_summary(std::uint64_t count, std::uint64_t sum, std::uint64_t min, std::uint64_t max) {
    if (count == 0) return;
    count_ += count;
    sum_ += sum;
    min_ = std::min(min_, min);
    max_ = std::max(max_, max);
  }

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

}  // namespace cmbench
