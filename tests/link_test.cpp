// The --link flag's syntax and meaning (harness/link.hpp): every key, unit and subset it takes,
// and a clear error for anything else; then `cmbench run --link` itself: its rows, its report, its
// refusals, and no process left.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "harness/link.hpp"
#include "harness/params.hpp"
#include "harness/report.hpp"
#include "tests/cli_support.hpp"

namespace cmbench {
namespace {

using std::chrono::nanoseconds;

TEST(link_conditions, parses_every_key_and_unit) {
  const link_conditions all = parse_link("delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_EQ(all.given, "delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_TRUE(all.active());
  EXPECT_EQ(all.delay, nanoseconds{5'000'000});
  EXPECT_EQ(all.jitter, nanoseconds{1'000'000});
  EXPECT_DOUBLE_EQ(all.rate_bits_per_second, 100e6);

  EXPECT_EQ(parse_link("delay=250us").delay, nanoseconds{250'000});
  EXPECT_EQ(parse_link("delay=1.5s").delay, nanoseconds{1'500'000'000});
  EXPECT_EQ(parse_link("delay=0.5ms").delay, nanoseconds{500'000});
  EXPECT_EQ(parse_link("delay=0ms").delay, nanoseconds{0});
  EXPECT_EQ(parse_link("delay=2MS").delay, nanoseconds{2'000'000});  // units are case-insensitive
  // SI, as netem: kbit is 1000 bit per second.
  EXPECT_DOUBLE_EQ(parse_link("rate=9600bit").rate_bits_per_second, 9600);
  EXPECT_DOUBLE_EQ(parse_link("rate=64kbit").rate_bits_per_second, 64e3);
  EXPECT_DOUBLE_EQ(parse_link("rate=1.5Mbit").rate_bits_per_second, 1.5e6);
  EXPECT_DOUBLE_EQ(parse_link("rate=10gbit").rate_bits_per_second, 10e9);
}

TEST(link_conditions, takes_any_subset_in_any_order) {
  const link_conditions rate_only = parse_link("rate=1mbit");
  EXPECT_EQ(rate_only.delay, nanoseconds{0});
  EXPECT_EQ(rate_only.jitter, nanoseconds{0});
  EXPECT_DOUBLE_EQ(rate_only.rate_bits_per_second, 1e6);
  const link_conditions delay_only = parse_link("delay=3ms");
  EXPECT_EQ(delay_only.delay, nanoseconds{3'000'000});
  EXPECT_DOUBLE_EQ(delay_only.rate_bits_per_second, 0);  // no limit
  const link_conditions reordered = parse_link("rate=2mbit,jitter=1ms,delay=4ms");
  EXPECT_EQ(reordered.delay, nanoseconds{4'000'000});
  EXPECT_EQ(reordered.jitter, nanoseconds{1'000'000});
  EXPECT_EQ(parse_link("delay=2ms,jitter=2ms").jitter, nanoseconds{2'000'000});  // jitter may equal delay
}

TEST(link_conditions, none_is_inactive_and_has_no_record) {
  const link_conditions none;
  EXPECT_FALSE(none.active());
  EXPECT_TRUE(link_json(none).is_null());
}

TEST(link_conditions, record_holds_the_text_and_the_numbers) {
  const auto j = link_json(parse_link("delay=5ms,jitter=1ms,rate=100mbit"));
  EXPECT_EQ(j.at("given"), "delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_EQ(j.at("delay_ns"), 5'000'000);
  EXPECT_EQ(j.at("jitter_ns"), 1'000'000);
  EXPECT_DOUBLE_EQ(j.at("rate_bps").get<double>(), 100e6);
  EXPECT_TRUE(link_json(parse_link("delay=1ms")).at("rate_bps").is_null());
}

TEST(link_conditions, serialisation_time_is_bits_over_rate) {
  EXPECT_DOUBLE_EQ(parse_link("rate=8kbit").serialisation_seconds(1000), 1.0);
  EXPECT_DOUBLE_EQ(parse_link("delay=1ms").serialisation_seconds(1000), 0.0);
}

TEST(link_conditions, refuses_bad_input_naming_the_part) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty text"},
      {"delay=5ms,", "empty item"},
      {",delay=5ms", "empty item"},
      {"delay", "not KEY=VALUE"},
      {"delay=", "no value"},
      {"latency=5ms", "unknown key 'latency'"},
      {"Delay=5ms", "unknown key"},
      {"delay=5ms,delay=6ms", "given twice"},
      {"delay=5", "unit '' is not us, ms or s"},
      {"delay=5ns", "unit 'ns'"},
      {"delay=5 ms", "unit ' ms'"},
      {"delay=-5ms", "non-negative decimal"},
      {"delay=ms", "non-negative decimal"},
      {"delay=1e3ms", "unit 'e3ms'"},
      {"delay=1.2.3ms", "non-negative decimal"},
      {"delay=4000s", "over 3600 s"},
      {"jitter=1ms", "jitter is more than delay"},
      {"delay=1ms,jitter=2ms", "jitter is more than delay"},
      {"rate=0mbit", "above 0"},
      {"rate=0.0bit", "above 0"},
      {"rate=100", "unit '' is not bit"},
      {"rate=100mbps", "unit 'mbps'"},
      {"rate=100MB", "unit 'mb'"},
      {"rate=20000gbit", "over 10000gbit"},
      {"rate=fast", "non-negative decimal"},
  };
  for (const auto& [text, why] : cases) {
    try {
      parse_link(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("--link ", 0), 0u) << message;
      EXPECT_NE(message.find(why), std::string::npos) << "'" << text << "': " << message;
    }
  }
}

// A remote row's latency is read against the loopback floor only when it is all mechanism: a
// call over an emulated link is not, whatever it waits or computes.
TEST(link_rows, a_call_over_a_link_is_not_read_against_the_loopback_floor) {
  const workload_entry* scatter = find_workload("scatter");
  ASSERT_NE(scatter, nullptr);
  const auto params = combinations(*scatter, preset::quick,
                                   {parse_param_override("wait_ms=0"), parse_param_override("compute_us=0")}, 2);
  ASSERT_EQ(params.size(), 1u);
  latency_histogram h;
  for (int i = 0; i < 10; ++i) h.record(4'000'000 + 1000 * i);
  trial_result t;
  t.ok = true;
  t.wall_ns = 50'000'000;
  t.latency = latency_record::of(h);
  run_record r;
  r.workload = scatter;
  r.model = find_model("threads/pool");
  r.params = params.front();
  r.round_trip_floor_ns = 20'000;
  r.trials = {t};
  const auto direct = build_rows({r}).at(0);
  EXPECT_TRUE(direct.at("metrics").contains("p50_over_floor")) << direct.at("metrics").dump();
  EXPECT_FALSE(direct.contains("link"));
  r.link = parse_link("delay=2ms");
  const auto linked = build_rows({r}).at(0);
  EXPECT_FALSE(linked.at("metrics").contains("p50_over_floor")) << linked.at("metrics").dump();
  EXPECT_EQ(linked.at("link").at("given"), "delay=2ms");
}

// Live processes (not zombies) whose command line holds `word`: what a run left behind.
std::vector<pid_t> processes_with(const std::string& word) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string command((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (command.find(word) != std::string::npos && testing::process_state(pid) != 'Z') found.push_back(pid);
  }
  return found;
}

TEST(link_cli, rows_of_a_run_over_a_link_take_its_delay_and_record_it) {
  testing::temp_dir dir;
  const std::string out = dir.file("link.json");
  const auto r = testing::run_command(std::string(CMBENCH_EXE) +
                                      " run --workloads scatter --models threads/pool --preset quick --floors off "
                                      "--link delay=2ms --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[link] delay=2ms through a proxy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("over --link delay=2ms\n"), std::string::npos) << r.output;  // the summary's block
  const nlohmann::json report = testing::load_json(out);
  const auto& link = report.at("context").at("link");
  EXPECT_EQ(link.at("given"), "delay=2ms");
  EXPECT_EQ(link.at("delay_ns"), 2'000'000);
  EXPECT_EQ(link.at("jitter_ns"), 0);
  EXPECT_TRUE(link.at("rate_bps").is_null());
  EXPECT_EQ(link.at("proxy_listen_host"), "127.0.0.1");
  EXPECT_GT(link.at("direct_round_trip_ns").get<double>(), 0);
  EXPECT_GT(link.at("proxied_round_trip_ns").get<double>(), 0);
  EXPECT_TRUE(link.at("proxy_added_round_trip_ns").is_number());
  EXPECT_GT(link.at("proxy_capacity_bytes_per_second").get<double>(), 0);
  std::size_t rows = 0;
  for (const auto& row : report.at("benchmarks")) {
    ++rows;
    EXPECT_EQ(row.at("status"), "ok") << row.dump();
    EXPECT_EQ(row.at("link").at("given"), "delay=2ms");
    EXPECT_EQ(row.at("link").at("delay_ns"), 2'000'000);
    // Each call's request and its result cross the link: two delays at least.
    EXPECT_GE(row.at("metrics").at("latency_p50_ns").get<double>(), 2 * 2e6) << row.at("name");
    // Every connection the coordinator made reached a node, byte for byte (the suite checks it too).
    EXPECT_EQ(row.at("metrics").at("coordinator_connections"), row.at("metrics").at("nodes_connections"));
  }
  EXPECT_EQ(rows, 4u);  // 3 repetitions and the median
  for (const auto& w : report.at("context").at("warnings")) {
    EXPECT_EQ(w.get<std::string>().find("--link"), std::string::npos) << w;  // 2 ms is well above the proxy's cost
  }
  EXPECT_TRUE(processes_with(out).empty()) << "a process of the run is still alive";
}

// A link faster than the proxy itself, or delays below its own cost, are said: the figures would
// be the proxy's.
TEST(link_cli, a_link_beyond_the_proxy_is_warned_about) {
  testing::temp_dir dir;
  const std::string out = dir.file("fast.json");
  const auto r = testing::run_command(std::string(CMBENCH_EXE) +
                                      " run --workloads scatter --models coroutines/asio --preset quick --floors off "
                                      "--repetitions 1 --link delay=1us,rate=10000gbit --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json report = testing::load_json(out);
  std::string warnings;
  for (const auto& w : report.at("context").at("warnings")) warnings += w.get<std::string>() + "\n";
  EXPECT_NE(warnings.find("the proxy, not the link, limits the rate"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("are below what the proxy itself adds"), std::string::npos) << warnings;
}

TEST(link_cli, a_run_without_a_link_records_none) {
  testing::temp_dir dir;
  const std::string out = dir.file("direct.json");
  const auto r = testing::run_command(std::string(CMBENCH_EXE) +
                                      " run --workloads scatter --models coroutines/asio --preset quick --floors off "
                                      "--repetitions 1 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json report = testing::load_json(out);
  EXPECT_TRUE(report.at("context").at("link").is_null());
  for (const auto& row : report.at("benchmarks")) EXPECT_FALSE(row.contains("link")) << row.dump();
}

TEST(link_cli, refuses_bad_conditions_and_a_link_nothing_crosses_before_anything_runs) {
  testing::temp_dir dir;
  const std::string out = dir.file("never.json");
  for (const std::string& args : {std::string("--workloads scatter --link delay=5"),
                                  std::string("--workloads scatter --link jitter=1ms"),
                                  std::string("--workloads scatter --link rate=0kbit"),
                                  std::string("--workloads scatter --link latency=1ms"),
                                  std::string("--workloads cpu --link delay=1ms")}) {
    const auto r = testing::run_command(std::string(CMBENCH_EXE) + " run --preset quick " + args + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find("cmbench: --link "), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("[plan]"), std::string::npos) << args << ": " << r.output;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  }
}

}  // namespace
}  // namespace cmbench
