// Presets, --param overrides and their combinations.
#include <gtest/gtest.h>

#include <stdexcept>

#include "harness/params.hpp"

namespace cmbench {
namespace {

TEST(param_override, parses_lists_suffixes_and_workload_scope) {
  auto o = parse_param_override("tasks=100,1k,2M");
  EXPECT_EQ(o.workload, "");
  EXPECT_EQ(o.name, "tasks");
  EXPECT_EQ(o.values, (std::vector<std::int64_t>{100, 1000, 2000000}));
  o = parse_param_override("cpu.workers=1,2,4");
  EXPECT_EQ(o.workload, "cpu");
  EXPECT_EQ(o.name, "workers");
  EXPECT_EQ(o.values.size(), 3u);
}

TEST(param_override, rejects_malformed_text_with_a_clear_message) {
  for (const char* bad : {"tasks", "=3", "tasks=", "tasks=abc", "tasks=1,,2", "tasks=1.5", ".tasks=1",
                          "cpu.=1", "tasks=99999999999999999999", "tasks=9999999999999G"}) {
    try {
      parse_param_override(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--param"), std::string::npos) << e.what();
    }
  }
}

TEST(presets, parse_and_name_round_trip) {
  for (const char* name : {"quick", "default", "full"}) EXPECT_EQ(preset_name(parse_preset(name)), name);
  EXPECT_THROW(parse_preset("fast"), std::invalid_argument);
}

TEST(combinations, cover_every_override_value_and_resolve_cpus) {
  const workload_entry* cpu = find_workload("cpu");
  ASSERT_NE(cpu, nullptr);
  const std::vector<param_override> overrides{parse_param_override("workers=0,3"),
                                              parse_param_override("tasks=10,20")};
  const auto combos = combinations(*cpu, preset::quick, overrides, 2);
  ASSERT_EQ(combos.size(), 4u);
  for (const auto& c : combos) {
    EXPECT_TRUE(c.at("workers") == 2 || c.at("workers") == 3);  // 0 became the 2 CPUs
    EXPECT_EQ(c.at("task_us"), cpu->params[1].quick);
  }
  EXPECT_EQ(params_label(*cpu, combos.front()), "tasks:10/task_us:100/workers:2");
}

TEST(combinations, workload_scoped_override_touches_only_that_workload) {
  const workload_entry* cpu = find_workload("cpu");
  const workload_entry* io = find_workload("io");
  const std::vector<param_override> overrides{parse_param_override("cpu.workers=1,2")};
  EXPECT_EQ(combinations(*cpu, preset::quick, overrides, 2).size(), 2u);
  EXPECT_EQ(combinations(*io, preset::quick, overrides, 2).size(), 1u);
}

TEST(combinations, reject_out_of_range_and_invalid_combinations) {
  const workload_entry* cpu = find_workload("cpu");
  const workload_entry* spawn = find_workload("spawn");
  EXPECT_THROW(combinations(*cpu, preset::quick, {parse_param_override("tasks=0")}, 2), std::invalid_argument);
  EXPECT_THROW(combinations(*cpu, preset::quick, {parse_param_override("tasks=-5")}, 2), std::invalid_argument);
  EXPECT_THROW(combinations(*spawn, preset::quick, {parse_param_override("leaves=999")}, 2), std::invalid_argument);
  EXPECT_NO_THROW(combinations(*spawn, preset::quick, {parse_param_override("leaves=1024"),
                                                       parse_param_override("fanout=2")}, 2));
}

TEST(check_overrides, names_unknown_parameters_and_unselected_workloads) {
  const std::vector<const workload_entry*> selected{find_workload("cpu")};
  EXPECT_THROW(check_overrides(selected, {parse_param_override("leaves=10")}), std::invalid_argument);
  EXPECT_THROW(check_overrides(selected, {parse_param_override("io.tasks=10")}), std::invalid_argument);
  EXPECT_NO_THROW(check_overrides(selected, {parse_param_override("cpu.tasks=10")}));
}

TEST(workloads, every_preset_value_is_in_range_and_valid) {
  for (const auto& w : all_workloads()) {
    for (preset p : {preset::quick, preset::standard, preset::full}) {
      EXPECT_NO_THROW(combinations(w, p, {}, 2)) << w.name << " " << preset_name(p);
    }
  }
}

}  // namespace
}  // namespace cmbench
