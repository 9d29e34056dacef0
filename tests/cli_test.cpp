// The cmbench tool end to end: every model on every workload at quick sizes, the report's fields,
// bad input, timeouts. Runs the built binary as a user would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "models/floors/probes.hpp"
#include "tests/cli_support.hpp"

namespace {

using namespace cmbench::testing;

// `run` commands skip the floors (seconds each) unless the test asks for them (or resumes a run,
// whose options are its journal's).
command_result run(const std::string& args) {
  const bool skip_floors = args.rfind("run ", 0) == 0 && args.find("--floors") == std::string::npos &&
                           args.find("--resume") == std::string::npos;
  return run_command(std::string(CMBENCH_EXE) + " " + args + (skip_floors ? " --floors off" : ""));
}

nlohmann::json load(const std::string& path) { return load_json(path); }

const nlohmann::json& listed() {
  static const nlohmann::json facts = [] {
    const auto r = run("list --json");
    return r.exit_code == 0 ? nlohmann::json::parse(r.output, nullptr, false) : nlohmann::json();
  }();
  return facts;
}

std::vector<std::string> listed_names(const char* kind) {
  std::vector<std::string> names;
  if (listed().is_object()) {
    for (const auto& entry : listed().at(kind)) names.push_back(entry.at("name"));
  }
  return names;
}

const nlohmann::json& listed_entry(const char* kind, const std::string& name) {
  static const nlohmann::json none;
  for (const auto& entry : listed().at(kind)) {
    if (entry.at("name") == name) return entry;
  }
  return none;
}

std::string baseline_model() {
  for (const auto& m : listed().at("models")) {
    if (m.at("baseline").get<bool>()) return m.at("name");
  }
  return "";
}

TEST(cli, list_names_every_model_and_workload_with_its_facts) {
  const auto r = run("list --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_FALSE(j.at("models").empty());
  ASSERT_FALSE(j.at("workloads").empty());
  const auto plain = run("list");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  std::set<std::string> names;
  int previous = 0;
  for (const auto& m : j.at("models")) {
    const std::string name = m.at("name");
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    // In the order of the models' own keys.
    EXPECT_GE(m.at("order").get<int>(), previous) << name;
    previous = m.at("order").get<int>();
    // The plain list prints the mechanism as a table: every field, named, with its text.
    EXPECT_NE(plain.output.find("\n" + name + "  "), std::string::npos) << name;
    for (const auto& [field, text] : m.at("mechanism").items()) {
      EXPECT_FALSE(text.get<std::string>().empty()) << name << ": " << field;
      EXPECT_NE(plain.output.find("\n  " + field), std::string::npos) << field;
    }
  }
  previous = 0;
  for (const auto& w : j.at("workloads")) {
    const std::string name = w.at("name");
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    EXPECT_GE(w.at("order").get<int>(), previous) << name;
    previous = w.at("order").get<int>();
    EXPECT_FALSE(w.at("params").empty()) << name;
    EXPECT_FALSE(w.at("figures").empty()) << name;
    EXPECT_NE(plain.output.find("\n" + name + ": "), std::string::npos) << name;
  }
}

// Bad input: a clear message naming the problem, exit status 2, and no report written; a file
// already at --out survives untouched.
struct bad_input {
  std::string args;
  std::string message;
  friend void PrintTo(const bad_input& b, std::ostream* os) { *os << b.args; }
};

class cli_bad_input : public ::testing::TestWithParam<bad_input> {};

TEST_P(cli_bad_input, exits_2_with_a_message_and_writes_nothing) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  {
    std::ofstream existing(out);
    existing << "precious";
  }
  const auto r = run("run --preset quick --repetitions 1 --workloads cpu --out " + out + " " + GetParam().args);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(GetParam().message), std::string::npos) << r.output;
  std::ifstream in(out);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(out).parent_path()), fs::directory_iterator{}), 1);
}

INSTANTIATE_TEST_SUITE_P(
    all, cli_bad_input,
    ::testing::Values(bad_input{"--models threads/nope", "unknown model 'threads/nope'"},
                      bad_input{"--models gpus", "unknown model 'gpus'"},
                      bad_input{"--workloads cpu,nope", "unknown workload 'nope'"},
                      bad_input{"--param nope=3", "--param nope: no selected workload has this parameter"},
                      bad_input{"--param tasks=abc", "'abc' is not an integer"},
                      bad_input{"--param tasks=0", "tasks=0 is out of range"},
                      bad_input{"--param io.tasks=5", "workload 'io' is not selected"},
                      bad_input{"--preset fast", "unknown preset 'fast'"},
                      bad_input{"--repetitions 0", "--repetitions must be from 1 to 10000"},
                      // Counts are bounded before any sum of them: no overflow, no report of a
                      // run that ran no trial (issue 11, finding 1).
                      bad_input{"--repetitions 2147483647", "--repetitions must be from 1 to 10000"},
                      bad_input{"--warmup 2147483647", "--warmup must be from 0 to 10000"},
                      bad_input{"--warmup -1", "--warmup must be from 0 to 10000"},
                      bad_input{"--timeout -1", "--timeout must be"},
                      // One rule for --timeout: a finite deadline, said in the message (issue 11,
                      // finding 8: inf was refused as "must be positive").
                      bad_input{"--timeout inf", "--timeout must be from 0.001 to 86400 seconds (got inf)"},
                      bad_input{"--timeout 0", "--timeout must be from 0.001 to 86400 seconds"},
                      bad_input{"--timeout 1e300", "--timeout must be from 0.001 to 86400 seconds"},
                      // An existing report is never replaced without --force; --out '' is no file.
                      bad_input{"--models serial", "pass --force to replace it"},
                      bad_input{"--out ''", "--out needs a file name"},
                      bad_input{"--resume /nonexistent.journal", "--resume takes the run's options from its journal"},
                      bad_input{"--bogus-flag", "bogus-flag"}));

