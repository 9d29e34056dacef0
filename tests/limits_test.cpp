// Every model fails cleanly at every limit (issue 11, findings 3, 4 and 5): run under a lowered
// RLIMIT_NPROC or RLIMIT_AS, in a memory cgroup too small for the run, or asked for more memory
// than the machine has, a trial ends as `failed` with an error naming the limit, the rest of its
// repetitions are `skipped` (a limit is a finding, not a flake to retry), no trial is killed by a
// signal, and the run exits 0.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness/system.hpp"
#include "models/model.hpp"
#include "tests/cli_support.hpp"

namespace {

using namespace cmbench::testing;

// Runs cmbench after `prefix` (setpriv, prlimit).
command_result run(const std::string& prefix, const std::string& args) {
  return run_command(prefix + " " + std::string(CMBENCH_EXE) + " " + args);
}

// AddressSanitizer reserves terabytes of address space for its shadow memory: a process built
// with it cannot start under an RLIMIT_AS of a few GB, so those tests do not apply.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool address_sanitizer = true;
#else
constexpr bool address_sanitizer = false;
#endif
#else
constexpr bool address_sanitizer = false;
#endif

#define SKIP_UNDER_ADDRESS_SANITIZER() \
  if (address_sanitizer) GTEST_SKIP() << "RLIMIT_AS cannot be lowered under AddressSanitizer"

bool shell_ok(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// A directory anyone may write (the runs below may be another user's).
struct shared_temp_dir : temp_dir {
  shared_temp_dir() : temp_dir(true) {}
};

nlohmann::json load(const std::string& path) { return load_json(path); }

// A row's error, "" when it has none (null in the report).
std::string error_of(const nlohmann::json& row) {
  const auto it = row.find("error");
  return it == row.end() || !it->is_string() ? std::string() : it->get<std::string>();
}

// What the report says about each (workload, model, params) run.
struct run_rows {
  std::vector<nlohmann::json> repetitions;  // iteration rows, in order
};

std::map<std::string, run_rows> rows_by_run(const nlohmann::json& report) {
  std::map<std::string, run_rows> runs;
  for (const auto& row : report.at("benchmarks")) {
    if (row.at("run_type") != "iteration") continue;
    runs[row.at("name").get<std::string>()].repetitions.push_back(row);
  }
  return runs;
}

// Every run either succeeded in every repetition, or failed in one with an error naming one of
// `limits`, was never killed by a signal, and skipped the repetitions after the failure.
// Returns how many runs stopped at a limit.
int check_every_run_ok_or_stopped_at_a_limit(const nlohmann::json& report, const std::vector<std::string>& limits,
                                             const std::string& output) {
  int stopped = 0;
  for (const auto& [name, run] : rows_by_run(report)) {
    bool failed = false;
    for (const auto& row : run.repetitions) {
      const std::string status = row.at("status");
      const std::string error = error_of(row);
      if (failed) {
        EXPECT_EQ(status, "skipped") << name << ": a repetition after a limit ran: " << error;
        EXPECT_NE(error.find("not repeated"), std::string::npos) << name << ": " << error;
        continue;
      }
      if (status == "ok") continue;
      failed = true;
      ++stopped;
      EXPECT_EQ(status, "failed") << name << ": " << error;
      EXPECT_EQ(error.find("killed by signal 6"), std::string::npos) << name << " aborted: " << error;
      EXPECT_EQ(error.find("exited with status"), std::string::npos) << name << ": " << error;
      bool named = false;
      for (const auto& limit : limits) named = named || error.find(limit) != std::string::npos;
      EXPECT_TRUE(named) << name << ": the error names none of the limits expected: " << error;
    }
  }
  EXPECT_EQ(output.find("terminate called"), std::string::npos) << output;
  return stopped;
}

// How to run cmbench as a user RLIMIT_NPROC applies to (root is exempt), or "" if we cannot.
std::string as_limited_user() {
  if (::geteuid() != 0) return " ";
  const std::string setpriv = "setpriv --reuid=nobody --regid=nogroup --clear-groups";
  return shell_ok(setpriv + " " + CMBENCH_EXE + " list") ? setpriv : "";
}

// Finding 3: with RLIMIT_NPROC at 40 and 64 workers, threads/tbb died in std::terminate
// (pthread_create failed inside oneTBB) and coroutines/asio-mt too (joinable threads destroyed),
// every repetition re-run. Now every model names RLIMIT_NPROC and the count reached.
TEST(limits, every_model_names_rlimit_nproc_with_the_count_reached) {
  const std::string user = as_limited_user();
  if (user.empty()) GTEST_SKIP() << "cannot run cmbench as nobody";
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run(user + " prlimit --nproc=40 --",
                     "run --workloads cpu --preset quick --param workers=64 --repetitions 2 --floors off --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  const int stopped = check_every_run_ok_or_stopped_at_a_limit(report, {"RLIMIT_NPROC"}, r.output);
  // Every model that makes W threads or processes meets the limit (those that make one per task
  // meet it or not, as the tasks overlap).
  std::set<std::string> at_limit;  // models whose first repetition met it
  for (const auto& [name, run] : rows_by_run(report)) {
    const std::string error = error_of(run.repetitions.front());
    if (run.repetitions.front().at("status") == "failed") at_limit.insert(run.repetitions.front().at("model"));
    if (error.find("threads/tbb") == 0 || error.find("coroutines/asio-mt") == 0 || error.find("threads/pool") == 0) {
      // "could only create 38 of the 63 worker threads ...", with the threads alive then
      EXPECT_NE(error.find("could only"), std::string::npos) << "the count reached: " << error;
      EXPECT_NE(error.find("likely limit: RLIMIT_NPROC"), std::string::npos) << error;
    }
  }
  for (const char* model : {"threads/pool", "threads/tbb", "processes/pool", "coroutines/asio-mt"}) {
    EXPECT_TRUE(at_limit.count(model)) << model << " did not meet RLIMIT_NPROC=40 with 64 workers: " << r.output;
  }
  EXPECT_GE(stopped, static_cast<int>(at_limit.size()));
}

// Finding 3 and 4: under RLIMIT_AS of 400 MB, threads/tbb aborted with 32 workers, and
// processes/pool failed every job (it mapped 2 GiB up front), re-running every repetition; a
// coroutine graph too big for the address space aborted inside Asio. Now every model runs, or
// names RLIMIT_AS (a thread refused for its stack counts it among the limits it reports).
TEST(limits, every_model_runs_or_names_rlimit_as) {
  SKIP_UNDER_ADDRESS_SANITIZER();
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  // Every model on the small workloads; the memory workload big enough for the coroutine models
  // to meet the limit (not processes/spawn: it would fork 400k processes, which RLIMIT_AS does
  // not stop).
  const auto r = run("prlimit --as=400000000 --", "run --workloads cpu,io,spawn,ring --preset quick --repetitions 2 "
                                                  "--floors off --out " + out);
  const std::string out_memory = dir.file("memory.json");
  const auto m = run("prlimit --as=400000000 --",
                     "run --workloads memory --param units=400k --param hold_ms=0 --repetitions 2 --floors off "
                     "--models serial,threads,processes/pool,coroutines --out " + out_memory);
  for (const auto& [result, path] : {std::pair{r, out}, std::pair{m, out_memory}}) {
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto report = load(path);
    check_every_run_ok_or_stopped_at_a_limit(report, {"RLIMIT_AS"}, result.output);
    // processes/pool maps what each job needs: all of these fit.
    for (const auto& [name, run] : rows_by_run(report)) {
      if (run.repetitions.front().at("model") != "processes/pool") continue;
      for (const auto& row : run.repetitions) EXPECT_EQ(row.at("status"), "ok") << name << ": " << error_of(row);
    }
  }
}

// Finding 4: a graph job whose units do not fit in the address space left is refused before it
// starts, naming RLIMIT_AS and the figures, and not repeated.
TEST(limits, processes_pool_names_rlimit_as_for_a_graph_too_big) {
  SKIP_UNDER_ADDRESS_SANITIZER();
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("prlimit --as=300000000 --", "run --workloads memory --param units=4M --models processes/pool "
                                                  "--repetitions 2 --floors off --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  EXPECT_EQ(check_every_run_ok_or_stopped_at_a_limit(report, {"RLIMIT_AS"}, r.output), 1) << r.output;
  const auto runs = rows_by_run(report);
  ASSERT_EQ(runs.size(), 1u);
  const std::string error = error_of(runs.begin()->second.repetitions.front());
  EXPECT_NE(error.find("processes/pool: RLIMIT_AS: a graph of 4,000,000 units"), std::string::npos) << error;
  EXPECT_NE(error.find("RLIMIT_AS=292,968 KiB"), std::string::npos) << error;
}

// Finding 4, the workers' side: a worker that cannot map the job's shared area (its own
// RLIMIT_AS lowered here, after the fork) ends the job with a limit_error naming RLIMIT_AS,
// instead of crashing or hanging.
TEST(limits, processes_pool_worker_that_cannot_map_the_job_area_is_a_named_limit) {
  const cmbench::model_entry* entry = cmbench::find_model("processes/pool");
  ASSERT_NE(entry, nullptr);
  cmbench::model_config config;
  config.workers = 2;
  auto model = entry->make(config);
  // The pool's workers are this thread's children.
  std::ifstream children_file("/proc/self/task/" + std::to_string(::gettid()) + "/children");
  std::vector<pid_t> workers;
  for (pid_t pid; children_file >> pid;) workers.push_back(pid);
  ASSERT_EQ(workers.size(), 2u);
  for (pid_t pid : workers) {
    // Room for what the worker has mapped and 8 MiB more: a 72 MB area cannot be mapped.
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::int64_t vm_kib = -1;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stoll(line.substr(7));
    }
    ASSERT_GT(vm_kib, 0);
    const rlimit limit{static_cast<rlim_t>(vm_kib + 8 * 1024) * 1024, static_cast<rlim_t>(vm_kib + 8 * 1024) * 1024};
    ASSERT_EQ(::prlimit(pid, RLIMIT_AS, &limit, nullptr), 0) << std::strerror(errno);
  }
  cmbench::graph_job job;
  job.units = 1'000'000;  // 72 bytes each in the job area
  job.step = [](void*, cmbench::unit_state& s, std::byte*) {
    s.result = s.unit;
    return cmbench::unit_action{cmbench::unit_op::finish};
  };
  try {
    model->run_graph(job);
    FAIL() << "the job ran although no worker could map its area";
  } catch (const cmbench::limit_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("could not map the job's 72,003,584-byte shared area"), std::string::npos) << what;
    EXPECT_NE(what.find("RLIMIT_AS"), std::string::npos) << what;
  }
  model.reset();  // the survivors are killed and reaped
}

// Finding 5, in range: 100M units alive at once would have the coroutine models allocate ~90 GB
// of frames; the kernel's OOM killer, not an error, would end it (or another process). Now they
// stop after a few thousand units and name the limit. (RLIMIT_AS of 8 GB keeps a regression
// from reaching the OOM killer: it then names RLIMIT_AS instead.)
TEST(limits, a_run_past_the_memory_budget_is_refused_before_the_oom_killer) {
  SKIP_UNDER_ADDRESS_SANITIZER();
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("prlimit --as=8000000000 --", "run --workloads memory --param units=100M --models coroutines "
                                                   "--repetitions 2 --floors off --out " + out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{60});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  // Every coroutine model stops (each run once, not repeated), whatever their number.
  EXPECT_EQ(check_every_run_ok_or_stopped_at_a_limit(report, {": memory: 100,000,000 units", ": RLIMIT_AS: 100,000,000 units"},
                                                     r.output),
            static_cast<int>(rows_by_run(report).size()))
      << r.output;
}

// Finding 5: the parent's classification of a trial the OOM killer ended.
TEST(limits, an_oom_kill_is_classified_from_the_kernel_counters) {
  using cmbench::system::oom_kills;
  using cmbench::system::out_of_memory_error;
  const oom_kills before{10, 3, "/sys/fs/cgroup/x/memory.events"};
  const oom_kills cgroup_rose{11, 4, "/sys/fs/cgroup/x/memory.events"};
  const oom_kills machine_rose{12, 3, "/sys/fs/cgroup/x/memory.events"};
  const std::string killed = "trial process killed by signal 9 (Killed)";
  EXPECT_EQ(out_of_memory_error(before, cgroup_rose, true, killed),
            "out of memory: killed by the kernel's OOM killer (oom_kill in /sys/fs/cgroup/x/memory.events rose by 1 "
            "during the trial; the trial: trial process killed by signal 9 (Killed))");
  EXPECT_EQ(out_of_memory_error(before, machine_rose, true, killed),
            "out of memory: killed by the kernel's OOM killer (oom_kill in /proc/vmstat rose by 2 during the trial; "
            "the trial: trial process killed by signal 9 (Killed))");
  // One of the trial's processes, as the pool reports it.
  const std::string worker = "processes/pool: worker process 7 was killed by signal 9 (Killed) during a job";
  EXPECT_NE(out_of_memory_error(before, cgroup_rose, false, worker).find("the trial: " + worker), std::string::npos);
  // No OOM kill meanwhile: a SIGKILL from someone else stays what it was.
  EXPECT_EQ(out_of_memory_error(before, before, true, killed), "");
  // An OOM kill elsewhere while the trial failed otherwise: not the trial's.
  EXPECT_EQ(out_of_memory_error(before, machine_rose, false, "verification failed: a wait was short"), "");
  // Counters unknown (no /proc/vmstat, no memory cgroup): nothing claimed.
  EXPECT_EQ(out_of_memory_error(oom_kills{}, oom_kills{}, true, killed), "");
}

// The memory cgroup this process is in, as a directory where a child group may be made and
// its memory limited; "" where that cannot be done (not root, no memory controller there).
struct memory_cgroup {
  std::string dir;
  std::string limit_file;  // memory.max (v2) or memory.limit_in_bytes (v1)
  std::string swap_file;   // memory.swap.max (v2) or memory.memsw.limit_in_bytes (v1), if any
};

memory_cgroup child_memory_cgroup(const std::string& name) {
  std::ifstream in("/proc/self/cgroup");
  std::string v1, v2;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) v2 = line.substr(3);
    const auto at = line.find(":memory:");
    if (at != std::string::npos) v1 = line.substr(at + 8);
  }
  memory_cgroup cg;
  if (!v1.empty() && fs::exists("/sys/fs/cgroup/memory" + v1 + "/memory.limit_in_bytes")) {
    cg.dir = "/sys/fs/cgroup/memory" + v1 + "/" + name;
    cg.limit_file = "memory.limit_in_bytes";
    cg.swap_file = "memory.memsw.limit_in_bytes";
  } else {
    std::ifstream controllers("/sys/fs/cgroup" + v2 + "/cgroup.subtree_control");
    std::string text((std::istreambuf_iterator<char>(controllers)), std::istreambuf_iterator<char>());
    if (text.find("memory") == std::string::npos) return {};
    cg.dir = "/sys/fs/cgroup" + v2 + "/" + name;
    cg.limit_file = "memory.max";
    cg.swap_file = "memory.swap.max";
  }
  if (::mkdir(cg.dir.c_str(), 0755) != 0) return {};
  return cg;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Finding 5, end to end: a trial the OOM killer ends, inside a memory cgroup of 200 MiB made for
// this test (never the machine's own OOM killer), is reported as out of memory and not repeated.
// Before: "trial process killed by signal 9 (Killed)", every repetition re-run, exit 1.
TEST(limits, a_trial_killed_by_the_oom_killer_is_named_and_not_repeated) {
  const memory_cgroup cg = child_memory_cgroup("cmbench-limits-test-" + std::to_string(::getpid()));
  if (cg.dir.empty()) GTEST_SKIP() << "cannot make a memory cgroup here (needs root and a memory controller)";
  struct remove_at_end {
    std::string dir;
    ~remove_at_end() { ::rmdir(dir.c_str()); }
  } remove{cg.dir};
  ASSERT_TRUE(write_file(cg.dir + "/" + cg.limit_file, std::to_string(200 << 20)));
  if (fs::exists(cg.dir + "/" + cg.swap_file)) write_file(cg.dir + "/" + cg.swap_file, cg.swap_file == "memory.swap.max" ? "0" : std::to_string(200 << 20));

  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const std::string log = dir.file("output.txt");
  // 1M coroutine units take ~900 MB: within the machine's budget, far past the group's.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ofstream(cg.dir + "/cgroup.procs") << ::getpid() << std::flush;
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execl(CMBENCH_EXE, CMBENCH_EXE, "run", "--workloads", "memory", "--param", "units=1M", "--models",
            "coroutines/asio", "--repetitions", "3", "--floors", "off", "--timeout", "120", "--out", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  std::ifstream log_in(log);
  const std::string output((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  const auto report = load(out);
  EXPECT_EQ(check_every_run_ok_or_stopped_at_a_limit(report, {"out of memory: killed by the kernel's OOM killer"}, output),
            1)
      << output;
  const auto runs = rows_by_run(report);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs.begin()->second.repetitions.size(), 3u);
}

// File descriptors: an event loop takes an epoll, an eventfd and a timerfd, so a model with a loop
// per worker met RLIMIT_NOFILE inside a job and said only "eventfd_select_interrupter: Too many
// open files", repeating every repetition. Now every model runs or names RLIMIT_NOFILE with the
// count reached, and the limit is not repeated.
TEST(limits, every_model_runs_or_names_rlimit_nofile) {
  // The sanitizers' runtime needs descriptors of its own (UBSan checks that a vtable is readable
  // through a pipe): with none left it reports a false "invalid vptr" and exits.
  if (address_sanitizer) GTEST_SKIP() << "a sanitizer build cannot run out of file descriptors cleanly";
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("prlimit --nofile=40 --", "run --workloads io,ring --preset quick --param workers=32 "
                                               "--repetitions 2 --floors off --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = load(out);
  const int stopped = check_every_run_ok_or_stopped_at_a_limit(report, {"RLIMIT_NOFILE"}, r.output);
  EXPECT_GE(stopped, 1) << "no model met RLIMIT_NOFILE=40 with 32 workers: the test no longer tests it\n" << r.output;
  for (const auto& [name, run_of] : rows_by_run(report)) {
    const std::string error = error_of(run_of.repetitions.front());
    if (error.empty()) continue;
    EXPECT_NE(error.find("RLIMIT_NOFILE=40 reached ("), std::string::npos) << name << ": the count reached: " << error;
  }
}

// Below what cmbench itself needs, every trial would fail alike: refused before anything runs.
TEST(limits, a_descriptor_limit_too_low_for_cmbench_itself_is_refused) {
  shared_temp_dir dir;
  const std::string out = dir.file("report.json");
  const auto r = run("prlimit --nofile=8 --", "run --workloads cpu --preset quick --floors off --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("RLIMIT_NOFILE is 8"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
