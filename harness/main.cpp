// cmbench: run the same verified work under threads, processes and coroutines; report it.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <climits>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "harness/facts.hpp"
#include "harness/floors.hpp"
#include "harness/journal.hpp"
#include "harness/link.hpp"
#include "harness/nodes.hpp"
#include "harness/params.hpp"
#include "harness/suite.hpp"
#include "harness/system.hpp"
#include "harness/topology.hpp"
#include "harness/trial.hpp"
#include "models/wire/token.hpp"

namespace cmbench {
namespace {

std::string self_executable() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) throw std::runtime_error("cannot find this executable (/proc/self/exe)");
  path[n] = '\0';
  return path;
}

std::string default_out() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char name[64];
  std::strftime(name, sizeof(name), "results/cmbench-%Y%m%d-%H%M%S.json", &local);
  return name;
}

// `cmbench run`'s options, bound to a subcommand: parsed from the command line, or for --resume
// from the one its journal recorded.
struct run_arguments {
  std::string models = "all", workloads = "all", preset_text = "default", out, floors_text = "on", resume;
  std::vector<std::string> params;
  int repetitions = 3, warmup = 0;
  double timeout_s = 120;
  double floor_time_s = 0.05;  // not given: 0.05, or 0.01 under --preset quick
  bool force = false;
  bool accept_long_runs = false;
  // Where this process sits in a distributed run (harness/topology.hpp).
  std::optional<long> rank, size;
  std::optional<std::string> coordinator, token_file;
  std::string listen;
  std::optional<std::string> link;  // --link conditions
  CLI::Option* out_option = nullptr;
  CLI::Option* floor_time_option = nullptr;
};

constexpr double max_timeout_s = 86400;

void add_run_options(CLI::App* run, run_arguments& a) {
  run->add_option("--models", a.models, "comma-separated models, families (threads) or all")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--workloads", a.workloads, "comma-separated workloads or all")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--param", a.params, "[WORKLOAD.]NAME=V1,V2,... (repeatable; values given for one parameter in "
                                       "several --param merge: tasks=10 and tasks=20 run both; every combination runs)");
  run->add_option("--preset", a.preset_text, "quick, default or full")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--repetitions", a.repetitions, "measured trials per run, each a fresh process")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--warmup", a.warmup, "discarded trials per run before the measured ones")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--timeout", a.timeout_s, "seconds one trial may take before its process group is killed, from "
                                            "0.001 to 86400 (no unlimited timeout: a hung trial must not hang the suite)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  a.out_option = run->add_option("--out", a.out, "report path (default results/cmbench-DATE.json); its finished "
                                                  "trials go to OUT.journal as they end, and OUT.lock keeps a "
                                                  "second run off it")
                     ->type_name("FILE")
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_flag("--force", a.force, "replace an existing report at --out (and an interrupted run's journal)");
  run->add_option("--resume", a.resume, "finish the interrupted run an OUT.journal holds: its command line, its "
                                        "finished trials kept, the rest run, the report written to its --out "
                                        "(give no other option)")
      ->type_name("JOURNAL")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--floors", a.floors_text, "on: measure each model's primitive floors before and after the trials "
                                             "(context.floors; pingpong rows read against them); off: skip")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  a.floor_time_option = run->add_option("--floor-time", a.floor_time_s,
                  "seconds per floor sample (3 samples per floor, twice); default 0.05, or 0.01 under --preset "
                  "quick, whose floors are a smoke test's")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--rank", a.rank, "this process's rank in a distributed run (default: from the launcher's "
                                    "environment: OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK, SLURM_PROCID; else 0)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--size", a.size, "ranks in the run (default: from the launcher's environment; else 1)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--coordinator", a.coordinator, "HOST:PORT rank 0 listens on and the nodes connect to (default: "
                                                  "CMBENCH_COORDINATOR, else loopback when all ranks are on one host)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--token-file", a.token_file, "the run's shared token (default: CMBENCH_TOKEN; embedded runs "
                                                "generate one)")
      ->type_name("FILE")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--listen", a.listen, "the address a node's serving processes listen on (default 127.0.0.1; "
                                        "0.0.0.0 across machines)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--link", a.link, "emulate a slow link on every connection between the coordinator and a node: "
                                    "delay=TIME,jitter=TIME,rate=RATE, any of them (TIME in us, ms or s; RATE in "
                                    "bit, kbit, mbit or gbit per second, per direction, shared by the connections to "
                                    "one node), through a proxy of the suite whose own cost the report records")
      ->type_name("CONDITIONS")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_flag("--accept-long-runs", a.accept_long_runs,
                "run even what the workloads' cost models say cannot fit: a trial past --timeout, or more than an "
                "hour of trials and reference checksums in all (refused otherwise, before anything runs)");
}

