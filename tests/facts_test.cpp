// Every registered model and workload carries complete facts: the harness, the report and the
// scripts read them and nothing else, so a gap here is a wrong chart or a wrong summary there.
// The registries are iterated: a model or workload added later is checked without a line here.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "harness/facts.hpp"
#include "models/floors/probes.hpp"
#include "models/model.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

TEST(model_facts, every_model_has_a_description_and_every_mechanism_field) {
  ASSERT_FALSE(all_models().empty());
  for (const auto& m : all_models()) {
    EXPECT_FALSE(m.info.family.empty()) << m.name;
    EXPECT_FALSE(m.info.variant.empty()) << m.name;
    EXPECT_EQ(m.name, std::string(m.info.family) + "/" + std::string(m.info.variant));
    EXPECT_FALSE(m.info.description.empty()) << m.name;
    for (const auto& field : mechanism_fields) {
      EXPECT_FALSE((m.info.mechanism.*field.member).empty()) << m.name << ": mechanism." << field.name;
    }
    // One short line, the rest in the fields.
    EXPECT_LE(m.info.mechanism.summary.size(), 160u) << m.name;
  }
}

TEST(model_facts, order_keys_are_distinct_and_the_registry_follows_them) {
  std::map<int, std::string> seen;
  int previous = 0;
  for (const auto& m : all_models()) {
    const auto [it, inserted] = seen.emplace(m.info.order, m.name);
    EXPECT_TRUE(inserted) << m.name << " has the order key " << m.info.order << " of " << it->second;
    if (&m != &all_models().front()) {
      EXPECT_GE(m.info.order, previous) << m.name;
    }
    previous = m.info.order;
  }
}

// A family's models sit together in the order, so a family reads as one block (and one hue).
TEST(model_facts, each_family_is_one_block_of_the_order) {
  std::set<std::string> closed;
  std::string current;
  for (const auto& m : all_models()) {
    const std::string family(m.info.family);
    if (family == current) continue;
    EXPECT_FALSE(closed.contains(family)) << m.name << ": its family appears again after another";
    if (!current.empty()) closed.insert(current);
    current = family;
  }
}

TEST(model_facts, exactly_one_model_is_the_baseline_and_it_waits_one_at_a_time) {
  std::vector<std::string> baselines;
  for (const auto& m : all_models()) {
    if (!m.info.baseline) continue;
    baselines.push_back(m.name);
    // It runs once for every value of the parameters that size a model: it has no workers.
    EXPECT_EQ(m.info.waits, wait_capacity::one) << m.name;
  }
  EXPECT_EQ(baselines.size(), 1u) << ::testing::PrintToString(baselines);
}

TEST(model_facts, a_round_trip_floor_names_a_probe) {
  for (const auto& m : all_models()) {
    if (m.info.round_trip_floor.empty()) continue;
    EXPECT_NE(floors::find_probe(std::string(m.info.round_trip_floor)), nullptr)
        << m.name << ": " << m.info.round_trip_floor;
  }
}

TEST(workload_facts, every_workload_has_a_headline_figure_and_complete_facts) {
  ASSERT_FALSE(all_workloads().empty());
  for (const auto& w : all_workloads()) {
    EXPECT_FALSE(w.description.empty()) << w.name;
    EXPECT_FALSE(w.measures.empty()) << w.name;
    EXPECT_FALSE(w.unit.empty()) << w.name;
    EXPECT_NE(w.alive, nullptr) << w.name;
    ASSERT_FALSE(w.figures.empty()) << w.name << " has no headline figure";
    std::set<std::string> metrics;
    for (const auto& f : w.figures) {
      EXPECT_FALSE(f.metric.empty()) << w.name;
      EXPECT_FALSE(f.label.empty()) << w.name << " " << f.metric;
      EXPECT_FALSE(f.heading.empty()) << w.name << " " << f.metric;
      EXPECT_LE(f.heading.size(), 16u) << w.name << " " << f.metric << ": the summary's column is 16 wide";
      // A rate is better higher; a time or a size per unit, lower (a ratio may be either).
      if (f.kind == figure_kind::rate) {
        EXPECT_EQ(f.direction, better::higher) << w.name << " " << f.metric;
      }
      if (f.kind == figure_kind::time_ns || f.kind == figure_kind::bytes) {
        EXPECT_EQ(f.direction, better::lower) << w.name << " " << f.metric;
      }
      EXPECT_TRUE(metrics.insert(f.metric).second) << w.name << ": " << f.metric << " twice";
    }
    // The speedup metric is written only where a speedup means something.
    if (!w.speedup) {
      EXPECT_FALSE(metrics.contains(std::string(speedup_metric))) << w.name;
    }
  }
}

