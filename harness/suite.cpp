#include "harness/suite.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "harness/floors.hpp"
#include "harness/format.hpp"
#include "harness/interrupts.hpp"
#include "harness/journal.hpp"
#include "harness/link_proxy.hpp"
#include "harness/nodes.hpp"
#include "harness/output.hpp"
#include "harness/summary.hpp"
#include "harness/system.hpp"
#include "models/wire/token.hpp"

namespace cmbench {
namespace {

bool interrupted() { return interrupts::requested() != 0; }

// What else the machine was doing just before the first trial, measured over a short window this
// process sleeps through (the load average lags by minutes).
struct machine_before {
  std::vector<double> load;  // the 1/5/15-minute load averages
  std::chrono::milliseconds window{500};
  double busy_cpus = -1;  // negative: not measured
  double steal_cpus = -1;
};

machine_before measure_machine_before() {
  machine_before m;
  m.load = system::load_average();
  const system::cpu_times start = system::read_cpu_times();
  std::this_thread::sleep_for(m.window);
  const system::cpu_times end = system::read_cpu_times();
  const std::int64_t total = end.total() - start.total();
  auto cpus_of = [&](std::int64_t ticks) {
    return total > 0 ? static_cast<double>(ticks) / static_cast<double>(total) * system::online_cpus() : -1.0;
  };
  m.busy_cpus = cpus_of(end.busy - start.busy);
  m.steal_cpus = cpus_of(end.steal - start.steal);
  return m;
}

// The share of all CPU time the hypervisor stole since `start`; negative: not measured.
double steal_share_since(const system::cpu_times& start) {
  const system::cpu_times end = system::read_cpu_times();
  const std::int64_t total = end.total() - start.total();
  return total > 0 ? static_cast<double>(end.steal - start.steal) / static_cast<double>(total) : -1.0;
}

// A resumed run appends to its journal (cut after its last whole line) and takes the trials it
// holds; a new one starts a journal beside the report, created when the first trial ends.
finished_trials open_journal(const suite_options& options, const std::vector<run_record>& runs,
                             std::optional<journal_writer>& journal) {
  if (options.resume_journal.empty()) {
    journal.emplace(journal_path_of(options.out),
                    journal_header{options.args, options.command_line, std::filesystem::absolute(options.out).string(),
                                   options.repetitions, options.warmup, planned_runs(runs)});
    return {};
  }
  const journal_contents contents = read_journal(options.resume_journal);
  finished_trials journaled = take_journal(contents, options.resume_journal, runs, options.repetitions, options.warmup);
  journal.emplace(options.resume_journal, contents.complete_bytes);
  return journaled;
}

struct trial_counts {
  std::size_t planned = 0;         // runs x (warmup + repetitions)
  std::size_t ran_here = 0;        // trials run to an end by this process
  std::size_t from_journal = 0;    // trials a resumed journal had finished
  std::size_t failed_warmups = 0;  // discarded, but one that crashed or computed a wrong answer still fails the command
};

// The suite's trials, workload by workload. Repetitions interleave across models (round r of
// every run of the workload, then round r + 1), so slow drift of the machine touches every model
// alike. A run that hit a limit or the timeout is not tried again: the answer would be the same.
// Every trial that ends is in the journal before the next starts; one the journal held is taken,
// not run again. An interrupt stops the running trial (not a result: --resume runs it) and the loop.
class trial_loop {
 public:
  trial_loop(const suite_options& options, std::vector<run_record>& runs, finished_trials journaled,
             journal_writer& journal, suite_floors& floors, node_pool* nodes, link_proxy* proxy)
      : options_(options), runs_(runs), journaled_(std::move(journaled)), journal_(journal), floors_(floors),
        nodes_(nodes), proxy_(proxy),
        stopped_(runs.size()), rounds_(options.warmup + options.repetitions) {
    counts_.planned = runs.size() * static_cast<std::size_t>(rounds_);
  }

  void run() {
    if (!options_.resume_journal.empty()) {
      std::fprintf(stderr, "[resume] %zu of %zu trials finished in %s; %s\n", journaled_.size(), counts_.planned,
                   options_.resume_journal.c_str(),
                   journaled_.size() < counts_.planned ? "running the rest" : "writing the report");
    }
    // From here an interrupt stops the running trial and the suite keeps what finished: every
    // trial is in the journal as it ends, and a partial report is written.
    interrupts::defer();
    for (std::size_t first = 0; first < runs_.size() && !interrupted();) {
      std::size_t last = first;
      while (last < runs_.size() && runs_[last].workload == runs_[first].workload) ++last;
      run_block(first, last);
      first = last;
    }
  }