TEST(cli, unwritable_out_is_refused_before_any_trial) {
  temp_dir dir;
  for (const std::string& out : {std::string("/nonexistent-dir/report.json"), dir.file(""),
                                std::string("/proc/cmbench-report.json")}) {
    const auto r = run("run --preset quick --repetitions 1 --workloads cpu --models serial --out " + out);
    EXPECT_EQ(r.exit_code, 2) << out << ": " << r.output;
    EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("rep 1/1"), std::string::npos) << "a trial ran before the check: " << r.output;
  }
}

// The conformance suite over the real tool: every model, every workload, quick sizes, each
// checksum equal to the workload's reference.
class cli_conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(cli_conformance, every_model_verifies_at_quick_sizes) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --repetitions 1 --workloads " + GetParam() + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  std::set<std::string> verified;
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("run_type") != "aggregate") continue;
    EXPECT_EQ(row.at("status"), "ok") << row.at("name") << ": " << row.at("error");
    EXPECT_TRUE(row.at("verified").get<bool>()) << row.at("name");
    EXPECT_EQ(row.at("checksum"), row.at("expected_checksum")) << row.at("name");
    // No model, serial/baseline included, does a unit of work in under a nanosecond: a run that
    // fast had its work folded away by the compiler (issue 11, finding 10).
    EXPECT_GE(row.at("metrics").at("ns_per_unit").get<double>(), 1.0) << row.at("name");
    // Every figure of merit the workload declares is a metric its rows carry (every model ran,
    // the baseline included, so a speedup has its 1x).
    for (const auto& figure : listed_entry("workloads", GetParam()).at("figures")) {
      EXPECT_TRUE(row.at("metrics").contains(figure.at("metric"))) << row.at("name") << ": " << figure.at("metric");
    }
    // So is every phase it splits its time into.
    for (const auto& phase : listed_entry("workloads", GetParam()).at("phases")) {
      EXPECT_TRUE(row.at("metrics").contains(phase.at("metric"))) << row.at("name") << ": " << phase;
    }
    verified.insert(row.at("model").get<std::string>());
  }
  EXPECT_EQ(verified.size(), listed_names("models").size()) << r.output;
  // The summary's column is the workload's headline figure.
  const std::string heading = listed_entry("workloads", GetParam()).at("figures").at(0).at("heading");
  EXPECT_NE(r.output.find(heading), std::string::npos) << heading << " in " << r.output;
}

INSTANTIATE_TEST_SUITE_P(all, cli_conformance, ::testing::ValuesIn(listed_names("workloads")));

TEST(cli, report_has_google_benchmark_and_cmbench_fields) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  // The baseline and one other model (the first listed).
  const std::string baseline = baseline_model();
  const auto models = listed_names("models");
  const auto other = std::find_if(models.begin(), models.end(), [&](const std::string& m) { return m != baseline; });
  ASSERT_FALSE(baseline.empty());
  ASSERT_NE(other, models.end());
  const auto r = run("run --preset quick --repetitions 2 --workloads cpu --models " + baseline + "," + *other +
                     " --param workers=1,2 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(*other), std::string::npos) << "summary table missing: " << r.output;
  const auto report = load(out);
  const auto& context = report.at("context");
  for (const char* key : {"date", "host_name", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled", "caches",
                          "load_avg", "load_avg_after", "library_build_type", "json_schema_version", "cpu_model", "affinity",
                          "governor", "kernel", "compiler", "compiler_flags", "build_type", "git_sha",
                          "library_versions", "warnings", "limits", "preset", "repetitions", "warmup",
                          "timeout_seconds", "command_line", "floors", "cpu_before", "steal_share_during"}) {
    EXPECT_TRUE(context.contains(key)) << key;
  }
  // Measured from /proc/stat, not copied from the load average: CPUs' worth of other work, in range.
  const auto& before = context.at("cpu_before");
  ASSERT_TRUE(before.is_object()) << before.dump();
  EXPECT_GT(before.at("window_s").get<double>(), 0.0);
  EXPECT_GE(before.at("busy_cpus").get<double>(), 0.0);
  EXPECT_LE(before.at("busy_cpus").get<double>(), before.at("online_cpus").get<double>() + 0.01);
  EXPECT_GE(before.at("steal_cpus").get<double>(), 0.0);
  EXPECT_GE(context.at("steal_share_during").get<double>(), 0.0);
  EXPECT_LE(context.at("steal_share_during").get<double>(), 1.0);
  // Google Benchmark's schema stays 1 (its compare.py refuses any other); cmbench's own format is 2.
  EXPECT_EQ(context.at("json_schema_version"), 1);
  EXPECT_EQ(context.at("cmbench_schema_version"), 2);
  // Every model's and workload's facts, as `cmbench list --json` has them.
  EXPECT_EQ(context.at("models"), listed().at("models"));
  EXPECT_EQ(context.at("workloads"), listed().at("workloads"));
  for (const char* lib : {"tbb", "asio", "nlohmann_json", "cli11"}) {
    EXPECT_FALSE(context.at("library_versions").at(lib).get<std::string>().empty()) << lib;
  }
  const auto& rows = report.at("benchmarks");
  // The other model at 2 worker counts, the baseline once (it ignores workers), each 2 repetitions + 1 median.
  ASSERT_EQ(rows.size(), 9u);
  // The baseline's median wall time at this work: every row's speedup is it over the row's own.
  double baseline_ms = 0;
  for (const auto& row : rows) {
    if (row.at("model") == baseline_model() && row.at("run_type") == "aggregate") baseline_ms = row.at("real_time");
  }
  ASSERT_GT(baseline_ms, 0);
  int iterations = 0, aggregates = 0;
  for (const auto& row : rows) {
    for (const char* key : {"name", "run_name", "run_type", "repetitions", "threads", "iterations", "real_time",
                            "cpu_time", "time_unit", "family_index", "per_family_instance_index", "workload",
                            "model", "family", "variant", "params", "status", "error", "verified", "checksum",
                            "expected_checksum", "units_at_once", "resources", "metrics"}) {
      EXPECT_TRUE(row.contains(key)) << key << " in " << row.at("name");
    }
    // The mechanism is the model's, in context.models: not repeated in every row.
    EXPECT_FALSE(row.contains("mechanism")) << row.at("name");
    EXPECT_EQ(row.at("units_at_once"), 64);
    // A speedup over the baseline at the same work, the baseline's own included (about 1).
    ASSERT_TRUE(row.at("metrics").contains("speedup")) << row.at("name");
    EXPECT_NEAR(row.at("metrics").at("speedup").get<double>(), baseline_ms / row.at("real_time").get<double>(),
                1e-6 * baseline_ms / row.at("real_time").get<double>())
        << row.at("name");
    EXPECT_EQ(row.at("params").at("tasks"), 64);
    EXPECT_EQ(row.at("threads"), row.at("params").at("workers"));
    EXPECT_NE(row.at("name").get<std::string>().find("workers:" + std::to_string(row.at("threads").get<int>())),
              std::string::npos);
    const auto& res = row.at("resources");
    for (const char* key : {"wall_ns", "setup_ns", "user_cpu_ns", "sys_cpu_ns", "cpu_utilization", "peak_rss_bytes",
                            "rss_before_bytes", "peak_pss_bytes", "pss_before_bytes", "peak_processes", "voluntary_context_switches",
                            "involuntary_context_switches", "minor_page_faults", "major_page_faults"}) {
      EXPECT_TRUE(res.contains(key)) << key;
    }
    EXPECT_GT(res.at("peak_rss_bytes").get<double>(), 0);
    // PSS splits shared pages among the processes sharing them: never more than RSS.
    EXPECT_GT(res.at("peak_pss_bytes").get<double>(), 0);
    EXPECT_LE(res.at("pss_before_bytes").get<double>(), res.at("rss_before_bytes").get<double>());
    EXPECT_GT(row.at("real_time").get<double>(), 0);
    EXPECT_NEAR(row.at("real_time").get<double>() * 1e6, res.at("wall_ns").get<double>(),
                res.at("wall_ns").get<double>() * 1e-6 + 1);
    EXPECT_TRUE(row.at("metrics").contains("tasks_per_second"));
    if (row.at("run_type") == "iteration") {
      ++iterations;
      EXPECT_EQ(row.at("name"), row.at("run_name"));
      EXPECT_LT(row.at("repetition_index").get<int>(), 2);
    } else {
      ++aggregates;
      EXPECT_EQ(row.at("aggregate_name"), "median");
      EXPECT_EQ(row.at("name"), row.at("run_name").get<std::string>() + "_median");
      EXPECT_EQ(row.at("samples").at("real_time").size(), 2u);
      EXPECT_EQ(row.at("ok_repetitions"), 2);
    }
  }
  EXPECT_EQ(iterations, 6);
  EXPECT_EQ(aggregates, 3);
}

