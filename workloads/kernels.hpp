// The per-task kernels every model runs, identical everywhere: one definition, no copies.
#pragma once

#include <cstdint>

namespace cmbench::kernels {

// Bijective 64-bit mixer (splitmix64's finaliser): folds a task's identity into its result, so a
// wrapping sum of results notices a task that ran twice, ran with the wrong input or not at all.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Total Collatz stopping time of every integer in [first, first + count): branchy integer work
// with data-dependent trip counts that no compiler folds away or vectorises. About
// `numbers_per_us` integers per microsecond on the reference machine (2-core AMD EPYC, g++ 12 -O3).
inline std::uint64_t collatz_steps(std::uint64_t first, std::uint64_t count) {
  std::uint64_t steps = 0;
  for (std::uint64_t n = first; n < first + count; ++n) {
    std::uint64_t x = n;
    while (x != 1) {
      x = (x & 1) ? 3 * x + 1 : x >> 1;
      ++steps;
    }
  }
  return steps;
}

inline constexpr std::uint64_t numbers_per_us = 5;  // measured: 5.2 per us, g++ 12 -O3, AMD EPYC
inline constexpr std::uint64_t collatz_first = 1000003;  // start of the input ranges

// One round of one task of `numbers` integers: the unit of CPU work of cpu, io and mixed.
inline std::uint64_t compute_round(std::uint64_t task, std::uint32_t round, std::uint64_t numbers) {
  const std::uint64_t first = collatz_first + (task * 7919 + round) % 1000000 * numbers;
  return mix64((task << 20) ^ (static_cast<std::uint64_t>(round) << 4) ^ collatz_steps(first, numbers));
}

}  // namespace cmbench::kernels