  const trial_counts& counts() const { return counts_; }

 private:
  // Runs [first, last), one workload's; bracketed by their own floors where read against them.
  void run_block(std::size_t first, std::size_t last) {
    const workload_entry& workload = *runs_[first].workload;
    std::size_t journaled_here = 0;
    for (std::size_t i = first; i < last; ++i) {
      for (int round = 0; round < rounds_; ++round) journaled_here += journaled_.count({i, round});
    }
    // A block the journal finished whole needs no floors of its own: the whole run's serve.
    const bool bracket = options_.floors && workload.read_against_floor &&
                         journaled_here < (last - first) * static_cast<std::size_t>(rounds_);
    // The probes these runs are read against (with the unpinned one a cross-CPU floor falls back to
    // on one CPU).
    std::set<std::string> probes;
    for (std::size_t i = first; i < last; ++i) {
      const std::string name = runs_[i].workload->floor_probe.empty()
                                   ? std::string(runs_[i].model->info.round_trip_floor)
                                   : runs_[i].workload->floor_probe;
      if (name.empty()) continue;
      probes.insert(name);
      if (name.ends_with("_cross_cpu")) probes.insert(name.substr(0, name.size() - 10));
    }
    const bool measured = bracket && !probes.empty();
    if (measured) floors_.before_block(workload.name, probes);
    for (int round = 0; round < rounds_ && !interrupted(); ++round) {
      for (std::size_t i = first; i < last && !interrupted(); ++i) run_one(i, round);
    }
    if (measured && !interrupted()) floors_.after_block(first, last, workload.name, probes);
  }

  void run_one(std::size_t i, int round) {
    run_record& r = runs_[i];
    const bool warmup = round < options_.warmup;
    if (!stopped_[i].empty()) {
      if (!warmup && r.repetitions() < static_cast<std::size_t>(options_.repetitions)) {
        r.skipped.push_back("not repeated: an earlier trial failed: " + stopped_[i]);
      }
      ++done_;
      return;
    }
    trial_result t;
    if (const auto it = journaled_.find({i, round}); it != journaled_.end()) {
      t = it->second;
      ++counts_.from_journal;
      ++done_;
    } else {
      trial_request request{r.workload->name, r.model->name, r.params, {}, {}, 0, 0};
      t = r.workload->remote ? run_remote_trial(r, request) : run_trial_process(request, options_.timeout, options_.self_exe);
      if (interrupted()) return;  // stopped by the interrupt: not a result, --resume runs it again
      ++counts_.ran_here;
      journal_.append(journal_entry{i, round, request, t}, r.run_name(), warmup ? -1 : round - options_.warmup);
      progress(r, round, t);
      floors_.trial_ran();
    }
    if (t.limit_hit || t.timed_out) stopped_[i] = t.error;
    // A warmup that hit a limit stands as the run's first repetition: that is the finding.
    if (warmup && stopped_[i].empty() && (!t.ok || t.checksum != r.expected_checksum)) ++counts_.failed_warmups;
    if (!warmup || !stopped_[i].empty()) r.trials.push_back(std::move(t));
  }