// What only the run itself knows reaches the report: pingpong's latency histogram with its
// percentiles, pipeline's blocked sends; the summary shows each workload's own figure.
TEST(cli, report_carries_latency_and_observed_figures) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --repetitions 2 --workloads pingpong,pipeline --models " + baseline_model() +
                     " --param capacity=1 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* workload : {"pingpong", "pipeline"}) {
    const std::string heading = listed_entry("workloads", workload).at("figures").at(0).at("heading");
    EXPECT_NE(r.output.find(heading), std::string::npos) << heading << " in " << r.output;
  }
  const auto report = load(out);
  int pingpong_rows = 0, pipeline_rows = 0;
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("workload") == "pingpong") {
      ++pingpong_rows;
      const auto& latency = row.at("latency");
      const auto messages = row.at("params").at("messages").get<std::uint64_t>();
      const std::uint64_t reps = row.at("run_type") == "aggregate" ? 2 : 1;  // the median row pools both
      EXPECT_EQ(latency.at("count").get<std::uint64_t>(), messages * reps);
      EXPECT_EQ(latency.at("unit"), "ns");
      double previous = 0;
      for (const char* q : {"50", "90", "99", "99.9", "99.99", "100"}) {
        const double v = latency.at("percentiles").at(q).get<double>();
        EXPECT_GE(v, previous) << q;
        previous = v;
      }
      EXPECT_EQ(latency.at("percentiles").at("100"), latency.at("max"));
      std::uint64_t counted = 0;
      for (const auto& bucket : latency.at("histogram")) {
        EXPECT_LE(bucket.at(0).get<std::uint64_t>(), bucket.at(1).get<std::uint64_t>());
        counted += bucket.at(2).get<std::uint64_t>();
      }
      EXPECT_EQ(counted, latency.at("count").get<std::uint64_t>());
      EXPECT_TRUE(row.at("metrics").contains("latency_p50_ns"));
    } else {
      ++pipeline_rows;
      // Capacity 1 on one thread: the producer fills the channel and must wait at least once.
      EXPECT_GT(row.at("metrics").at("blocked_sends").get<double>(), 0) << row.at("name");
      EXPECT_TRUE(row.at("metrics").contains("blocked_send_fraction"));
    }
  }
  EXPECT_EQ(pingpong_rows, 3);
  EXPECT_EQ(pipeline_rows, 3);
}

