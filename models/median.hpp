// The one median every figure cmbench reports is taken with: the floors' samples and round trips,
// and each aggregate row's figures over its repetitions (which the summary table then reads).
// Here, the lowest layer, so the floor probes can use it without depending on the harness.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

namespace cmbench {

// The middle value, or the mean of the two middle ones for an even count; NaN when there is none
// (each caller says what an empty set means). Taken by value: nth_element reorders its copy, in
// linear time, which matters for a floor probe's millions of round trips (move them in).
template <class T>
double median(std::vector<T> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto upper = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), upper, values.end());
  if (values.size() % 2 == 1) return static_cast<double>(*upper);
  // After nth_element every value before `upper` is at most *upper: the lower middle is their largest.
  const double lower = static_cast<double>(*std::max_element(values.begin(), upper));
  return (lower + static_cast<double>(*upper)) / 2;
}

}  // namespace cmbench