  // A distributed workload's trial: a fresh serving process on each of its nodes first, on the
  // node side's model; the trial (the coordinator) then; what the nodes used joins the trial's
  // figures. A node that could not serve, or whose serving process crashed, fails the trial.
  // Under --link the trial is given the proxy's addresses for the nodes, nothing else changed.
  trial_result run_remote_trial(const run_record& r, trial_request& request) {
    trial_result t;
    const auto count = static_cast<std::size_t>(r.params.at("nodes"));
    const model_entry& node_model = side_model(*r.model, r.params, "node_model");
    try {
      std::vector<node_address> serving = nodes_->start_serving(count, r.workload->name, node_model.name, r.params);
      if (proxy_ != nullptr) serving = proxy_->route(serving, r.link);
      for (const node_address& a : serving) request.nodes.push_back(a.text());
      // A working node's control port is the harness's, not the model's: never routed over a link.
      for (const node_address& a : nodes_->control_ports()) request.node_controls.push_back(a.text());
    } catch (const std::exception& e) {
      if (proxy_ != nullptr) clear_link(t);
      (void)nodes_->stop_serving();
      t.error = std::string("nodes: ") + e.what();
      return t;
    }
    // The remote calls end a little before the harness would kill the trial, naming the node.
    const auto timeout_ms = options_.timeout.count();
    request.remote_timeout_ms = std::max<std::int64_t>(1, timeout_ms - std::min<std::int64_t>(2000, timeout_ms / 10));
    t = run_trial_process(request, options_.timeout, options_.self_exe);
    // What the coordinator sent is delivered before the nodes stop and count what they read.
    if (proxy_ != nullptr) clear_link(t);
    const std::vector<node_trial_stats> stats = nodes_->stop_serving();
    for (const auto& [name, value] : node_figures(stats, nodes_->cpus_of_first(count))) t.observed[name] = value;
    // What crossed the wire, counted on both sides, must agree: every byte the clients (the
    // coordinator's calls; a working node's, workload_entry::client_metrics) sent was read by a
    // node and the other way round, over as many connections.
    if (t.ok) {
      const std::string clients = r.workload->client_metrics;
      for (const auto& [mine, theirs] : {std::pair{clients + "_bytes_sent", "nodes_bytes_received"},
                                         {clients + "_bytes_received", "nodes_bytes_sent"},
                                         {clients + "_connections", "nodes_connections"}}) {
        const auto a = t.observed.find(mine), b = t.observed.find(theirs);
        if (a == t.observed.end() || b == t.observed.end() || a->second != b->second) {
          t.ok = false;
          t.error = std::string("verification failed: ") + mine + " " +
                    (a == t.observed.end() ? std::string("missing") : std::to_string(a->second)) + " but " + theirs +
                    " " + (b == t.observed.end() ? std::string("missing") : std::to_string(b->second));
          break;
        }
      }
    }
    // A serving process that failed fails the trial, and says why beside what the coordinator saw.
    for (const node_trial_stats& s : stats) {
      if (s.failure.empty()) continue;
      t.error = t.ok || t.error.empty() ? s.failure : t.error + "; " + s.failure;
      t.ok = false;
    }
    return t;
  }

  // Ends the trial's routes once the proxy has delivered what the coordinator sent (its last
  // bytes may still be crossing the link when the trial ends): up to a little more than the
  // slowest the link can carry a full queue. A proxy that fails fails the trial.
  void clear_link(trial_result& t) {
    const link_conditions& link = options_.link;
    const auto slowest = link.delay + link.jitter +
                         std::chrono::duration<double>(link.serialisation_seconds(link_queue_limit)) +
                         std::chrono::seconds{2};
    const auto drain = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(slowest), options_.timeout);
    try {
      const proxy_totals totals = proxy_->clear(drain);
      if (totals.undrained > 0 && t.ok) {
        t.ok = false;
        t.error = "link proxy: " + std::to_string(totals.undrained) + " connections still had bytes for their node " +
                  "after " + std::to_string(drain.count()) + " ms";
      }
    } catch (const std::exception& e) {
      t.error = t.ok || t.error.empty() ? e.what() : t.error + "; " + e.what();
      t.ok = false;
    }
  }

  void progress(const run_record& r, int round, const trial_result& t) {
    const std::string what = round < options_.warmup ? "warmup " + std::to_string(round + 1)
                                                     : "rep " + std::to_string(round - options_.warmup + 1) + "/" +
                                                           std::to_string(options_.repetitions);
    std::fprintf(stderr, "[%4zu/%zu] %-6s %-20s %s  %s", ++done_, counts_.planned, r.workload->name.c_str(),
                 r.model->name.c_str(), params_label(*r.workload, r.params).c_str(), what.c_str());
    if (t.ok) {
      std::fprintf(stderr, "  %s ms%s", ms_text(static_cast<double>(t.wall_ns) / 1e6).c_str(),
                   t.checksum == r.expected_checksum ? "" : "  CHECKSUM MISMATCH");
    } else {
      std::fprintf(stderr, "  failed: %s", t.error.c_str());
    }
    std::fputc('\n', stderr);
  }