// The floors are measured in the same run, recorded in the context, and each pingpong row is read
// against its own model's round-trip floor.
TEST(cli, report_reads_round_trips_against_floors_measured_in_the_same_run) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --repetitions 1 --workloads cpu,pingpong --models all --floors on "
                     "--floor-time 0.01 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the p50 round trip (or remote call) over the round-trip floor it is read against"), std::string::npos) << r.output;
  // Three measurements: before the run, then just before and just after pingpong's trials.
  EXPECT_NE(r.output.find("floors before the pingpong trials"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("floors after the pingpong trials"), std::string::npos) << r.output;
  const auto report = load(out);
  const auto& floors = report.at("context").at("floors");
  const bool two_cpus = report.at("context").at("num_cpus").get<int>() >= 2;
  // Each probe's floor is the lower of its two measurements; returns probe name -> floor.
  auto check_probes = [&](const nlohmann::json& combined, bool every_probe) {
    EXPECT_TRUE(combined.at("errors").empty()) << combined.dump();
    std::map<std::string, std::array<double, 3>> measured;  // floor, before, after
    for (const auto& p : combined.at("probes")) {
      const std::string name = p.at("name");
      if (!two_cpus && name.ends_with("_cross_cpu")) continue;  // skipped: needs two CPUs
      EXPECT_TRUE(p.at("ns_per_op").is_number()) << p.dump();
      if (!p.at("ns_per_op").is_number()) continue;
      EXPECT_GT(p.at("ns_per_op").get<double>(), 0) << p.dump();
      EXPECT_LE(p.at("ns_per_op").get<double>(), p.at("before_ns").get<double>());
      EXPECT_LE(p.at("ns_per_op").get<double>(), p.at("after_ns").get<double>());
      // Round trips are timed one by one: their floor is a median.
      const auto* probe = cmbench::floors::find_probe(name);
      EXPECT_NE(probe, nullptr) << name;
      const bool timed_each = probe != nullptr && probe->timed_each;
      EXPECT_EQ(p.at("p50_ns").is_number(), timed_each) << p.dump();
      const char* suffix = timed_each ? "_p50_ns" : "_ns";
      const double before = p.at(std::string("before") + suffix).get<double>();
      const double after = p.at(std::string("after") + suffix).get<double>();
      measured[name] = {std::min(before, after), before, after};
      EXPECT_DOUBLE_EQ((timed_each ? p.at("p50_ns") : p.at("ns_per_op")).get<double>(), std::min(before, after));
    }
    if (!every_probe) return measured;
    for (const char* name : {"condvar_round_trip", "condvar_round_trip_same_cpu", "pipe_round_trip",
                             "pipe_round_trip_same_cpu", "asio_post", "asio_post_round_trip",
                             "asio_coroutine_yield", "asio_channel_round_trip", "thread_create_join",
                             "fork_exit_wait", "futex_round_trip", "pool_handoff_round_trip",
                             "process_pool_handoff_round_trip", "tbb_handoff_round_trip",
                             "asio_cross_loop_round_trip"}) {
      EXPECT_EQ(measured.count(name), 1u) << name;
    }
    return measured;
  };
  check_probes(floors, true);
  ASSERT_TRUE(floors.at("by_workload").contains("pingpong")) << floors.dump();
  EXPECT_EQ(floors.at("by_workload").size(), 1u) << "only workloads read against a floor are bracketed";
  // The bracket measures exactly the probes pingpong's rows are read against.
  const auto measured = check_probes(floors.at("by_workload").at("pingpong"), false);
  std::set<std::string> wanted;
  for (const auto& m : listed().at("models")) {
    if (m.at("round_trip_floor").is_null()) continue;
    const std::string name = m.at("round_trip_floor");
    wanted.insert(name);
    if (name.ends_with("_cross_cpu")) wanted.insert(name.substr(0, name.size() - 10));
  }
  std::set<std::string> bracketed;
  for (const auto& p : floors.at("by_workload").at("pingpong").at("probes")) bracketed.insert(p.at("name"));
  EXPECT_EQ(bracketed, wanted);
  for (const auto& row : report.at("benchmarks")) {
    const auto& metrics = row.at("metrics");
    const std::string model = row.at("model");
    const auto& declared = listed_entry("models", model).at("round_trip_floor");
    if (declared.is_null()) {  // a model with no hand-off floor (the baseline's units share one thread)
      EXPECT_TRUE(row.at("round_trip_floor").is_null()) << row.at("name");
      EXPECT_FALSE(metrics.contains("p50_over_floor")) << row.at("name");
      continue;
    }
    if (row.at("workload") != "pingpong") {
      EXPECT_FALSE(metrics.contains("p50_over_floor")) << row.at("name");
      continue;
    }
    // Each model is read against the floor of its own mechanism, the one it declares (a blocking
    // one across two CPUs, unpinned on one CPU), measured just before and just after pingpong's
    // own trials.
    std::string floor = declared;
    if (!two_cpus && floor.ends_with("_cross_cpu")) floor.resize(floor.size() - std::string("_cross_cpu").size());
    EXPECT_EQ(row.at("round_trip_floor"), floor) << row.at("name");
    ASSERT_TRUE(measured.contains(floor)) << floor;
    const auto& [ns, before, after] = measured.at(floor);
    EXPECT_DOUBLE_EQ(metrics.at("round_trip_floor_ns").get<double>(), ns);
    EXPECT_DOUBLE_EQ(metrics.at("round_trip_floor_before_ns").get<double>(), before);
    EXPECT_DOUBLE_EQ(metrics.at("round_trip_floor_after_ns").get<double>(), after);
    if (row.at("run_type") == "iteration") {
      EXPECT_NEAR(metrics.at("p50_over_floor").get<double>(), metrics.at("latency_p50_ns").get<double>() / ns, 1e-9);
    } else {
      // The summary's (x) is the median row's p50_over_floor, on the model's line of the pingpong block.
      char cell[32];
      std::snprintf(cell, sizeof(cell), "(%.2gx)", metrics.at("p50_over_floor").get<double>());
      const auto block = r.output.find("\npingpong ");
      ASSERT_NE(block, std::string::npos) << r.output;
      const auto line_start = r.output.find("\n" + model + " ", block);
      ASSERT_NE(line_start, std::string::npos) << model;
      const std::string line = r.output.substr(line_start + 1, r.output.find('\n', line_start + 1) - line_start - 1);
      EXPECT_NE(line.find(cell), std::string::npos) << line << " should show " << cell;
    }
  }
}