TEST(workload_facts, order_keys_are_distinct_and_the_registry_follows_them) {
  std::map<int, std::string> seen;
  int previous = 0;
  for (const auto& w : all_workloads()) {
    const auto [it, inserted] = seen.emplace(w.order, w.name);
    EXPECT_TRUE(inserted) << w.name << " has the order key " << w.order << " of " << it->second;
    if (&w != &all_workloads().front()) {
      EXPECT_GE(w.order, previous) << w.name;
    }
    previous = w.order;
  }
}

TEST(workload_facts, model_params_are_parameters_of_the_workload) {
  for (const auto& w : all_workloads()) {
    param_values all;
    for (const auto& p : w.params) all[p.name] = p.standard;
    const auto sizing = model_params(w);
    for (const auto& name : sizing) EXPECT_TRUE(all.contains(name)) << w.name << ": " << name;
    // What is left when they are taken away is the work: the baseline's runs differ only there.
    EXPECT_EQ(work_params(w, all).size() + sizing.size(), all.size()) << w.name;
  }
}

// The default preset never meets a system limit by chance: no default makes more units alive at
// once than a spawn model (a thread or a process per unit) can create well under pid_max (32,768
// by default). Runs that may meet a limit belong to `full`, where failing at the limit is the
// finding.
TEST(workload_facts, default_preset_keeps_every_spawn_model_far_from_system_limits) {
  for (const auto& w : all_workloads()) {
    ASSERT_NE(w.alive, nullptr) << w.name;
    param_values defaults;
    for (const auto& p : w.params) defaults[p.name] = p.standard;
    EXPECT_LT(w.alive(defaults), 15'000u) << w.name << "'s default preset";
    EXPECT_GT(w.alive(defaults), 0u) << w.name;
  }
}

// The facts as `cmbench list --json` and every report's context carry them: each registered
// model and workload once, in registry order, with every field.
TEST(facts_json, lists_every_model_and_workload_in_order_with_every_field) {
  const auto facts = all_facts();
  ASSERT_EQ(facts.at("models").size(), all_models().size());
  for (std::size_t i = 0; i < all_models().size(); ++i) {
    const auto& m = facts.at("models").at(i);
    EXPECT_EQ(m.at("name"), all_models()[i].name);
    for (const char* key : {"family", "variant", "description", "order", "baseline", "mechanism", "waits",
                            "round_trip_floor"}) {
      EXPECT_TRUE(m.contains(key)) << all_models()[i].name << ": " << key;
    }
    EXPECT_EQ(m.at("mechanism").size(), std::size(mechanism_fields));
  }
  ASSERT_EQ(facts.at("workloads").size(), all_workloads().size());
  for (std::size_t i = 0; i < all_workloads().size(); ++i) {
    const auto& w = facts.at("workloads").at(i);
    EXPECT_EQ(w.at("name"), all_workloads()[i].name);
    for (const char* key : {"description", "measures", "order", "unit", "figures", "speedup", "memory_per_unit",
                            "floor", "remote", "own_coordinator", "phases", "model_params", "params"}) {
      EXPECT_TRUE(w.contains(key)) << all_workloads()[i].name << ": " << key;
    }
    for (const auto& f : w.at("figures")) {
      EXPECT_TRUE(f.at("kind") == "time_ns" || f.at("kind") == "bytes" || f.at("kind") == "rate" ||
                  f.at("kind") == "ratio")
          << f.dump();
      EXPECT_TRUE(f.at("better") == "lower" || f.at("better") == "higher") << f.dump();
    }
  }
}

}  // namespace
}  // namespace cmbench