  const suite_options& options_;
  std::vector<run_record>& runs_;
  const finished_trials journaled_;
  journal_writer& journal_;
  suite_floors& floors_;
  node_pool* nodes_;  // the distributed workloads' nodes; null: no run needs them
  link_proxy* proxy_;  // the emulated link the coordinator reaches them through (--link); null: none
  std::vector<std::string> stopped_;  // per run: the limit or timeout it stopped at; empty: none
  const int rounds_;
  std::size_t done_ = 0;  // trials taken, run or skipped: the progress count
  trial_counts counts_;
};

report_settings settings_of(const suite_options& options, const machine_before& before, double steal_during,
                            const trial_counts& counts) {
  report_settings settings;
  settings.command_line = options.command_line;
  settings.preset = preset_name(options.chosen_preset);
  settings.repetitions = options.repetitions;
  settings.warmup = options.warmup;
  settings.timeout_seconds = static_cast<double>(options.timeout.count()) / 1000.0;
  settings.load_before = before.load;
  settings.busy_window_s = std::chrono::duration<double>(before.window).count();
  settings.busy_cpus_before = before.busy_cpus;
  settings.steal_cpus_before = before.steal_cpus;
  settings.steal_share_during = steal_during;
  settings.trials_planned = counts.planned;
  settings.trials_finished = counts.ran_here + counts.from_journal;
  if (!options.resume_journal.empty()) {
    settings.resumed_from = options.resume_journal;
    settings.trials_from_journal = counts.from_journal;
  }
  return settings;
}

// Interrupted: the report is partial, says by what and which journal holds its trials, and the
// repetitions the suite did not reach are rows that say so (--resume runs them). Interrupted
// before any trial finished, there is nothing to keep: no report (a resumed journal stays as it
// was), and cmbench ends here.
void mark_partial(report_settings& settings, std::vector<run_record>& runs, int repetitions,
                  const journal_writer& journal, out_lock& lock) {
  settings.partial = true;
  const std::string why = "interrupted by " + interrupts::signal_name(interrupts::requested());
  if (settings.trials_finished == 0) {
    std::fprintf(stderr, "cmbench: %s before any trial finished: no report written\n", why.c_str());
    lock.release();
    interrupts::end();
  }
  settings.partial_reason = why;
  if (journal.kept()) settings.journal = journal.path();
  const auto planned = static_cast<std::size_t>(repetitions);
  for (auto& r : runs) r.not_run = planned - std::min(r.repetitions(), planned);
}

// Says where the partial report went and how to finish the run, then ends cmbench by the signal.
[[noreturn]] void end_partial(const std::string& out, const report_settings& settings, const report_written& written,
                              const std::string& resume_hint, out_lock& lock) {
  std::fprintf(stderr, "cmbench: %s after %zu of %zu trials: ", settings.partial_reason.c_str(),
               settings.trials_finished, settings.trials_planned);
  if (written.path == out) {
    std::fprintf(stderr, "partial report %s", out.c_str());
  } else if (!written.path.empty()) {
    std::fprintf(stderr, "%s; partial report written to %s instead", written.failure.c_str(), written.path.c_str());
  } else {
    std::fprintf(stderr, "no partial report: %s", written.failure.c_str());
  }
  if (!resume_hint.empty()) std::fprintf(stderr, "; %s runs the rest", resume_hint.c_str());
  std::fputc('\n', stderr);
  lock.release();
  interrupts::end();
}

// After the summary: where the report is, its warnings, and what failed. Returns the exit status.
// A run stopped at a named system limit is a finding; any other failure (a crash, a timeout, a
// deadlock, an error, a wrong checksum) must fail the command, so CI sees it, and so must a
// report that is not where --out asked.
int say_outcome(const std::string& out, const std::vector<run_record>& runs, const nlohmann::ordered_json& report,
                const report_written& written, const std::string& resume_hint, std::size_t failed_warmups) {
  std::size_t mismatched = 0;
  std::size_t failed = failed_warmups;
  for (const auto& r : runs) {
    for (const auto& t : r.trials) {
      if (t.ok && t.checksum != r.expected_checksum) ++mismatched;
      if (!t.ok && !t.limit_hit) ++failed;
    }
  }
  if (!written.path.empty()) std::cout << "\nreport: " << written.path << "\n";
  for (const auto& w : report["context"]["warnings"]) std::cout << "warning: " << w.get<std::string>() << "\n";
  if (mismatched > 0) std::cerr << "cmbench: " << mismatched << " trials computed a wrong checksum\n";
  if (failed > 0) {
    std::cerr << "cmbench: " << failed << " trials failed (a crash, a timeout, a failed verification or an error)\n";
  }
  if (written.path == out) return mismatched + failed > 0 ? 1 : 0;
  // Never lose the results: say where they are.
  std::cerr << "cmbench: " << written.failure;
  if (!written.path.empty()) std::cerr << "; the report was written to " << written.path << " instead";
  if (!resume_hint.empty()) {
    std::cerr << "; every trial is in the journal: " << resume_hint << " writes the report to " << out
              << " once it can be written";
  }
  std::cerr << "\n";
  return 1;
}

// The nodes the distributed runs need: started here (embedded) when no launcher started the run,
// else the launcher's other ranks, which connect to this one. Under a launcher the other ranks
// wait for orders whatever the workloads, so they are taken (and told to exit) even when no run
// needs them. Fills `distributed`, the report's record of where they were.
std::optional<node_pool> start_nodes(const suite_options& options, const std::vector<run_record>& runs,
                                     nlohmann::ordered_json& distributed) {
  const topology& topo = options.topo;
  std::size_t needed = 0;
  for (const auto& r : runs) {
    if (r.workload->remote) needed = std::max(needed, static_cast<std::size_t>(r.params.at("nodes")));
  }
  const bool launched = topo.launched_by != launcher::none || topo.size > 1;
  if (needed == 0 && !launched) return std::nullopt;
  const char* env_token = std::getenv(wire::token_env);
  const wire::resolved_token token = wire::resolve_token(
      options.token_file, env_token == nullptr ? std::nullopt : std::optional<std::string>(env_token), !launched);
  // The trials (the coordinators) read it from the environment, as the nodes do.
  ::setenv(wire::token_env, token.token.c_str(), 1);
  std::optional<node_pool> pool;
  if (launched) {
    const auto available = static_cast<std::size_t>(topo.size - 1);
    if (needed > available) {
      throw std::invalid_argument("the distributed runs need " + std::to_string(needed) + " nodes; the launcher started " +
                                  std::to_string(topo.size) + " ranks, so " + std::to_string(available) +
                                  " are nodes: start more ranks, or pass --param nodes=" + std::to_string(available));
    }
    std::fprintf(stderr, "[nodes] waiting for %zu nodes on %s (%s, rank from %s)\n", available,
                 topo.coordinator.text().c_str(), std::string(launcher_name(topo.launched_by)).c_str(),
                 topo.rank_source.c_str());
    pool.emplace(node_pool::launched(topo.coordinator, available, token.token, std::chrono::seconds{120}));
  } else {
    std::fprintf(stderr, "[nodes] starting %zu embedded nodes on 127.0.0.1\n", needed);
    pool.emplace(node_pool::embedded(needed, options.self_exe, token.token));
  }
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const node_info& n : pool->nodes()) {
    nodes.push_back({{"rank", n.rank}, {"host", n.host}, {"hostname", n.hostname}, {"cpus", n.cpus}, {"pid", n.pid}});
  }
  distributed = {{"mode", launched ? "launched" : "embedded"},
                 {"launcher", launcher_name(topo.launched_by)},
                 {"size", launched ? topo.size : static_cast<long>(needed) + 1},
                 {"rank_source", topo.rank_source},
                 {"size_source", topo.size_source},
                 {"single_host", topo.single_host ? nlohmann::ordered_json(*topo.single_host) : nlohmann::ordered_json()},
                 {"coordinator", launched ? topo.coordinator.text() : "127.0.0.1 (embedded)"},
                 {"token", wire::token_origin_name(token.origin)},
                 {"nodes", nodes}};
  return pool;
}