// memory's figure is measured with every unit provably alive (on the workload's signal), and
// divides by the units alive then: the quick processes/spawn run sees all its 1,000 unit
// processes, threads/spawn all its threads.
TEST(cli, memory_is_measured_with_every_unit_alive) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --repetitions 1 --workloads memory --models processes/spawn,threads/spawn,"
                     "coroutines/asio --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);  // kept: a range-for over a temporary's member would dangle
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("run_type") != "aggregate") continue;
    const std::string model = row.at("model");
    const auto units = row.at("params").at("units").get<double>();
    const auto& resources = row.at("resources");
    const auto& metrics = row.at("metrics");
    EXPECT_EQ(resources.at("memory_measured"), "all_alive") << model;
    EXPECT_EQ(metrics.at("units_alive").get<double>(), units) << model;
    EXPECT_EQ(metrics.at("measured_with_all_alive").get<double>(), 1.0) << model;
    if (model == "processes/spawn") {
      EXPECT_GE(resources.at("processes_at_measurement").get<double>(), units + 1);
    }
    if (model == "threads/spawn") {
      EXPECT_GE(resources.at("threads_at_measurement").get<double>(), units + 1);
    }
    EXPECT_NEAR(metrics.at("bytes_per_unit").get<double>(),
                resources.at("memory_bytes_at_measurement").get<double>() / units, 1e-6) << model;
    EXPECT_GT(resources.at("memory_samples").get<double>(), 0) << model;
    EXPECT_TRUE(resources.contains("sampler_cpu_ns")) << model;
  }
}

TEST(cli, floors_subcommand_prints_every_probe) {
  const auto r = run("floors --json --min-time 0.005");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_TRUE(j.is_array());
  EXPECT_GE(j.size(), 8u);
  for (const auto& p : j) {
    EXPECT_FALSE(p.contains("error")) << p.dump();
    if (p.contains("skipped")) {  // only the cross-CPU round trips, on a one-CPU machine
      EXPECT_TRUE(p.at("name").get<std::string>().ends_with("_cross_cpu")) << p.dump();
      continue;
    }
    EXPECT_GT(p.at("ns_per_op").get<double>(), 0) << p.dump();
    EXPECT_TRUE(p.contains("p50_ns")) << p.dump();
    EXPECT_EQ(p.at("samples_ns").size(), 3u);
  }
  EXPECT_NE(run("floors --min-time 0").exit_code, 0);
  EXPECT_NE(run("run --floor-time -1 --preset quick --workloads cpu --models serial").exit_code, 0);
  EXPECT_NE(run("run --floors maybe --preset quick --workloads cpu --models serial").exit_code, 0);
}

// CPU time covers the wall-clock window and nothing else, for every model: no row may show more
// CPUs busy than the trial may use. (Counting a pool's teardown, or its forked workers' whole
// lives, made processes/pool show 4.65 CPUs on a 2-CPU machine.)
TEST(cli, cpu_time_never_exceeds_the_cpus_the_trial_may_use) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const double cpus = CPU_COUNT(&set);
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --workloads spawn,pingpong,io --repetitions 1 --floors off --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  EXPECT_EQ(report.at("context").at("affinity").size(), static_cast<std::size_t>(cpus));
  int checked = 0;
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("status") != "ok") continue;
    const auto& res = row.at("resources");
    // Reading the CPU clocks costs CPU time the wall clock does not see: under a microsecond,
    // several when an interrupt lands. 20 us of slack, which only the shortest runs (serial
    // spawn: 1 us) need.
    const double wall_ns = res.at("wall_ns").get<double>();
    EXPECT_LE(res.at("cpu_utilization").get<double>(), cpus * 1.15 + 0.1 + 20'000 / wall_ns)
        << row.at("name") << ": user " << res.at("user_cpu_ns") << " ns, sys " << res.at("sys_cpu_ns")
        << " ns in " << res.at("wall_ns") << " ns";
    EXPECT_GE(res.at("user_cpu_ns").get<double>(), 0) << row.at("name");
    EXPECT_GE(res.at("sys_cpu_ns").get<double>(), 0) << row.at("name");
    ++checked;
  }
  // 3 workloads x every model, an iteration and a median row.
  EXPECT_EQ(checked, 3 * static_cast<int>(listed_names("models").size()) * 2) << r.output;
}

// Exit status: 0 when every run was ok or stopped at a named system limit, 1 when a trial failed
// otherwise (crash, timeout, deadlock, wrong checksum), 2 for bad input. The report is written
// either way.
TEST(cli, a_timed_out_trial_exits_1_with_the_report_written) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  // --accept-long-runs: the cost estimate would refuse a trial that cannot fit its timeout.
  const auto r = run("run --workloads io --param wait_ms=5000 --param tasks=1 --timeout 1 --models serial/baseline "
                     "--floors off --repetitions 1 --accept-long-runs --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  ASSERT_TRUE(fs::exists(out)) << r.output;
  const auto report = load(out);
  int rows = 0;
  for (const auto& row : report.at("benchmarks")) {
    EXPECT_EQ(row.at("status"), "failed") << row.at("name");
    EXPECT_NE(row.at("error").get<std::string>().find("timeout after 1 s"), std::string::npos) << row.at("error");
    ++rows;
  }
  EXPECT_EQ(rows, 2);  // the repetition and its median
}

TEST(cli, a_run_stopped_at_a_named_limit_exits_0) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto start = std::chrono::steady_clock::now();
  // 11,111,111 units: processes/pool refuses the tree at once, its task ring being smaller.
  const auto r = run("run --workloads spawn --param leaves=10M --models processes/pool --preset quick "
                     "--repetitions 1 --floors off --out " + out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(elapsed, std::chrono::seconds{20}) << "the limit should be met at once";
  const auto report = load(out);
  int rows = 0;
  for (const auto& row : report.at("benchmarks")) {
    EXPECT_EQ(row.at("status"), "failed") << row.at("name");
    EXPECT_NE(row.at("error").get<std::string>().find("does not fit the shared task ring"), std::string::npos)
        << row.at("error");
    ++rows;
  }
  EXPECT_EQ(rows, 2);
}

TEST(cli, run_help_explains_the_exit_status) {
  const auto r = run("run --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* text : {"Exit status", "0 ", "1 ", "2 ", "limit"}) {
    EXPECT_NE(r.output.find(text), std::string::npos) << text << " in " << r.output;
  }
}

