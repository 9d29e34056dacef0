// Topology detection (harness/topology.hpp): rank, size, launcher, one host or several, and the
// coordinator's address, from any environment the tests make up.
#include <gtest/gtest.h>

#include <stdexcept>

#include "harness/topology.hpp"

namespace {

using cmbench::detect_topology;
using cmbench::environment;
using cmbench::launcher;
using cmbench::topology;
using cmbench::topology_flags;

// The message of the std::invalid_argument `f` throws, or a failure when it does not.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument thrown";
  return {};
}

TEST(Topology, NoLauncherIsEmbeddedOnLoopback) {
  const topology t = detect_topology({{"HOME", "/root"}});
  EXPECT_EQ(t.launched_by, launcher::none);
  EXPECT_EQ(t.rank, 0);
  EXPECT_EQ(t.size, 1);
  EXPECT_TRUE(t.is_coordinator());
  EXPECT_EQ(t.single_host, true);
  EXPECT_EQ(t.coordinator.host, "127.0.0.1");
  EXPECT_EQ(t.coordinator.port, 0);  // embedded: the coordinator picks its port
}

TEST(Topology, OpenMpi) {
  const topology t = detect_topology({{"OMPI_COMM_WORLD_RANK", "2"},
                                      {"OMPI_COMM_WORLD_SIZE", "3"},
                                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"}});
  EXPECT_EQ(t.launched_by, launcher::openmpi);
  EXPECT_EQ(cmbench::launcher_name(t.launched_by), "openmpi");
  EXPECT_EQ(t.rank, 2);
  EXPECT_EQ(t.size, 3);
  EXPECT_EQ(t.rank_source, "OMPI_COMM_WORLD_RANK");
  EXPECT_FALSE(t.is_coordinator());
  EXPECT_EQ(t.single_host, true);
  EXPECT_EQ(t.coordinator, (cmbench::endpoint{"127.0.0.1", cmbench::default_coordinator_port}));
  EXPECT_NE(t.coordinator_source.find("OMPI_COMM_WORLD_LOCAL_SIZE=3 of 3"), std::string::npos) << t.coordinator_source;
}

TEST(Topology, OpenMpiAcrossHostsNeedsACoordinator) {
  const environment env = {{"OMPI_COMM_WORLD_RANK", "1"},
                           {"OMPI_COMM_WORLD_SIZE", "4"},
                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
  const std::string e = error_of([&] { detect_topology(env); });
  EXPECT_NE(e.find("span several hosts"), std::string::npos) << e;
  EXPECT_NE(e.find("--coordinator"), std::string::npos) << e;
  environment with = env;
  with["CMBENCH_COORDINATOR"] = "head.example:5000";
  const topology t = detect_topology(with);
  EXPECT_EQ(t.single_host, false);
  EXPECT_EQ(t.coordinator, (cmbench::endpoint{"head.example", 5000}));
  EXPECT_EQ(t.coordinator_source, "CMBENCH_COORDINATOR");
}

TEST(Topology, PmixTakesItsSizeFromOpenMpiOrSlurmOrFlags) {
  // Slurm's PMIx plugin: PMIX_RANK plus Slurm's own variables.
  const topology t = detect_topology(
      {{"PMIX_RANK", "1"}, {"PMIX_NAMESPACE", "slurm.pmix.5.0"}, {"SLURM_PROCID", "1"},
       {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_NODES", "1"}});
  EXPECT_EQ(t.launched_by, launcher::pmix);
  EXPECT_EQ(t.rank, 1);
  EXPECT_EQ(t.size, 2);
  EXPECT_EQ(t.size_source, "SLURM_STEP_NUM_TASKS");
  EXPECT_EQ(t.single_host, true);
  // PMIx alone exports no size.
  const std::string e = error_of([] { detect_topology({{"PMIX_RANK", "0"}}); });
  EXPECT_NE(e.find("give --size"), std::string::npos) << e;
  topology_flags f;
  f.size = 4;
  f.coordinator = "10.0.0.1:7000";
  const topology g = detect_topology({{"PMIX_RANK", "3"}}, f);
  EXPECT_EQ(g.launched_by, launcher::pmix);
  EXPECT_EQ(g.rank, 3);
  EXPECT_EQ(g.size, 4);
  EXPECT_FALSE(g.single_host.has_value());
  EXPECT_EQ(g.coordinator.text(), "10.0.0.1:7000");
}

TEST(Topology, Pmi) {
  const topology t = detect_topology({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}, {"MPI_LOCALNRANKS", "2"}});
  EXPECT_EQ(t.launched_by, launcher::pmi);
  EXPECT_EQ(t.rank, 0);
  EXPECT_EQ(t.size, 2);
  EXPECT_TRUE(t.is_coordinator());
  EXPECT_EQ(t.single_host, true);
  // Without a local size, one host cannot be assumed.
  const std::string e = error_of([] { detect_topology({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}}); });
  EXPECT_NE(e.find("cannot tell"), std::string::npos) << e;
}

TEST(Topology, Slurm) {
  const topology t =
      detect_topology({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "3"}, {"SLURM_NNODES", "1"}});
  EXPECT_EQ(t.launched_by, launcher::slurm);
  EXPECT_EQ(t.size, 3);
  EXPECT_EQ(t.single_host, true);
  EXPECT_EQ(t.coordinator.port, cmbench::default_coordinator_port);
  // The step's node count before the job's.
  const std::string e = error_of([] {
    detect_topology({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "3"}, {"SLURM_STEP_NUM_NODES", "2"},
                     {"SLURM_NNODES", "1"}});
  });
  EXPECT_NE(e.find("SLURM_STEP_NUM_NODES=2"), std::string::npos) << e;
}

TEST(Topology, PrecedenceFlagsThenOpenMpiPmixPmiSlurm) {
  environment env = {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "5"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "5"},
                     {"PMIX_RANK", "2"},            {"PMI_RANK", "3"},            {"PMI_SIZE", "6"},
                     {"SLURM_PROCID", "4"},         {"SLURM_NTASKS", "7"},        {"SLURM_NNODES", "1"}};
  topology_flags flags;
  flags.rank = 0;
  flags.size = 5;
  topology t = detect_topology(env, flags);
  EXPECT_EQ(t.rank, 0);
  EXPECT_EQ(t.rank_source, "--rank");
  EXPECT_EQ(t.launched_by, launcher::openmpi);  // still says who started it
  t = detect_topology(env);
  EXPECT_EQ(t.launched_by, launcher::openmpi);
  EXPECT_EQ(t.rank, 1);
  env.erase("OMPI_COMM_WORLD_RANK");
  env.erase("OMPI_COMM_WORLD_LOCAL_SIZE");
  t = detect_topology(env);
  EXPECT_EQ(t.launched_by, launcher::pmix);
  EXPECT_EQ(t.rank, 2);
  EXPECT_EQ(t.size, 5);  // OMPI_COMM_WORLD_SIZE before Slurm's count
  env.erase("PMIX_RANK");
  t = detect_topology(env);
  EXPECT_EQ(t.launched_by, launcher::pmi);
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.size, 6);
  env.erase("PMI_RANK");
  t = detect_topology(env);
  EXPECT_EQ(t.launched_by, launcher::slurm);
  EXPECT_EQ(t.rank, 4);
  EXPECT_EQ(t.size, 7);
  // The coordinator: the flag before the environment before loopback.
  env["CMBENCH_COORDINATOR"] = "env-host:1";
  flags = {};
  flags.coordinator = "flag-host:2";
  EXPECT_EQ(detect_topology(env, flags).coordinator.host, "flag-host");
  EXPECT_EQ(detect_topology(env).coordinator.host, "env-host");
}