// --link: every distributed run's connections go through it. A link with no distributed run to
// carry is a mistake in the command, said before anything runs.
void set_link(std::vector<run_record>& runs, const link_conditions& link) {
  if (!link.active()) return;
  bool carried = false;
  for (auto& r : runs) {
    if (!r.workload->remote) continue;
    r.link = link;
    carried = true;
  }
  if (carried) return;
  std::string remote;
  for (const auto& w : all_workloads()) {
    if (w.remote) remote += (remote.empty() ? "" : ", ") + w.name;
  }
  throw std::invalid_argument("--link " + link.given + " applies to the distributed workloads (" + remote +
                              "), and none is selected");
}

// The proxy that emulates --link, started for the suite (on loopback, or the coordinator's host
// under a launcher, where other machines may have to reach it), and its own cost measured through
// it before the trials: `measured` becomes the report's context.link.
std::optional<link_proxy> start_link(const suite_options& options, nlohmann::ordered_json& measured) {
  if (!options.link.active()) return std::nullopt;
  const bool launched = options.topo.launched_by != launcher::none || options.topo.size > 1;
  link_proxy proxy(launched ? options.topo.coordinator.host : std::string("127.0.0.1"));
  const link_cost cost = measure_link_cost(proxy);
  std::fprintf(stderr, "[link] %s through a proxy (pid %ld) on %s; its own cost: a loopback round trip of %s "
                       "through it (%s direct), %s/s through one connection\n",
               options.link.given.c_str(), static_cast<long>(proxy.pid()), proxy.listen_host().c_str(),
               duration_text(std::chrono::duration<double>(cost.proxied_round_trip_ns / 1e9)).c_str(),
               duration_text(std::chrono::duration<double>(cost.direct_round_trip_ns / 1e9)).c_str(),
               bytes_text(cost.proxy_capacity_bytes_per_second).c_str());
  measured = link_context(options.link, cost, proxy.listen_host());
  return proxy;
}

}  // namespace