// Where the expected checksum comes from, as the README tells it: each workload's reference(),
// computed once per parameter combination before the trials, not a serial/baseline run.
TEST(cli, readme_says_where_the_expected_checksum_comes_from) {
  std::ifstream in(fs::path(__FILE__).parent_path().parent_path() / "README.md");
  ASSERT_TRUE(in) << "README.md not found in the source tree";
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(readme.find("`reference()`"), std::string::npos);
  for (const char* wrong : {"checksum against serial/baseline's", "serial/baseline` computes"}) {
    EXPECT_EQ(readme.find(wrong), std::string::npos) << wrong;
  }
}

// Ctrl-C (or a kill) stops the trial too, though it runs in its own process group; before any
// trial finished there is nothing to keep, so it writes no report and no journal.
TEST(cli, interrupting_a_run_stops_its_trial_and_writes_nothing) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const pid_t cmbench = fork();
  ASSERT_GE(cmbench, 0);
  if (cmbench == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    // 200 threads blocked for 60 s: the trial is alive and waiting when the signal comes.
    execl(CMBENCH_EXE, CMBENCH_EXE, "run", "--workloads", "memory", "--models", "threads/spawn", "--param",
          "units=200", "--param", "hold_ms=60000", "--repetitions", "1", "--floors", "off", "--out", out.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::vector<pid_t> trials;
  for (int i = 0; i < 300 && trials.empty(); ++i) {  // up to 30 s for the trial to start
    usleep(100'000);
    trials = children_running(cmbench, "trial");
  }
  if (trials.empty()) kill(cmbench, SIGKILL);
  ASSERT_EQ(trials.size(), 1u) << "no trial process appeared";
  usleep(300'000);  // let it start its threads
  ASSERT_EQ(kill(cmbench, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
  char state = process_state(trials[0]);
  for (int i = 0; i < 50 && state != '\0' && state != 'Z'; ++i) {
    usleep(100'000);
    state = process_state(trials[0]);
  }
  EXPECT_TRUE(state == '\0' || state == 'Z') << "trial " << trials[0] << " still running, state " << state;
  if (state != '\0' && state != 'Z') kill(-trials[0], SIGKILL);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".journal"));
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

// In-range values that would mean hours of work are refused before anything runs, with the
// estimate and the flag that accepts it; the reference checksum runs in a child under the timeout
// (issue 11, finding 2).
TEST(cli, a_run_past_its_least_cost_is_refused_before_anything_runs) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  for (const std::string& args : {std::string("--workloads contention --param updates=1G --timeout 5"),
                                  std::string("--workloads cpu --param tasks=100M"),
                                  std::string("--workloads mixed --param tasks=10M --param rounds=100k"),
                                  std::string("--repetitions 10000")}) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run("run " + args + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find("at least"), std::string::npos) << args << ": " << r.output;
    EXPECT_NE(r.output.find("--accept-long-runs"), std::string::npos) << args << ": " << r.output;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << args;
    EXPECT_FALSE(fs::exists(out));
  }
  // Accepted, the same kind of run goes ahead (and here times out: exit 1, not 2).
  const auto accepted = run("run --workloads io --models serial --param tasks=20 --param wait_ms=100 "
                            "--repetitions 1 --timeout 1 --accept-long-runs --out " + out);
  EXPECT_EQ(accepted.exit_code, 1) << accepted.output;
  EXPECT_TRUE(fs::exists(out));
  // A reference that outlasts the timeout is stopped, not waited for.
  const auto start = std::chrono::steady_clock::now();
  const auto slow = run("run --workloads contention --models serial --param updates=100M --timeout 1 "
                        "--accept-long-runs --out " + dir.file("slow.json"));
  EXPECT_EQ(slow.exit_code, 2) << slow.output;
  EXPECT_NE(slow.output.find("was not computed within --timeout"), std::string::npos) << slow.output;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(cli, timeout_kills_the_trial_and_skips_its_repetitions) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  // Serial waits of 197 x 50 ms take 10 s: far over the 0.5 s timeout.
  const auto r = run("run --models serial,processes/spawn --workloads io --param tasks=197 --param wait_ms=50 "
                     "--param concurrency=10 --repetitions 2 --timeout 0.5 --accept-long-runs --out " + out);
  ASSERT_EQ(r.exit_code, 1) << r.output;  // a timeout is a failure, the report is still written
  const auto report = load(out);
  int checked = 0;
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("model") != "serial/baseline" && row.at("model") != "processes/spawn") continue;
    if (row.at("run_type") == "aggregate") {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_NE(row.at("error").get<std::string>().find("timeout after 0.5 s"), std::string::npos) << row.at("error");
    } else if (row.at("repetition_index") == 0) {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_TRUE(row.at("error_occurred").get<bool>());
      EXPECT_EQ(row.at("error"), "timeout after 0.5 s");
    } else {
      EXPECT_EQ(row.at("status"), "skipped");
      EXPECT_NE(row.at("error").get<std::string>().find("not repeated"), std::string::npos);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  // The whole process group died with the trial: no child of processes/spawn is left behind.
  // (The trial's request, with its unusual tasks=197, is on its command line and its children's.)
  FILE* pipe = popen("pgrep -f '\"tasks\":19[7],'", "r");  // [7]: the shell running pgrep must not match
  ASSERT_NE(pipe, nullptr);
  char buffer[256];
  std::string left;
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) left += buffer;
  pclose(pipe);
  EXPECT_EQ(left, "") << "processes left behind";
}

// --- Finished work is never lost; output and arguments follow one rule each (issue 11, 7 and 8) ---

std::vector<std::string> trial_dirs_in(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("cmbench-trial-", 0) == 0) found.push_back(e.path().string());
  }
  return found;
}

