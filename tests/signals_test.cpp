// Every interrupt in every phase (issue 11): SIGINT, SIGTERM or SIGKILL sent to cmbench while it
// measures the floors, while a trial runs, and while it writes the report leaves no process and no
// temporary file behind, and loses no finished trial: what an interrupt leaves is a complete
// report, a partial one with its journal, or the journal alone, and `--resume` (or, with nothing
// finished, the next run) completes it and clears the rest.
//
// The test process is a child subreaper: every process cmbench started that outlives it becomes
// the test's child, so "no process left" is a count of the test's children, not a guess by name.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cli_support.hpp"

namespace {

using namespace cmbench::testing;

enum class phase { floors, trials, report };

const char* name_of(phase p) {
  switch (p) {
    case phase::floors: return "floors";
    case phase::trials: return "trials";
    case phase::report: return "report";
  }
  return "?";
}

// The run interrupted in each phase. Each keeps cmbench in that phase long enough to be caught
// there: the floors take seconds, a trial waits 400 ms, the report waits at the test hook.
std::vector<std::string> run_args(phase p, const std::string& out) {
  std::vector<std::string> args{"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1", "--out", out};
  switch (p) {
    case phase::floors:
      args.insert(args.end(), {"--param", "wait_ms=10", "--repetitions", "1", "--floors", "on", "--floor-time", "2"});
      break;
    case phase::trials:
      args.insert(args.end(), {"--param", "wait_ms=400", "--repetitions", "6", "--floors", "off"});
      break;
    case phase::report:
      args.insert(args.end(), {"--param", "wait_ms=10", "--repetitions", "2", "--floors", "off"});
      break;
  }
  return args;
}

// The processes below the test now, other than zombies (its own are reaped here).
std::vector<process_entry> live_children() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  return live_descendants_of(getpid());
}

std::string describe(const std::vector<process_entry>& processes) {
  std::string text;
  for (const auto& p : processes) text += std::to_string(p.pid) + " " + p.command + "; ";
  return text;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += n + " ";
  return text;
}