// The suite's options from the parsed arguments. Throws std::invalid_argument (exit 2) for bad input.
suite_options suite_options_of(const run_arguments& a) {
  suite_options options;
  options.models = select_models(a.models);
  options.workloads = select_workloads(a.workloads);
  for (const auto& p : a.params) options.overrides.push_back(parse_param_override(p));
  options.chosen_preset = parse_preset(a.preset_text);
  options.repetitions = a.repetitions;
  options.warmup = a.warmup;
  // One rule: a finite deadline for every trial (a deadlock ends as a timeout, never as a hang).
  if (!(a.timeout_s >= 0.001 && a.timeout_s <= max_timeout_s)) {
    char text[200];
    std::snprintf(text, sizeof(text), "--timeout must be from 0.001 to %.0f seconds (got %g): every trial has a "
                                      "deadline, so 0 and inf are not accepted", max_timeout_s, a.timeout_s);
    throw std::invalid_argument(text);
  }
  options.timeout = std::chrono::milliseconds{static_cast<long long>(a.timeout_s * 1000)};
  options.floors = a.floors_text == "on";
  const bool floor_time_given = a.floor_time_option->count() > 0;
  if (floor_time_given && (!(a.floor_time_s > 0) || a.floor_time_s > 10)) {
    throw std::invalid_argument("--floor-time must be in (0, 10] seconds");
  }
  const double floor_time_s = floor_time_given ? a.floor_time_s : options.chosen_preset == preset::quick ? 0.01 : 0.05;
  options.floor_time = std::chrono::nanoseconds{static_cast<long long>(floor_time_s * 1e9)};
  if (a.out_option->count() > 0 && a.out.empty()) {
    throw std::invalid_argument("--out needs a file name (got an empty one); leave --out out for "
                                "results/cmbench-DATE.json");
  }
  options.out = a.out.empty() ? default_out() : a.out;
  options.force = a.force;
  options.accept_long_runs = a.accept_long_runs;
  options.topo = detect_topology(current_environment(), topology_flags{a.rank, a.size, a.coordinator});
  options.token_file = a.token_file;
  options.listen_host = a.listen;
  if (a.link) options.link = parse_link(*a.link);
  return options;
}

// A rank other than 0 of a launched run: a node for the whole suite, taking its orders from rank 0.
int run_as_node(const topology& topo, const std::optional<std::string>& token_file, const std::string& listen) {
  const char* env_token = std::getenv(wire::token_env);
  const wire::resolved_token token = wire::resolve_token(
      token_file, env_token == nullptr ? std::nullopt : std::optional<std::string>(env_token), false);
  std::fprintf(stderr, "[node %ld of %ld] %s: serving rank 0 at %s\n", topo.rank, topo.size,
               std::string(launcher_name(topo.launched_by)).c_str(), topo.coordinator.text().c_str());
  return run_node(node_options{topo.coordinator, token.token, listen, topo.rank});
}

// --resume JOURNAL: the suite of the command line the journal recorded, writing to its --out.
suite_options resumed_options(const std::string& journal_path) {
  const journal_header header = read_journal(journal_path).header;
  CLI::App again;
  auto* run = again.add_subcommand("run");
  run_arguments stored;
  add_run_options(run, stored);
  std::vector<const char*> argv{"cmbench"};
  for (const auto& arg : header.args) argv.push_back(arg.c_str());
  try {
    again.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument("--resume " + journal_path + ": its command line does not parse: " + e.what());
  }
  if (!run->parsed() || !stored.resume.empty()) {
    throw std::invalid_argument("--resume " + journal_path + ": its command line is not a new `cmbench run`");
  }
  suite_options options = suite_options_of(stored);
  options.out = header.out;
  options.command_line = header.command_line;
  options.args = header.args;
  options.resume_journal = journal_path;
  return options;
}

// During a trial cmbench itself holds up to 9 descriptors (the standard streams, its lock and
// journal, the trial's result file and the pipes it shares with the trial); below this, every
// trial would fail alike for want of one, which is the user's limit, not any model's finding.
constexpr rlim_t least_descriptors = 16;

void check_descriptor_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= least_descriptors) return;
  throw std::invalid_argument("RLIMIT_NOFILE is " + std::to_string(files.rlim_cur) + ": cmbench needs at least " +
                              std::to_string(least_descriptors) + " file descriptors (its own files and pipes, and "
                              "a model's); raise it, e.g. `ulimit -n 1024`");
}

}  // namespace
}  // namespace cmbench

