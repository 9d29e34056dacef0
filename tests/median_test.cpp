// The one median behind the floors, the aggregate rows and so the summary table.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "models/median.hpp"

namespace cmbench {
namespace {

TEST(median, odd_count_is_the_middle_value_in_any_order) {
  EXPECT_EQ(median(std::vector<double>{3, 1, 2}), 2);
  EXPECT_EQ(median(std::vector<double>{5}), 5);
  EXPECT_EQ(median(std::vector<double>{9, 7, 1, 8, 2}), 7);
}

TEST(median, even_count_is_the_mean_of_the_two_middle_values) {
  EXPECT_EQ(median(std::vector<double>{4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median(std::vector<double>{10, 20}), 15);
  // Integers too (a floor probe's round trips): the mean is not truncated.
  EXPECT_EQ(median(std::vector<std::uint32_t>{7, 2, 4, 9}), 5.5);
  EXPECT_EQ(median(std::vector<std::uint32_t>{4'000'000'000u, 4'000'000'001u}), 4'000'000'000.5);
}

TEST(median, repeated_values_and_none) {
  EXPECT_EQ(median(std::vector<double>{2, 2, 2, 2}), 2);
  EXPECT_EQ(median(std::vector<double>{1, 2, 2, 3}), 2);
  EXPECT_TRUE(std::isnan(median(std::vector<double>{})));
}

}  // namespace
}  // namespace cmbench