nlohmann::json load(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

struct interrupted_run {
  phase when;
  // One signal, or several delivered at once: sent while cmbench is stopped, then continued, so
  // the kernel delivers them together, lowest number first; the last one ends cmbench.
  std::vector<int> signals;
};

std::string label(const interrupted_run& r) {
  std::string text = name_of(r.when);
  for (const int sig : r.signals) text += std::string(" ") + sigabbrev_np(sig);
  return text;
}

void PrintTo(const interrupted_run& r, std::ostream* os) { *os << label(r); }

class signals : public ::testing::TestWithParam<interrupted_run> {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
};

TEST_P(signals, leave_no_process_no_temporary_file_and_lose_no_finished_trial) {
  const interrupted_run& interrupt = GetParam();
  temp_dir dir;
  const std::string tmp = dir.file("tmp");
  const std::string out_dir = dir.file("out");
  fs::create_directory(tmp);
  fs::create_directory(out_dir);
  const std::string out = out_dir + "/report.json";
  const std::string journal = out + ".journal";
  const std::string log = dir.file("run.log");

  ASSERT_TRUE(live_children().empty()) << describe(live_children());
  const pid_t cmbench = start_cmbench(run_args(interrupt.when, out), log, tmp,
                                      {"CMBENCH_PAUSE_AT=report-rename"});
  bool reached = false;
  switch (interrupt.when) {
    case phase::floors:  // the floors child is a fork of cmbench, named like it (as is the reference's, before)
      reached = wait_until([&] {
        return file_text(log).find("[floors] measuring") != std::string::npos &&
               !children_running(cmbench, "run").empty();
      }, 30);
      usleep(200'000);  // well inside its first probe
      break;
    case phase::trials:  // one trial finished (journalled), the next one running
      reached = wait_until([&] { return lines_of(journal) >= 2 && !children_running(cmbench, "trial").empty(); }, 30);
      break;
    case phase::report:
      reached = wait_until([&] { return file_text(log).find("paused at report-rename") != std::string::npos; }, 30);
      break;
  }
  const std::size_t processes_during = live_children().size();  // cmbench and what it runs now
  const bool twice = interrupt.signals.size() > 1;
  if (!reached) {
    kill(cmbench, SIGKILL);
  } else if (twice) {
    kill(cmbench, SIGSTOP);
    for (const int sig : interrupt.signals) kill(cmbench, sig);
    kill(cmbench, SIGCONT);
  } else {
    kill(cmbench, interrupt.signals.front());
  }
  int status = 0;
  ASSERT_EQ(waitpid(cmbench, &status, 0), cmbench);
  ASSERT_TRUE(reached) << "cmbench never reached the " << name_of(interrupt.when) << " phase: " << file_text(log);
  const int expected_signal = interrupt.signals.back();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == expected_signal) << "status " << status << "\n" << file_text(log);
  EXPECT_GE(processes_during, interrupt.when == phase::report ? 1u : 2u);

  // No process outlives cmbench: they would be this subreaper's children now.
  wait_until([] { return live_children().empty(); }, 10);
  EXPECT_TRUE(live_children().empty()) << "left behind: " << describe(live_children());

  // What is left: a handled interrupt removes every temporary file itself; SIGKILL runs no
  // handler, so the lock, a trial's directory or the report's temporary file may stay for the
  // next run to clear.
  const bool killed = expected_signal == SIGKILL;
  std::vector<std::string> expected_out;
  switch (interrupt.when) {
    case phase::floors:
      break;  // nothing finished: nothing kept
    case phase::trials:
      expected_out = killed ? std::vector<std::string>{"report.json.journal"}
                            : std::vector<std::string>{"report.json", "report.json.journal"};
      break;
    case phase::report:
      expected_out = killed || twice ? std::vector<std::string>{"report.json.journal"}
                                     : std::vector<std::string>{"report.json"};  // finished, then ended as asked
      break;
  }
  std::vector<std::string> left = entries_of(out_dir);
  if (killed) {
    std::erase_if(left, [](const std::string& n) {
      return n == "report.json.lock" || n.rfind("report.json.tmp.", 0) == 0;
    });
  } else {
    EXPECT_TRUE(entries_of(tmp).empty()) << joined(entries_of(tmp));
  }
  EXPECT_EQ(left, expected_out) << joined(entries_of(out_dir)) << "\n" << file_text(log);
  if (!killed && interrupt.when == phase::trials) {
    const auto partial = load(out);
    ASSERT_FALSE(partial.is_discarded());
    EXPECT_EQ(partial["context"]["partial"], true);
  }

  // The next run finishes the work (from the journal) or starts it again, and clears what was left.
  const bool resume = fs::exists(journal);
  const std::vector<std::string> next =
      resume ? std::vector<std::string>{"run", "--resume", journal}
             : std::vector<std::string>{"run", "--workloads", "io", "--models", "serial", "--param", "tasks=1",
                                        "--param", "wait_ms=10", "--repetitions", "1", "--floors", "off", "--force",
                                        "--out", out};
  if (fs::exists(out) && !resume) return;  // a complete report: nothing to finish
  const pid_t again = start_cmbench(next, dir.file("next.log"), tmp);
  ASSERT_EQ(waitpid(again, &status, 0), again);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << file_text(dir.file("next.log"));
  EXPECT_EQ(entries_of(out_dir), std::vector<std::string>{"report.json"}) << joined(entries_of(out_dir));
  EXPECT_TRUE(entries_of(tmp).empty()) << joined(entries_of(tmp));
  const auto report = load(out);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_FALSE(report["context"].value("partial", false));
  EXPECT_TRUE(live_children().empty()) << describe(live_children());
}

std::vector<interrupted_run> every_interrupt() {
  std::vector<interrupted_run> all;
  for (const phase p : {phase::floors, phase::trials, phase::report}) {
    for (const int sig : {SIGINT, SIGTERM, SIGKILL}) all.push_back({p, {sig}});
  }
  // A second interrupt while the report is written ends cmbench at once: the journal is kept.
  all.push_back({phase::report, {SIGINT, SIGTERM}});
  return all;
}

INSTANTIATE_TEST_SUITE_P(every_phase, signals, ::testing::ValuesIn(every_interrupt()),
                         [](const ::testing::TestParamInfo<interrupted_run>& param) {
                           std::string name = label(param.param);
                           for (char& c : name) {
                             if (c == ' ') c = '_';
                           }
                           return name;
                         });

}  // namespace
