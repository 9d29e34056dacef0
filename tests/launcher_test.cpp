// The distributed half through the real executable: the same `cmbench run` started by Open MPI's
// mpirun becomes the coordinator on rank 0 and nodes on the other ranks, and the report says so;
// a node that cannot join, a wrong token, and a rank count too small for the runs are named.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "models/wire/io.hpp"
#include "tests/cli_support.hpp"

namespace cmbench {
namespace {

using testing::load_json;
using testing::run_command;
using testing::temp_dir;

const std::string exe = CMBENCH_EXE;

// A port the OS has just handed out on 127.0.0.1 (closed again: the coordinator binds it).
std::uint16_t free_port() {
  wire::listener l = wire::listen_tcp("127.0.0.1", 0);
  return l.port;
}

bool have_mpirun() { return run_command("command -v mpirun").exit_code == 0; }

// mpirun as root needs --allow-run-as-root; three ranks on two CPUs need --oversubscribe. The
// token goes to every rank through the environment (-x); the coordinator's port is one the OS
// picked, so parallel tests never meet.
std::string mpirun(int ranks, const std::string& args) {
  return "CMBENCH_TOKEN=launcher-test-token CMBENCH_COORDINATOR=127.0.0.1:" + std::to_string(free_port()) +
         " timeout 300 mpirun -np " + std::to_string(ranks) +
         " --allow-run-as-root --oversubscribe -x CMBENCH_TOKEN -x CMBENCH_COORDINATOR " + exe + " run " + args;
}

void require_mpirun() {
  if (have_mpirun()) return;
  // CI installs Open MPI (scripts/setup --tests): there, a missing mpirun is a failure.
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") FAIL() << "mpirun is missing: scripts/setup --tests installs openmpi-bin";
  GTEST_SKIP() << "mpirun not installed (scripts/setup --tests installs openmpi-bin)";
}

TEST(launcher, mpirun_makes_rank_0_the_coordinator_and_the_other_ranks_its_nodes) {
  require_mpirun();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
  temp_dir dir;
  const std::string out = dir.file("mpirun.json");
  const auto r = run_command(mpirun(3, "--workloads scatter --models serial,coroutines/asio --preset quick "
                                       "--repetitions 1 --floors off --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load_json(out);
  const auto& d = report["context"]["distributed"];
  EXPECT_EQ(d["mode"], "launched");
  EXPECT_EQ(d["launcher"], "openmpi");
  EXPECT_EQ(d["rank_source"], "OMPI_COMM_WORLD_RANK");
  EXPECT_EQ(d["size"], 3);
  EXPECT_EQ(d["token"], "environment");
  ASSERT_EQ(d["nodes"].size(), 2u);
  EXPECT_EQ(d["nodes"][0]["rank"], 1);
  EXPECT_EQ(d["nodes"][1]["rank"], 2);
  std::size_t rows = 0;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] != "iteration") continue;
    ++rows;
    EXPECT_EQ(row["status"], "ok") << row.dump(1);
    EXPECT_TRUE(row["verified"].get<bool>()) << row["name"];
    // Both nodes served: every task reached one of them, and each counted its own.
    const auto& m = row["metrics"];
    EXPECT_GT(m["node1_requests"].get<double>(), 0) << row["name"];
    EXPECT_GT(m["node2_requests"].get<double>(), 0) << row["name"];
    EXPECT_EQ(m["nodes_requests"].get<double>(), m["units"].get<double>()) << row["name"];
    EXPECT_EQ(m["nodes_bytes_received"].get<double>(), m["coordinator_bytes_sent"].get<double>());
  }
  EXPECT_EQ(rows, 2u);
  // Only rank 0 writes a report; nothing is left beside it.
  EXPECT_EQ(testing::entries_of(dir.file("")).size(), 1u) << r.output;
}

// mapreduce under mpirun: every node maps, shuffles to the others over the model's own sockets
// and reduces; each receives exactly its own blocks (W x R of them: block p goes to node p % W).
TEST(launcher, mpirun_runs_mapreduce_across_its_ranks) {
  require_mpirun();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
  temp_dir dir;
  const std::string out = dir.file("mpirun.json");
  const auto r = run_command(mpirun(3, "--workloads mapreduce --models serial,coroutines/asio --preset quick "
                                       "--repetitions 1 --floors off --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load_json(out);
  EXPECT_EQ(report["context"]["distributed"]["launcher"], "openmpi");
  std::size_t rows = 0;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] != "iteration") continue;
    ++rows;
    EXPECT_EQ(row["status"], "ok") << row.dump(1);
    EXPECT_TRUE(row["verified"].get<bool>()) << row["name"];
    const auto& m = row["metrics"];
    const double blocks = row["params"]["nodes"].get<double>() * row["params"]["reduce_tasks"].get<double>();
    EXPECT_EQ(m["node1_requests"].get<double>(), blocks) << row["name"];
    EXPECT_EQ(m["node2_requests"].get<double>(), blocks) << row["name"];
    EXPECT_EQ(m["nodes_bytes_received"].get<double>(), m["shuffle_bytes_sent"].get<double>());
    EXPECT_EQ(m["reduced_words"].get<double>(), m["words"].get<double>());
    EXPECT_GT(m["phase_map_ns"].get<double>(), 0);
    EXPECT_GT(m["phase_shuffle_ns"].get<double>(), 0);
    EXPECT_GT(m["phase_reduce_ns"].get<double>(), 0);
  }
  EXPECT_EQ(rows, 2u);
}