int run_suite(const suite_options& options) {
  check_counts(options.repetitions, options.warmup, options.timeout);
  check_overrides(options.workloads, options.overrides);
  // Plan everything first: bad parameters fail before a single trial runs.
  const unsigned cpus = system::usable_cpus();
  std::vector<run_record> runs =
      plan_runs(options.workloads, options.models, options.chosen_preset, options.overrides, cpus);
  set_link(runs, options.link);
  check_writable(options.out);
  const int trials_per_run = options.repetitions + options.warmup;
  const double least_seconds = check_cost(runs, trials_per_run, options.timeout, cpus, options.accept_long_runs);
  std::fprintf(stderr, "[plan] %zu runs, %zu trials, at least %.0f s of trials and references\n", runs.size(),
               runs.size() * static_cast<std::size_t>(trials_per_run), least_seconds);
  // One run at a time writes an --out, never over a report unless told (--force).
  out_lock lock(options.out);
  check_replaceable(options.out, options.force, !options.resume_journal.empty());
  std::optional<journal_writer> journal;
  finished_trials journaled = open_journal(options, runs, journal);
  set_references(runs, options.timeout);
  nlohmann::ordered_json distributed;
  std::optional<node_pool> nodes = start_nodes(options, runs, distributed);
  nlohmann::ordered_json link_measured;
  std::optional<link_proxy> proxy = start_link(options, link_measured);

  const machine_before before = measure_machine_before();
  suite_floors floors(options.floors, options.floor_time);
  const system::cpu_times trials_start = system::read_cpu_times();
  trial_loop loop(options, runs, std::move(journaled), *journal, floors, nodes ? &*nodes : nullptr,
                  proxy ? &*proxy : nullptr);
  loop.run();
  report_settings settings = settings_of(options, before, steal_share_since(trials_start), loop.counts());
  settings.distributed = std::move(distributed);
  settings.link = std::move(link_measured);
  proxy.reset();
  nodes.reset();  // every node daemon told to exit
  const nlohmann::ordered_json floors_measured = floors.finish(runs, interrupted());
  if (interrupted()) mark_partial(settings, runs, options.repetitions, *journal, lock);

  link_baselines(runs);
  nlohmann::ordered_json report = {{"context", build_context(settings, runs, floors_measured)},
                                   {"benchmarks", build_rows(runs)}};
  const report_written written = write_report(options.out, report.dump(2) + "\n");
  const std::string resume_hint = journal->kept() ? "`cmbench run --resume " + journal->path() + "`" : "";
  if (settings.partial) end_partial(options.out, settings, written, resume_hint, lock);
  // The complete report is where asked: the journal has served. Elsewhere, the journal stays, so
  // --resume can write it where asked once that works (it runs nothing again).
  if (written.path == options.out) journal->remove();
  std::cout << summary_table(runs, report["benchmarks"]);
  const int status = say_outcome(options.out, runs, report, written, resume_hint, loop.counts().failed_warmups);
  if (interrupted()) {  // interrupted after the last trial: the report is whole; end as asked
    lock.release();
    interrupts::end();
  }
  return status;
}

}  // namespace cmbench