TEST(Topology, MalformedAndInconsistentValues) {
  struct bad_case {
    environment env;
    const char* says;
  };
  const std::vector<bad_case> cases = {
      {{{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK='x'"},
      {{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2 "}}, "OMPI_COMM_WORLD_SIZE='2 '"},
      {{{"OMPI_COMM_WORLD_RANK", "-1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK='-1'"},
      {{{"OMPI_COMM_WORLD_RANK", ""}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK=''"},
      {{{"OMPI_COMM_WORLD_RANK", "+1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK='+1'"},
      {{{"OMPI_COMM_WORLD_RANK", "0x1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK='0x1'"},
      {{{"PMI_RANK", "99999999999999999999"}, {"PMI_SIZE", "2"}}, "PMI_RANK="},
      {{{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "is not below OMPI_COMM_WORLD_SIZE=2"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "0"}}, "size must be 1.."},
      {{{"PMI_RANK", "0"}, {"PMI_SIZE", "2000000"}}, "size must be 1.."},
      {{{"OMPI_COMM_WORLD_RANK", "0"}}, "OMPI_COMM_WORLD_RANK is set but no size"},
      {{{"PMI_RANK", "0"}}, "PMI_RANK is set but no size"},
      {{{"SLURM_PROCID", "0"}}, "SLURM_PROCID is set but no size"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NNODES", "zero"}}, "SLURM_NNODES='zero'"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NNODES", "0"}}, "SLURM_NNODES=0"},
      {{{"CMBENCH_COORDINATOR", "nohost"}}, "no port"},
      {{{"CMBENCH_COORDINATOR", "host:0"}}, "port must be 1..65535"},
      {{{"CMBENCH_COORDINATOR", "host:65536"}}, "port must be 1..65535"},
      {{{"CMBENCH_COORDINATOR", "host:80x"}}, "port must be 1..65535"},
      {{{"CMBENCH_COORDINATOR", ":80"}}, "empty host"},
      {{{"CMBENCH_COORDINATOR", "::1:80"}}, "needs brackets"},
      {{{"CMBENCH_COORDINATOR", "[::1:80"}}, "unclosed"},
  };
  for (const bad_case& c : cases) {
    const std::string e = error_of([&] { detect_topology(c.env); });
    EXPECT_NE(e.find(c.says), std::string::npos) << "expected '" << c.says << "' in: " << e;
  }
  topology_flags only_rank;
  only_rank.rank = 1;
  EXPECT_NE(error_of([&] { detect_topology({}, only_rank); }).find("give --size"), std::string::npos);
  topology_flags only_size;
  only_size.size = 2;
  EXPECT_NE(error_of([&] { detect_topology({}, only_size); }).find("give --rank"), std::string::npos);
  topology_flags negative;
  negative.rank = -1;
  negative.size = 2;
  EXPECT_NE(error_of([&] { detect_topology({}, negative); }).find("negative"), std::string::npos);
  topology_flags too_big;
  too_big.rank = 3;
  too_big.size = 3;
  EXPECT_NE(error_of([&] { detect_topology({}, too_big); }).find("--rank=3 is not below --size=3"), std::string::npos);
}

TEST(Topology, EndpointsParseAndPrint) {
  EXPECT_EQ(cmbench::parse_endpoint("127.0.0.1:9", "x"), (cmbench::endpoint{"127.0.0.1", 9}));
  const cmbench::endpoint v6 = cmbench::parse_endpoint("[::1]:65535", "x");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 65535);
  EXPECT_EQ(v6.text(), "[::1]:65535");
  EXPECT_EQ(cmbench::parse_endpoint("node-1.cluster:80", "x").text(), "node-1.cluster:80");
}

TEST(Topology, CurrentEnvironmentIsReadInFull) {
  ::setenv("CMBENCH_TOPOLOGY_TEST", "a=b", 1);
  const environment env = cmbench::current_environment();
  ::unsetenv("CMBENCH_TOPOLOGY_TEST");
  ASSERT_TRUE(env.contains("CMBENCH_TOPOLOGY_TEST"));
  EXPECT_EQ(env.at("CMBENCH_TOPOLOGY_TEST"), "a=b");
}

}  // namespace