// The server workload under mpirun: the load generator on rank 0, the server on rank 1, what
// crossed the wire counted alike on both.
TEST(launcher, mpirun_runs_the_server_workload_with_the_generator_on_rank_0) {
  require_mpirun();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
  temp_dir dir;
  const std::string out = dir.file("server.json");
  // A generous p99 limit: the test checks the wiring, and a loaded machine must not fail the first rate.
  const auto r = run_command(mpirun(2, "--workloads server --models threads/pool,coroutines/asio --preset quick "
                                       "--param p99_limit_ms=500 --repetitions 1 --floors off --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load_json(out);
  EXPECT_EQ(report["context"]["distributed"]["launcher"], "openmpi");
  std::size_t rows = 0;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] != "iteration") continue;
    ++rows;
    EXPECT_EQ(row["status"], "ok") << row.dump(1);
    const auto& m = row["metrics"];
    EXPECT_GT(m["saturation_rps"].get<double>(), 0) << row["name"];
    EXPECT_EQ(m["nodes_bytes_received"].get<double>(), m["coordinator_bytes_sent"].get<double>());
    EXPECT_EQ(row["sides"]["coordinator"]["model"], nullptr);
  }
  EXPECT_EQ(rows, 2u);
}

// Under a launcher, --link puts the proxy on rank 0, listening on the coordinator's host, and the
// coordinator reaches every launched node through it.
TEST(launcher, mpirun_with_a_link_routes_rank_0_to_its_nodes_through_the_proxy) {
  require_mpirun();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
  temp_dir dir;
  const std::string out = dir.file("mpirun-link.json");
  const auto r = run_command(mpirun(3, "--workloads scatter --models coroutines/asio --preset quick --repetitions 1 "
                                       "--floors off --link delay=1ms,rate=1gbit --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load_json(out);
  EXPECT_EQ(report["context"]["distributed"]["launcher"], "openmpi");
  EXPECT_EQ(report["context"]["link"]["proxy_listen_host"], "127.0.0.1");
  for (const auto& row : report["benchmarks"]) {
    EXPECT_EQ(row["status"], "ok") << row.dump(1);
    EXPECT_EQ(row["link"]["given"], "delay=1ms,rate=1gbit");
    EXPECT_GE(row["metrics"]["latency_p50_ns"].get<double>(), 2e6) << row["name"];
    EXPECT_EQ(row["metrics"]["nodes_bytes_received"], row["metrics"]["coordinator_bytes_sent"]);
  }
}

// The same under Slurm: a single-host Slurm (slurmctld and slurmd on localhost, everything in a
// temporary directory, tests/slurm_local.sh) started for the test and stopped after it.
TEST(launcher, srun_makes_task_0_the_coordinator_and_the_other_tasks_its_nodes) {
  const bool ci = std::getenv("CI") != nullptr && std::string(std::getenv("CI")) == "true";
  if (run_command("command -v srun slurmctld slurmd munged").exit_code != 0 || ::geteuid() != 0) {
    // CI runs as root with Slurm installed (scripts/setup --tests): there, this must run.
    if (ci) FAIL() << "Slurm is missing or not root: scripts/setup --tests installs slurm-wlm and munge";
    GTEST_SKIP() << "needs root and Slurm (scripts/setup --tests installs slurm-wlm and munge)";
  }
  temp_dir dir;
  temp_dir slurm;
  const std::string local = "SLURM_LOCAL_DIR=" + slurm.file("") + " " + CMBENCH_SLURM_LOCAL;
  const auto started = run_command(local + " start");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const std::string out = dir.file("srun.json");
  // Three tasks on a 2-CPU node need --overcommit; the token and the coordinator's port go to
  // every task in the environment (srun exports it all).
  const auto r = run_command("CMBENCH_TOKEN=launcher-test-token CMBENCH_COORDINATOR=127.0.0.1:" +
                             std::to_string(free_port()) + " SLURM_LOCAL_DIR=" + slurm.file("") + " timeout 300 " +
                             CMBENCH_SLURM_LOCAL + " run -n 3 --overcommit " + exe +
                             " run --workloads scatter --models coroutines/asio --preset quick --repetitions 1 "
                             "--floors off --out " + out);
  const auto stopped = run_command(local + " stop");
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load_json(out);
  const auto& d = report["context"]["distributed"];
  EXPECT_EQ(d["mode"], "launched");
  EXPECT_EQ(d["launcher"], "slurm");
  EXPECT_EQ(d["rank_source"], "SLURM_PROCID");
  EXPECT_EQ(d["size"], 3);
  EXPECT_EQ(d["single_host"], true);
  ASSERT_EQ(d["nodes"].size(), 2u);
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] != "iteration") continue;
    EXPECT_EQ(row["status"], "ok") << row.dump(1);
    EXPECT_GT(row["metrics"]["node1_requests"].get<double>(), 0);
    EXPECT_GT(row["metrics"]["node2_requests"].get<double>(), 0);
  }
}