// An interrupted suite keeps every trial that finished: each is in OUT.journal as it ends, and a
// partial report says how far it got. --resume runs only the rest, to the complete report.
TEST(cli, an_interrupted_suite_leaves_a_partial_report_and_resume_completes_it) {
  for (const int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    temp_dir dir;
    const std::string out = dir.file("report.json");
    const std::string journal = out + ".journal";
    const pid_t cmbench = start_cmbench({"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1",
                                         "--param", "wait_ms=300", "--repetitions", "10", "--floors", "off",
                                         "--out", out}, dir.file("first.log"), dir.file(""));
    // The header line and three finished trials.
    const bool three_done = wait_until([&] { return lines_of(journal) >= 4; }, 30);
    kill(cmbench, three_done ? sig : SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
    ASSERT_TRUE(three_done) << "no journal of finished trials: " << file_text(dir.file("first.log"));
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    const std::size_t finished = lines_of(journal) - 1;
    EXPECT_GE(finished, 3u);
    EXPECT_LT(finished, 10u);
    const std::string log = file_text(dir.file("first.log"));
    EXPECT_NE(log.find("--resume " + journal), std::string::npos) << log;

    // The partial report: valid, says it is partial and how far it got; the rest is "not run".
    ASSERT_TRUE(fs::exists(out)) << log;
    const auto partial = load(out);
    const auto& context = partial.at("context");
    EXPECT_EQ(context.at("partial"), true);
    EXPECT_NE(context.at("partial_reason").get<std::string>().find("interrupted by"), std::string::npos);
    EXPECT_EQ(context.at("trials_planned"), 10);
    EXPECT_EQ(context.at("trials_finished"), finished);
    EXPECT_EQ(context.at("journal"), journal);
    std::vector<double> kept_times;
    std::size_t ok = 0, not_run = 0;
    for (const auto& row : partial.at("benchmarks")) {
      if (row.at("run_type") == "aggregate") {
        EXPECT_EQ(row.at("status"), "skipped") << row.dump();
        EXPECT_EQ(row.at("ok_repetitions"), finished);
        continue;
      }
      if (row.at("status") == "ok") {
        ++ok;
        kept_times.push_back(row.at("real_time").get<double>());
      } else {
        EXPECT_EQ(row.at("status"), "skipped");
        EXPECT_NE(row.at("error").get<std::string>().find("not run"), std::string::npos) << row.at("error");
        ++not_run;
      }
    }
    EXPECT_EQ(ok, finished);
    EXPECT_EQ(ok + not_run, 10u);
    EXPECT_FALSE(fs::exists(out + ".lock"));
    EXPECT_TRUE(trial_dirs_in(dir.file("")).empty()) << "the stopped trial's directory was left behind";

    // Resumed: the same command line from the journal, only the missing repetitions run.
    const auto resumed = run("run --resume " + journal);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(count_of(resumed.output, " rep "), 10 - finished) << resumed.output;
    const auto report = load(out);
    EXPECT_EQ(report.at("context").at("partial"), false);
    EXPECT_EQ(report.at("context").at("trials_finished"), 10);
    EXPECT_EQ(report.at("context").at("resumed_from").at("trials_from_journal"), finished);
    EXPECT_EQ(report.at("context").at("command_line").get<std::string>().find("--resume"), std::string::npos);
    std::size_t index = 0;
    for (const auto& row : report.at("benchmarks")) {
      EXPECT_EQ(row.at("status"), "ok") << row.dump();
      if (row.at("run_type") == "aggregate") {
        EXPECT_EQ(row.at("ok_repetitions"), 10);
        continue;
      }
      EXPECT_EQ(row.at("repetition_index"), index);
      // The finished repetitions are the journal's, not run again.
      if (index < kept_times.size()) {
        EXPECT_EQ(row.at("real_time").get<double>(), kept_times[index]);
      }
      ++index;
    }
    EXPECT_EQ(index, 10u);
    EXPECT_FALSE(fs::exists(journal)) << "a complete report's journal has served";
    EXPECT_FALSE(fs::exists(out + ".lock"));
  }
}

// A report that cannot be written where asked, after every trial ran, goes to a fallback file the
// error names, exit 1; the journal stays, and --resume writes it where asked once it can.
TEST(cli, a_report_that_cannot_be_written_goes_to_a_fallback_the_error_names) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const std::string journal = out + ".journal";
  const pid_t cmbench = start_cmbench({"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1",
                                       "--param", "wait_ms=300", "--repetitions", "3", "--floors", "off", "--out",
                                       out}, dir.file("run.log"));
  const bool started = wait_until([&] { return lines_of(journal) >= 2; }, 30);
  if (started) {
    // Passed the up-front check; now nothing can be renamed over --out.
    fs::create_directory(out);
    std::ofstream(out + "/keep") << "x";
  } else {
    kill(cmbench, SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  const std::string log = file_text(dir.file("run.log"));
  ASSERT_TRUE(started) << "no journal of finished trials: " << log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << "status " << status << ": " << log;
  EXPECT_NE(log.find("cannot write report " + out + ": Is a directory"), std::string::npos) << log;
  const std::string said = "the report was written to ";
  const auto at = log.find(said);
  ASSERT_NE(at, std::string::npos) << log;
  const std::string fallback = log.substr(at + said.size(), log.find(" instead", at) - at - said.size());
  ASSERT_TRUE(fs::exists(fallback)) << fallback;
  const auto report = load(fallback);
  EXPECT_EQ(report.at("context").at("partial"), false);
  std::size_t ok = 0;
  for (const auto& row : report.at("benchmarks")) ok += row.at("status") == "ok" && row.at("run_type") == "iteration";
  EXPECT_EQ(ok, 3u);
  ASSERT_TRUE(fs::exists(journal)) << "the journal must stay while the report is not where asked";

  // Where asked, once that works: nothing runs again.
  fs::remove_all(out);
  const auto resumed = run("run --resume " + journal);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(count_of(resumed.output, " rep "), 0u) << resumed.output;
  EXPECT_EQ(load(out).at("benchmarks").size(), 4u);
  EXPECT_FALSE(fs::exists(journal));
}

TEST(cli, an_existing_report_is_replaced_only_with_force) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  std::ofstream(out) << "precious";
  const std::string args = "run --preset quick --repetitions 1 --workloads cpu --models serial --out " + out;
  const auto refused = run(args);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--force"), std::string::npos) << refused.output;
  EXPECT_EQ(file_text(out), "precious");
  const auto forced = run(args + " --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_EQ(load(out).at("benchmarks").size(), 2u);
  EXPECT_FALSE(fs::exists(out + ".journal"));
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

// Two runs writing one --out at once would race: the second is refused (OUT.lock), exit 2, and
// the first goes on untouched.
TEST(cli, a_second_run_on_the_same_out_is_refused) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const pid_t first = start_cmbench({"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1",
                                     "--param", "wait_ms=300", "--repetitions", "4", "--floors", "off", "--out",
                                     out}, dir.file("first.log"));
  // Locked: the lock file holds the pid of the run that locked it.
  const bool running = wait_until([&] { return file_text(out + ".lock") == std::to_string(first); }, 30);
  const auto second = run("run --workloads io --models serial --param tasks=1 --param wait_ms=300 "
                          "--repetitions 1 --out " + out);
  int status = 0;
  ASSERT_EQ(waitpid(first, &status, 0), first);
  ASSERT_TRUE(running) << file_text(dir.file("first.log"));
  EXPECT_EQ(second.exit_code, 2) << second.output;
  EXPECT_NE(second.output.find("is being written by another cmbench run (pid " + std::to_string(first) + ")"),
            std::string::npos) << second.output;
  EXPECT_EQ(count_of(second.output, " rep "), 0u) << "a trial ran before the check: " << second.output;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << file_text(dir.file("first.log"));
  EXPECT_EQ(load(out).at("benchmarks").size(), 5u);  // the first run's 4 repetitions and their median
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

// `--param tasks=10 --param tasks=20`: both values run, as any value list does.
TEST(cli, repeated_param_for_one_name_merges_its_values) {
  temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("run --preset quick --repetitions 1 --workloads cpu --models serial --param tasks=10 "
                     "--param tasks=20,10 --param cpu.tasks=30 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<int> tasks;
  const auto report = load(out);
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("run_type") == "aggregate") tasks.push_back(row.at("params").at("tasks").get<int>());
  }
  EXPECT_EQ(tasks, (std::vector<int>{10, 20, 30}));
  const auto help = run("run --help");
  EXPECT_NE(help.output.find("merge"), std::string::npos) << help.output;
}

// Trial directories go in TMPDIR; none is left when a trial is killed, and one left by a cmbench
// killed outright (no handler runs on SIGKILL) is removed by the next run.
TEST(cli, temporary_directories_honour_tmpdir_and_none_is_left_behind) {
  temp_dir dir;
  const std::string tmp = dir.file("tmp");
  fs::create_directory(tmp);
  const std::vector<std::string> waiting{"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1",
                                         "--param", "wait_ms=60000", "--repetitions", "1", "--floors", "off",
                                         "--out"};
  auto args = [&](const std::vector<std::string>& base, const std::string& out) {
    std::vector<std::string> all = base;
    all.push_back(out);
    return all;
  };

  // A trial killed by someone else: cmbench goes on, its directory goes with it.
  pid_t cmbench = start_cmbench(args(waiting, dir.file("a.json")), dir.file("a.log"), tmp);
  std::vector<pid_t> trials;
  const bool in_tmpdir = wait_until([&] { return !trial_dirs_in(tmp).empty(); }, 30) &&
                         wait_until([&] { return !(trials = children_running(cmbench, "trial")).empty(); }, 10);
  if (in_tmpdir) kill(trials[0], SIGKILL);
  else kill(cmbench, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  ASSERT_TRUE(in_tmpdir) << "no trial directory in TMPDIR " << tmp;
  EXPECT_NE(file_text(dir.file("a.log")).find("killed by signal 9"), std::string::npos) << file_text(dir.file("a.log"));
  EXPECT_TRUE(trial_dirs_in(tmp).empty()) << trial_dirs_in(tmp).front();

  // cmbench itself killed outright: its trial dies with it; the next run removes the directory.
  cmbench = start_cmbench(args(waiting, dir.file("b.json")), dir.file("b.log"), tmp);
  ASSERT_TRUE(wait_until([&] { return !children_running(cmbench, "trial").empty(); }, 30));
  kill(cmbench, SIGKILL);
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  const pid_t next = start_cmbench({"run", "--preset", "quick", "--workloads", "cpu", "--models", "serial",
                                    "--repetitions", "1", "--floors", "off", "--out", dir.file("c.json")},
                                   dir.file("c.log"), tmp);
  ASSERT_EQ(waitpid(next, &status, 0), next);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << file_text(dir.file("c.log"));
  EXPECT_TRUE(trial_dirs_in(tmp).empty()) << trial_dirs_in(tmp).front();
}

// Only a trial directory whose harness is gone is stale: one of a live process is kept whatever
// that process is (a test binary runs trials in-process; another cmbench may be built elsewhere).
TEST(cli, a_live_process_keeps_its_trial_directories) {
  temp_dir dir;
  const std::string tmp = dir.file("tmp");
  fs::create_directory(tmp);
  const std::string live = tmp + "/cmbench-trial-" + std::to_string(getpid()) + "-abcdef";
  fs::create_directory(live);
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  const std::string stale = tmp + "/cmbench-trial-" + std::to_string(gone) + "-abcdef";
  fs::create_directory(stale);
  const pid_t cmbench = start_cmbench({"run", "--preset", "quick", "--workloads", "cpu", "--models", "serial",
                                       "--repetitions", "1", "--floors", "off", "--out", dir.file("r.json")},
                                      dir.file("r.log"), tmp);
  int status = 0;
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << file_text(dir.file("r.log"));
  EXPECT_TRUE(fs::exists(live)) << "the directory of a live process was removed";
  EXPECT_FALSE(fs::exists(stale)) << "the directory of a finished process was kept";
}

}  // namespace