int main(int argc, char** argv) {
  // A trial that dies while the harness answers it (observe.hpp's sample handshake) must not take
  // the harness, and every finished trial's results, with it.
  std::signal(SIGPIPE, SIG_IGN);
  using namespace cmbench;
  CLI::App app{"cmbench: which concurrency model should my project use?\n"
               "Runs identical, verified workloads under threads, processes and coroutines."};
  app.require_subcommand(1);

  auto* list = app.add_subcommand("list", "print models, workloads, parameters and presets");
  bool as_json = false;
  list->add_flag("--json", as_json, "machine-readable output");

  auto* run = app.add_subcommand("run", "run a matrix of models x workloads x parameters; write a report");
  run_arguments run_args;
  add_run_options(run, run_args);
  run->footer("Exit status: 0 when every run was ok or stopped at a named system limit (the limit is the finding);\n"
              "1 when any trial crashed, timed out, deadlocked, failed otherwise or computed a wrong checksum\n"
              "(the report is still written), or when the report could not be written to --out (the error names\n"
              "the fallback file it went to); 2 for bad input, an existing report at --out without --force, or\n"
              "an --out another run is writing (nothing runs, nothing is written).\n"
              "Interrupted (Ctrl-C, SIGTERM, SIGHUP) after a trial finished, it writes a partial report and keeps\n"
              "OUT.journal: `cmbench run --resume OUT.journal` runs the rest.");

  auto* floors = app.add_subcommand("floors", "measure each model's primitive floors on this machine and print them");
  bool floors_json = false;
  double floors_time_s = 0.2;
  floors->add_flag("--json", floors_json, "machine-readable output");
  floors->add_option("--min-time", floors_time_s, "seconds per sample (3 samples per floor)")->capture_default_str();

  auto* node = app.add_subcommand("node", "serve the distributed workloads' tasks for a coordinator (`cmbench run` "
                                          "starts these itself; under a launcher every rank but 0 is one)");
  std::string node_coordinator, node_listen;
  std::optional<std::string> node_token_file;
  long node_rank = 1;
  node->add_option("--coordinator", node_coordinator, "HOST:PORT of the coordinator's control listener")->required();
  node->add_option("--token-file", node_token_file, "the run's shared token (default: CMBENCH_TOKEN)");
  node->add_option("--listen", node_listen, "where serving processes listen (default 127.0.0.1)");
  node->add_option("--rank", node_rank, "this node's rank, for the coordinator's order and log lines");

  auto* trial = app.add_subcommand("trial", "run one trial in this process (used by run)");
  trial->group("");  // internal: hidden from --help
  std::string request_text, result_path;
  trial->add_option("--request", request_text)->required();
  trial->add_option("--result", result_path)->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (list->parsed()) {
      if (as_json) std::cout << all_facts().dump(2) << "\n";
      else std::cout << facts_table();
      return 0;
    }
    if (floors->parsed()) {
      if (!(floors_time_s > 0) || floors_time_s > 60) throw std::invalid_argument("--min-time must be in (0, 60] seconds");
      const auto measured = measure_floors_here(
          std::chrono::nanoseconds{static_cast<long long>(floors_time_s * 1e9)}, 3);
      if (floors_json) std::cout << measured.dump(2) << "\n";
      else std::cout << floors_table(measured);
      for (const auto& p : measured) {
        if (p.contains("error")) return 1;
      }
      return 0;
    }
    if (trial->parsed()) {
      return run_trial_here(nlohmann::json::parse(request_text).get<trial_request>(), result_path);
    }
    if (node->parsed()) {
      const char* env_token = std::getenv(wire::token_env);
      const wire::resolved_token token = wire::resolve_token(
          node_token_file, env_token == nullptr ? std::nullopt : std::optional<std::string>(env_token), false);
      return run_node(node_options{parse_endpoint(node_coordinator, "--coordinator"), token.token, node_listen,
                                   node_rank});
    }
    check_descriptor_limit();
    suite_options options;
    if (run->get_option("--resume")->count() > 0) {
      if (run_args.resume.empty()) throw std::invalid_argument("--resume needs a journal (OUT.journal)");
      // The journal holds the command line: another option would make a different run.
      for (const CLI::Option* o : run->get_options()) {
        if (o->count() > 0 && o->get_name() != "--resume") {
          throw std::invalid_argument("--resume takes the run's options from its journal: give no other option "
                                      "(got " + o->get_name() + ")");
        }
      }
      options = resumed_options(std::filesystem::absolute(run_args.resume).string());
    } else {
      options = suite_options_of(run_args);
      if (!options.topo.is_coordinator()) return run_as_node(options.topo, run_args.token_file, run_args.listen);
      if (run_args.out.empty()) std::filesystem::create_directories("results");
      for (int i = 0; i < argc; ++i) options.command_line += (i ? " " : "") + std::string(argv[i]);
      for (int i = 1; i < argc; ++i) options.args.emplace_back(argv[i]);
    }
    options.self_exe = self_executable();
    return run_suite(options);
  } catch (const std::invalid_argument& e) {
    std::cerr << "cmbench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "cmbench: " << e.what() << "\n";
    return 1;
  }
}