TEST(launcher, too_few_ranks_for_the_runs_is_refused_before_anything_runs) {
  require_mpirun();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
  temp_dir dir;
  const auto r = run_command(mpirun(2, "--workloads scatter --models serial --preset quick --param nodes=3 "
                                       "--floors off --out " + dir.file("r.json")));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("need 3 nodes; the launcher started 2 ranks"), std::string::npos) << r.output;
}

// Without a launcher the run starts its own nodes; with the rank flags and no token, a node has
// nothing to prove itself with.
TEST(launcher, a_node_without_the_token_is_refused_and_says_why) {
  temp_dir dir;
  const auto r = run_command("env -u CMBENCH_TOKEN " + exe + " run --rank 1 --size 2 --coordinator 127.0.0.1:" +
                             std::to_string(free_port()) + " --workloads scatter --out " + dir.file("r.json"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CMBENCH_TOKEN"), std::string::npos) << r.output;
}

TEST(launcher, a_node_with_a_wrong_token_is_refused_by_the_coordinator) {
  temp_dir dir;
  const std::string coordinator = "127.0.0.1:" + std::to_string(free_port());
  const std::string common = " --size 2 --coordinator " + coordinator +
                             " --workloads scatter --models serial --preset quick --param nodes=1 --floors off --repetitions 1";
  // Rank 0 waits for its node; rank 1 comes with the wrong token and is turned away.
  const auto r = run_command("(CMBENCH_TOKEN=right timeout 60 " + exe + " run --rank 0" + common + " --out " +
                             dir.file("r.json") + " & sleep 0.5; CMBENCH_TOKEN=wrong timeout 30 " + exe +
                             " run --rank 1" + common + "; echo node-exit=$?; kill %1; wait)");
  EXPECT_NE(r.output.find("refused this node: refused (bad_token)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("node-exit=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("refused a node from 127.0.0.1"), std::string::npos) << r.output;
}

// A node that dies, hangs or cannot be reached mid-trial (the CMBENCH_NODE_FAULT test hook, on
// node 1's first serving process only) fails that run with the reason, within the trial's
// timeout; the next run gets fresh serving processes and is ok.
struct fault_case {
  const char* fault;
  const char* reason;
};

class node_faults : public ::testing::TestWithParam<fault_case> {};

TEST_P(node_faults, fail_that_run_with_the_reason_and_the_next_run_goes_on) {
  temp_dir dir;
  const std::string out = dir.file("r.json");
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_command(std::string("CMBENCH_NODE_FAULT=") + GetParam().fault + " timeout 120 " + exe +
                             " run --workloads scatter --models serial,threads/pool --preset quick --repetitions 1 "
                             "--floors off --timeout 6 --out " + out);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto report = load_json(out);
  std::vector<nlohmann::json> rows;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] == "iteration") rows.push_back(row);
  }
  ASSERT_EQ(rows.size(), 2u) << r.output;
  const auto& failed = rows[0];
  EXPECT_EQ(failed["model"], "serial/baseline");
  EXPECT_EQ(failed["status"], "failed") << failed.dump(1);
  EXPECT_NE(failed["error"].get<std::string>().find(GetParam().reason), std::string::npos) << failed["error"];
  EXPECT_NE(failed["error"].get<std::string>().find("127.0.0.1:"), std::string::npos) << failed["error"];
  EXPECT_EQ(rows[1]["status"], "ok") << rows[1].dump(1);
  // The coordinator gave up before the harness's kill: the reason, not a bare timeout.
  EXPECT_FALSE(failed["error"].get<std::string>().starts_with("timed out")) << failed["error"];
  EXPECT_LT(took, std::chrono::seconds(40));
}

INSTANTIATE_TEST_SUITE_P(distributed, node_faults,
                         ::testing::Values(fault_case{"1:die:1:30", "closed by peer"},
                                           fault_case{"1:hang:1:30", "did not answer task"},
                                           fault_case{"1:unreachable:1:0", "is unreachable"}),
                         [](const auto& param_info) {
                           const std::string f = param_info.param.fault;
                           return f.substr(2, f.find(':', 2) - 2);
                         });

// mapreduce's checks catch a node that loses data or counts it twice (its first reduce task
// leaves out, or merges twice, a block it received: CMBENCH_MAPREDUCE_FAULT, NODE from 1): the
// reducers' words no longer match the mappers', and the checksum is not the reference's.
class mapreduce_faults : public ::testing::TestWithParam<std::string> {};

TEST_P(mapreduce_faults, fail_the_run_by_its_counts_and_its_checksum) {
  temp_dir dir;
  const std::string out = dir.file("r.json");
  const auto r = run_command("CMBENCH_MAPREDUCE_FAULT=" + GetParam() + " timeout 120 " + exe +
                             " run --workloads mapreduce --models serial,threads/pool --preset quick --repetitions 1 "
                             "--floors off --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto report = load_json(out);
  std::size_t rows = 0;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] != "iteration") continue;
    ++rows;
    EXPECT_EQ(row["status"], "failed") << row.dump(1);
    EXPECT_NE(row["error"].get<std::string>().find("verification failed: the reducers counted"), std::string::npos)
        << row["error"];
    EXPECT_FALSE(row["verified"].get<bool>()) << row.dump(1);
    EXPECT_NE(row["checksum"], row["expected_checksum"]) << row.dump(1);
  }
  EXPECT_EQ(rows, 2u) << r.output;
}

// A node whose serving process dies as blocks arrive fails the run, named, and the next run goes on.
TEST(mapreduce, a_node_that_dies_mid_shuffle_fails_the_run_with_the_reason) {
  temp_dir dir;
  const std::string out = dir.file("r.json");
  const auto r = run_command("CMBENCH_NODE_FAULT=1:die:1:2 timeout 120 " + exe +
                             " run --workloads mapreduce --models serial,threads/pool --preset quick --repetitions 1 "
                             "--floors off --timeout 6 --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto report = load_json(out);
  std::vector<nlohmann::json> rows;
  for (const auto& row : report["benchmarks"]) {
    if (row["run_type"] == "iteration") rows.push_back(row);
  }
  ASSERT_EQ(rows.size(), 2u) << r.output;
  EXPECT_EQ(rows[0]["status"], "failed") << rows[0].dump(1);
  EXPECT_NE(rows[0]["error"].get<std::string>().find("node 1"), std::string::npos) << rows[0]["error"];
  EXPECT_NE(rows[0]["error"].get<std::string>().find("exit status 70"), std::string::npos) << rows[0]["error"];
  EXPECT_EQ(rows[1]["status"], "ok") << rows[1].dump(1);
}

INSTANTIATE_TEST_SUITE_P(distributed, mapreduce_faults, ::testing::Values("drop:1", "double:2"),
                         [](const auto& param_info) { return param_info.param.substr(0, param_info.param.find(':')); });

// The main command's promise: no launcher, no addresses, and the distributed workload runs on
// nodes the run starts and stops itself; none outlives it.
TEST(embedded, a_run_starts_its_own_nodes_and_leaves_none_behind) {
  temp_dir dir;
  const std::string out = dir.file("r.json");
  const auto r = run_command("env -u CMBENCH_TOKEN -u OMPI_COMM_WORLD_RANK " + exe +
                             " run --workloads scatter --models serial --preset quick --repetitions 1 --floors off "
                             "--out " + out);
  const auto report = load_json(out);
  EXPECT_EQ(report["context"]["distributed"]["mode"], "embedded");
  EXPECT_EQ(report["context"]["distributed"]["token"], "generated");
  EXPECT_EQ(report["context"]["distributed"]["nodes"].size(), 2u);
  EXPECT_EQ(report["benchmarks"][0]["status"], "ok");
  // The nodes the report names are gone (or zombies about to be reaped by init).
  for (const auto& n : report["context"]["distributed"]["nodes"]) {
    const pid_t pid = n["pid"].get<pid_t>();
    EXPECT_TRUE(::kill(pid, 0) != 0 || testing::process_state(pid) == 'Z') << "node pid " << pid << " is alive";
  }
}

}  // namespace
}  // namespace cmbench
