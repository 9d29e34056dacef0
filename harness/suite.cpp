#include "harness/suite.hpp"

#include <csignal>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "harness/floors.hpp"
#include "harness/plan.hpp"
#include "harness/interrupts.hpp"
#include "harness/journal.hpp"
#include "harness/output.hpp"
#include "harness/system.hpp"

namespace cmbench {
namespace {

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> parts;
  std::stringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

template <class T>
void add_unique(std::vector<const T*>& to, const T* item) {
  if (std::find(to.begin(), to.end(), item) == to.end()) to.push_back(item);
}

std::string format_ms(double ms) {
  char text[32];
  if (ms >= 100) std::snprintf(text, sizeof(text), "%.0f", ms);
  else if (ms >= 1) std::snprintf(text, sizeof(text), "%.2f", ms);
  else std::snprintf(text, sizeof(text), "%.4f", ms);
  return text;
}

std::string format_bytes(double bytes) {
  char text[32];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(text, sizeof(text), "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024) std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1024.0 * 1024));
  else if (bytes >= 1024.0) std::snprintf(text, sizeof(text), "%.1f KiB", bytes / 1024.0);
  else std::snprintf(text, sizeof(text), "%.0f B", bytes);
  return text;
}

std::string format_figure(double v) {
  char text[32];
  if (std::isnan(v)) return "-";
  if (std::abs(v) >= 1e6) std::snprintf(text, sizeof(text), "%.3g", v);
  else if (std::abs(v) >= 100) std::snprintf(text, sizeof(text), "%.0f", v);
  else std::snprintf(text, sizeof(text), "%.3g", v);
  return text;
}

// The planned runs as the journal records them: a resumed run must plan the very same.
nlohmann::json planned_runs(const std::vector<run_record>& runs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : runs) {
    list.push_back({{"workload", r.workload->name}, {"model", r.model->name}, {"params", r.params}});
  }
  return list;
}

// The trials a resumed journal holds, by (run, round), each checked against the run planned now.
using finished_trials = std::map<std::pair<std::size_t, int>, trial_result>;
finished_trials take_journal(const journal_contents& journal, const std::vector<run_record>& runs,
                             const suite_options& options) {
  const std::string& path = options.resume_journal;
  if (journal.header.runs != planned_runs(runs) || journal.header.repetitions != options.repetitions ||
      journal.header.warmup != options.warmup) {
    throw std::invalid_argument("--resume " + path + ": this cmbench plans other runs for the journal's command "
                                "line (another build?); run it again without --resume (with --force)");
  }
  finished_trials finished;
  for (const auto& e : journal.entries) {
    const run_record& r = runs[e.run];
    if (e.request.workload != r.workload->name || e.request.model != r.model->name || e.request.params != r.params) {
      throw std::invalid_argument("--resume " + path + ": a trial of " + e.request.workload + "/" + e.request.model +
                                  " is recorded as one of " + r.run_name());
    }
    finished.emplace(std::make_pair(e.run, e.round), e.result);  // the first one recorded counts
  }
  return finished;
}

std::string signal_name(int sig) {
  return sig == SIGINT    ? "SIGINT"
         : sig == SIGTERM ? "SIGTERM"
         : sig == SIGHUP  ? "SIGHUP"
                          : "signal " + std::to_string(sig);
}

}  // namespace

std::vector<const model_entry*> select_models(const std::string& list) {
  std::vector<const model_entry*> chosen;
  for (const auto& name : split(list)) {
    bool found = false;
    for (const auto& m : all_models()) {
      if (name == "all" || m.name == name || m.info.family == name) {
        add_unique(chosen, &m);
        found = true;
      }
    }
    if (!found) {
      std::string known, families;
      std::set<std::string_view> seen;
      for (const auto& m : all_models()) {
        known += (known.empty() ? "" : ", ") + m.name;
        if (seen.insert(m.info.family).second) families += (families.empty() ? "" : ", ") + std::string(m.info.family);
      }
      throw std::invalid_argument("unknown model '" + name + "' (known: " + known + "; or a family: " + families +
                                  "; or all)");
    }
  }
  if (chosen.empty()) throw std::invalid_argument("--models selects no model");
  return chosen;
}

std::vector<const workload_entry*> select_workloads(const std::string& list) {
  std::vector<const workload_entry*> chosen;
  for (const auto& name : split(list)) {
    bool found = false;
    for (const auto& w : all_workloads()) {
      if (name == "all" || w.name == name) {
        add_unique(chosen, &w);
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& w : all_workloads()) known += (known.empty() ? "" : ", ") + w.name;
      throw std::invalid_argument("unknown workload '" + name + "' (known: " + known + "; or all)");
    }
  }
  if (chosen.empty()) throw std::invalid_argument("--workloads selects no workload");
  return chosen;
}

int run_suite(const suite_options& options) {
  // Counts are bounded before any arithmetic on them: no sum of them can overflow.
  constexpr int max_count = 10'000;
  if (options.repetitions < 1 || options.repetitions > max_count) {
    throw std::invalid_argument("--repetitions must be from 1 to " + std::to_string(max_count) + " (got " +
                                std::to_string(options.repetitions) + ")");
  }
  if (options.warmup < 0 || options.warmup > max_count) {
    throw std::invalid_argument("--warmup must be from 0 to " + std::to_string(max_count) + " (got " +
                                std::to_string(options.warmup) + ")");
  }
  if (options.timeout.count() <= 0) throw std::invalid_argument("--timeout must be positive");
  check_overrides(options.workloads, options.overrides);

  // Plan everything first: bad parameters fail before a single trial runs.
  const unsigned cpus = system::usable_cpus();
  std::vector<run_record> runs;
  std::size_t family = 0;
  for (const auto* w : options.workloads) {
    const auto combos = combinations(*w, options.chosen_preset, options.overrides, cpus);
    for (const auto* m : options.models) {
      std::size_t instance = 0;
      std::set<param_values> baseline_work;  // the baseline: once per combination of the work's parameters
      for (const auto& params : combos) {
        if (m->info.baseline && !baseline_work.insert(work_params(*w, params)).second) continue;
        run_record r;
        r.workload = w;
        r.model = m;
        r.params = params;
        r.family_index = family;
        r.instance_index = instance++;
        runs.push_back(std::move(r));
      }
      ++family;
    }
  }
  check_writable(options.out);
  const double least_seconds =
      check_cost(runs, options.repetitions + options.warmup, options.timeout, cpus, options.accept_long_runs);
  std::fprintf(stderr, "[plan] %zu runs, %zu trials, at least %.0f s of trials and references\n", runs.size(),
               runs.size() * static_cast<std::size_t>(options.repetitions + options.warmup), least_seconds);
  // One run at a time writes an --out, never over a report unless told (--force); a resumed run
  // takes the finished trials of its journal and appends the rest to it.
  out_lock lock(options.out);
  const bool resuming = !options.resume_journal.empty();
  check_replaceable(options.out, options.force, resuming);
  finished_trials journaled;
  std::optional<journal_writer> journal;
  if (resuming) {
    const journal_contents contents = read_journal(options.resume_journal);
    journaled = take_journal(contents, runs, options);
    journal.emplace(options.resume_journal, contents.complete_bytes);
  } else {
    journal.emplace(journal_path_of(options.out),
                    journal_header{options.args, options.command_line, std::filesystem::absolute(options.out).string(),
                                   options.repetitions, options.warmup, planned_runs(runs)});
  }

  // The reference checksum of every combination, once: each workload's reference(), the serial
  // computation of its work without waits, in a child process under the trial timeout.
  std::map<std::pair<const workload_entry*, param_values>, std::uint64_t> references;
  for (auto& r : runs) {
    auto key = std::make_pair(r.workload, r.params);
    auto it = references.find(key);
    if (it == references.end()) it = references.emplace(key, reference_in_child(*r.workload, r.params, options.timeout)).first;
    r.expected_checksum = it->second;
  }

  const std::vector<double> load_before = system::load_average();
  // What else the machine was doing just now, measured: this process sleeps through the window.
  constexpr auto busy_window = std::chrono::milliseconds{500};
  const system::cpu_times window_start = system::read_cpu_times();
  std::this_thread::sleep_for(busy_window);
  const system::cpu_times window_end = system::read_cpu_times();
  auto cpus_of = [](std::int64_t ticks, std::int64_t total) {
    return total > 0 ? static_cast<double>(ticks) / static_cast<double>(total) * system::online_cpus() : -1.0;
  };
  const std::int64_t window_total = window_end.total() - window_start.total();
  const double busy_cpus_before = cpus_of(window_end.busy - window_start.busy, window_total);
  const double steal_cpus_before = cpus_of(window_end.steal - window_start.steal, window_total);

  // The floors, in a child process before and after the trials: their drift is visible too. A
  // workload whose rows are read against a floor (its round trips' p50) is bracketed by its own
  // pair of measurements, as close in time to its trials as can be: a virtual machine's
  // cross-CPU wake-up drifts by 2x from one minute to the next.
  auto floors_now = [&](const std::string& when) {
    if (!options.floors) return nlohmann::ordered_json(nullptr);
    std::fprintf(stderr, "[floors] measuring the models' primitive floors %s\n", when.c_str());
    nlohmann::ordered_json measured = measure_floors_in_child(options.floor_time, 3, std::chrono::seconds{120});
    // Stopped by an interrupt: say so, rather than that the floors process failed.
    if (const int sig = interrupts::requested(); sig != 0) {
      measured = {{"error", "not measured: interrupted by " + signal_name(sig)}};
    }
    return measured;
  };
  const nlohmann::ordered_json floors_first = floors_now("before the trials");
  nlohmann::ordered_json floors_latest = floors_first;
  bool floors_fresh = true;  // no trial ran since floors_latest
  // Runs [first, last) of a bracketed workload, with their floors.
  std::vector<std::tuple<std::size_t, std::size_t, nlohmann::ordered_json>> bracketed;

  const system::cpu_times trials_start = system::read_cpu_times();
  const std::size_t total = runs.size() * static_cast<std::size_t>(options.repetitions + options.warmup);
  std::size_t done = 0;
  std::size_t ran_here = 0;      // trials run to an end by this process
  std::size_t from_journal = 0;  // trials a resumed journal had finished
  if (resuming) {
    std::fprintf(stderr, "[resume] %zu of %zu trials finished in %s; %s\n", journaled.size(), total,
                 options.resume_journal.c_str(), journaled.size() < total ? "running the rest" : "writing the report");
  }
  auto progress = [&](const run_record& r, const std::string& what, const trial_result* t) {
    std::fprintf(stderr, "[%4zu/%zu] %-6s %-20s %s  %s", ++done, total, r.workload->name.c_str(),
                 r.model->name.c_str(), params_label(*r.workload, r.params).c_str(), what.c_str());
    if (t != nullptr) {
      if (t->ok) std::fprintf(stderr, "  %s ms%s", format_ms(static_cast<double>(t->wall_ns) / 1e6).c_str(),
                              t->checksum == r.expected_checksum ? "" : "  CHECKSUM MISMATCH");
      else std::fprintf(stderr, "  failed: %s", t->error.c_str());
    }
    std::fputc('\n', stderr);
  };

  // Repetitions interleave across models, so slow drift of the machine touches every model alike.
  // A run that hit a limit or the timeout is not tried again: the answer would be the same.
  std::vector<std::string> stopped(runs.size());
  // A warmup is discarded, but one that crashed or computed a wrong answer still fails the command.
  std::size_t failed_warmups = 0;
  const int rounds = options.warmup + options.repetitions;
  // From here an interrupt stops the running trial and the suite keeps what finished: every trial
  // is in the journal as it ends, and a partial report is written below.
  interrupts::defer();
  auto interrupted = [] { return interrupts::requested() != 0; };
  for (std::size_t first = 0; first < runs.size() && !interrupted();) {
    std::size_t last = first;
    while (last < runs.size() && runs[last].workload == runs[first].workload) ++last;
    const std::string& workload_name = runs[first].workload->name;
    std::size_t journaled_here = 0;
    for (std::size_t i = first; i < last; ++i) {
      for (int round = 0; round < rounds; ++round) journaled_here += journaled.count({i, round});
    }
    // A block the journal finished whole needs no floors of its own: the whole run's serve.
    const bool bracket = options.floors && runs[first].workload->read_against_floor &&
                         journaled_here < (last - first) * static_cast<std::size_t>(rounds);
    if (bracket && !floors_fresh) floors_latest = floors_now("before the " + workload_name + " trials");
    const nlohmann::ordered_json floors_before_block = floors_latest;
    for (int round = 0; round < rounds && !interrupted(); ++round) {
      const bool warmup = round < options.warmup;
      for (std::size_t i = first; i < last && !interrupted(); ++i) {
        run_record& r = runs[i];
        if (!stopped[i].empty()) {
          if (!warmup && r.repetitions() < static_cast<std::size_t>(options.repetitions)) {
            r.skipped.push_back("not repeated: an earlier trial failed: " + stopped[i]);
          }
          ++done;
          continue;
        }
        const std::string label = warmup ? "warmup " + std::to_string(round + 1)
                                         : "rep " + std::to_string(round - options.warmup + 1) + "/" +
                                               std::to_string(options.repetitions);
        trial_result t;
        if (const auto it = journaled.find({i, round}); it != journaled.end()) {
          t = it->second;
          ++from_journal;
          ++done;
        } else {
          const trial_request request{r.workload->name, r.model->name, r.params, {}};
          t = run_trial_process(request, options.timeout, options.self_exe);
          if (interrupted()) break;  // stopped by the interrupt: not a result, --resume runs it again
          ++ran_here;
          journal->append(journal_entry{i, round, request, t}, r.run_name(), warmup ? -1 : round - options.warmup);
          progress(r, label, &t);
          floors_fresh = false;
        }
        if (t.limit_hit || t.timed_out) stopped[i] = t.error;
        // A warmup that hit a limit stands as the run's first repetition: that is the finding.
        if (warmup && stopped[i].empty() && (!t.ok || t.checksum != r.expected_checksum)) ++failed_warmups;
        if (!warmup || !stopped[i].empty()) r.trials.push_back(std::move(t));
      }
    }
    if (interrupted()) break;
    if (bracket) {
      floors_latest = floors_now("after the " + workload_name + " trials");
      floors_fresh = true;
      bracketed.emplace_back(first, last, combine_floors(floors_before_block, floors_latest));
    }
    first = last;
  }

  const system::cpu_times trials_end = system::read_cpu_times();
  const std::int64_t trials_total = trials_end.total() - trials_start.total();
  const double steal_share_during =
      trials_total > 0 ? static_cast<double>(trials_end.steal - trials_start.steal) / static_cast<double>(trials_total)
                       : -1.0;

  nlohmann::ordered_json floors = nullptr;
  if (options.floors) {
    // Interrupted: what was measured so far; the user asked to stop, not for 3 more seconds.
    floors = combine_floors(floors_first,
                            floors_fresh || interrupted() ? floors_latest : floors_now("after the trials"));
    auto set_floor = [](run_record& r, const std::map<std::string, floor_value>& values) {
      std::string name(r.model->info.round_trip_floor);
      auto it = values.find(name);
      // One CPU: no cross-CPU round trip was measured; the unpinned one is the floor there.
      if (it == values.end() && name.ends_with("_cross_cpu")) it = values.find(name.substr(0, name.size() - 10));
      if (it != values.end()) {
        r.round_trip_floor = it->first;
        r.round_trip_floor_ns = it->second.ns;
        r.round_trip_floor_before_ns = it->second.before_ns;
        r.round_trip_floor_after_ns = it->second.after_ns;
      }
    };
    const auto whole_run = floor_values(floors);
    for (auto& r : runs) set_floor(r, whole_run);
    nlohmann::ordered_json by_workload = nlohmann::ordered_json::object();
    for (const auto& [begin, end, block_floors] : bracketed) {
      const auto values = floor_values(block_floors);
      for (std::size_t i = begin; i < end; ++i) set_floor(runs[i], values);
      by_workload[runs[begin].workload->name] = block_floors;
    }
    floors["by_workload"] = by_workload;
  }

  report_settings settings;
  settings.command_line = options.command_line;
  settings.preset = preset_name(options.chosen_preset);
  settings.repetitions = options.repetitions;
  settings.warmup = options.warmup;
  settings.timeout_seconds = static_cast<double>(options.timeout.count()) / 1000.0;
  settings.load_before = load_before;
  settings.busy_window_s = std::chrono::duration<double>(busy_window).count();
  settings.busy_cpus_before = busy_cpus_before;
  settings.steal_cpus_before = steal_cpus_before;
  settings.steal_share_during = steal_share_during;
  const int stopped_by = interrupts::requested();
  settings.partial = stopped_by != 0;
  settings.trials_planned = total;
  settings.trials_finished = ran_here + from_journal;
  if (resuming) {
    settings.resumed_from = options.resume_journal;
    settings.trials_from_journal = from_journal;
  }
  if (settings.partial) {
    const std::string why = "interrupted by " + signal_name(stopped_by);
    if (settings.trials_finished == 0) {
      // Nothing finished, nothing to keep: no report, and a resumed journal stays as it was.
      std::fprintf(stderr, "cmbench: %s before any trial finished: no report written\n", why.c_str());
      lock.release();
      interrupts::end();
    }
    settings.partial_reason = why;
    if (journal->kept()) settings.journal = journal->path();
    // The repetitions the suite did not reach: rows that say so, and --resume runs them.
    const auto repetitions = static_cast<std::size_t>(options.repetitions);
    for (auto& r : runs) r.not_run = repetitions - std::min(r.repetitions(), repetitions);
  }
  link_baselines(runs);
  nlohmann::ordered_json report = {{"context", build_context(settings, runs, floors)}, {"benchmarks", build_rows(runs)}};
  const report_written written = write_report(options.out, report.dump(2) + "\n");
  const std::string resume_hint = journal->kept() ? "`cmbench run --resume " + journal->path() + "`" : "";
  if (settings.partial) {
    std::fprintf(stderr, "cmbench: %s after %zu of %zu trials: ", settings.partial_reason.c_str(),
                 settings.trials_finished, total);
    if (written.path == options.out) {
      std::fprintf(stderr, "partial report %s", options.out.c_str());
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
  // The complete report is where asked: the journal has served. Elsewhere, the journal stays, so
  // --resume can write it where asked once that works (it runs nothing again).
  if (written.path == options.out) journal->remove();

  std::cout << summary_table(runs);
  // A run stopped at a named system limit is a finding; any other failure (a crash, a timeout, a
  // deadlock, an error, a wrong checksum) must fail the command, so CI sees it.
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
  if (failed > 0) std::cerr << "cmbench: " << failed << " trials failed (a crash, a timeout, a failed verification or an error)\n";
  int status = mismatched + failed > 0 ? 1 : 0;
  if (written.path != options.out) {
    // Never lose the results: say where they are.
    std::cerr << "cmbench: " << written.failure;
    if (!written.path.empty()) std::cerr << "; the report was written to " << written.path << " instead";
    if (!resume_hint.empty()) {
      std::cerr << "; every trial is in the journal: " << resume_hint << " writes the report to " << options.out
                << " once it can be written";
    }
    std::cerr << "\n";
    status = 1;
  }
  if (interrupts::requested() != 0) {  // interrupted after the last trial: the report is whole; end as asked
    lock.release();
    interrupts::end();
  }
  return status;
}

std::string summary_table(const std::vector<run_record>& runs) {
  std::ostringstream out;
  char line[512];
  const char* header = "%-20s %-8s %11s %19s %16s %6s %10s %10s %9s\n";
  std::string current;
  // After a group whose figure was read against floors: which floors, measured at what.
  std::map<std::string, const run_record*> group_floors;
  auto end_group = [&] {
    if (group_floors.empty()) return;
    auto time = [](double ns) { return ns >= 1000 ? format_figure(ns / 1000) + " us" : format_figure(ns) + " ns"; };
    out << "(x): the figure over the model's round-trip floor (its median round trip where timed one by one, else "
           "its mean), the lower of two measurements just before and just after these trials:";
    const char* sep = " ";
    for (const auto& [name, r] : group_floors) {
      out << sep << name << " " << time(r->round_trip_floor_ns);
      if (r->round_trip_floor_before_ns > 0 && r->round_trip_floor_after_ns > 0) {
        out << " (" << time(r->round_trip_floor_before_ns) << " / " << time(r->round_trip_floor_after_ns) << ")";
      }
      sep = ", ";
    }
    out << "\n";
    group_floors.clear();
  };
  // One block per workload and parameter combination, every model in it, in the order the
  // combinations first appear (runs are listed model by model).
  std::vector<std::string> group_of;
  std::map<std::string, std::size_t> first_seen;
  for (const auto& r : runs) {
    group_of.push_back(r.workload->name + "  " + params_label(*r.workload, r.params));
    first_seen.emplace(group_of.back(), first_seen.size());
  }
  std::vector<std::size_t> order(runs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return first_seen.at(group_of[a]) < first_seen.at(group_of[b]);
  });
  for (const std::size_t index : order) {
    const run_record& r = runs[index];
    const std::string& group = group_of[index];
    if (group != current) {
      end_group();
      current = group;
      out << "\n" << group << "\n";
      std::snprintf(line, sizeof(line), header, "model", "status", "median ms", "min..max ms",
                    r.workload->figures.empty() ? "-" : r.workload->figures.front().heading.c_str(), "CPUs",
                    "peak PSS", "bytes/unit", "ctx sw");
      out << line;
    }
    std::vector<double> walls;
    const trial_result* mid = nullptr;
    for (const auto& t : r.trials) {
      if (t.ok && t.checksum == r.expected_checksum) walls.push_back(static_cast<double>(t.wall_ns) / 1e6);
    }
    std::string status = !walls.empty() && walls.size() == r.repetitions() ? "ok"
                         : r.trials.empty()                               ? "skipped"
                                                                          : "FAILED";
    if (walls.empty()) {
      std::string why = !r.trials.empty() ? r.trials.front().error
                        : r.skipped.empty() ? std::string("no trial ran")
                                            : r.skipped.front();
      if (why.empty() && !r.trials.empty()) why = "checksum mismatch";
      std::snprintf(line, sizeof(line), "%-20s %-8s %s\n", r.model->name.c_str(), status.c_str(), why.c_str());
      out << line;
      continue;
    }
    std::vector<double> sorted = walls;
    std::sort(sorted.begin(), sorted.end());
    const double med = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    for (const auto& t : r.trials) {
      if (t.ok && (mid == nullptr || std::abs(static_cast<double>(t.wall_ns) / 1e6 - med) <
                                         std::abs(static_cast<double>(mid->wall_ns) / 1e6 - med))) {
        mid = &t;
      }
    }
    // The workload's headline figure: its median over the verified repetitions, as the report's
    // median row has it; where the workload is read against a floor, also that over the model's.
    double figure = std::nan("");
    const figure_of_merit* headline = r.workload->figures.empty() ? nullptr : &r.workload->figures.front();
    if (headline != nullptr) figure = run_metric(r, headline->metric);
    std::string shown = format_figure(figure);
    if (headline != nullptr && headline->kind == figure_kind::ratio && !std::isnan(figure)) {
      char text[16];
      std::snprintf(text, sizeof(text), "%.2fx", figure);
      shown = text;
    }
    if (r.workload->read_against_floor && !std::isnan(figure) && r.round_trip_floor_ns > 0) {
      char text[32];
      std::snprintf(text, sizeof(text), " (%.2gx)", figure / r.round_trip_floor_ns);
      shown += text;
      group_floors[r.round_trip_floor] = &r;
    }
    const double cpu = static_cast<double>(mid->usage.user_ns + mid->usage.sys_ns) / static_cast<double>(mid->wall_ns);
    const unit_memory um = unit_memory_of(*mid);
    char cpus[16], range[48], switches[32];
    std::snprintf(cpus, sizeof(cpus), "%.2f", cpu);
    std::snprintf(range, sizeof(range), "%s..%s", format_ms(sorted.front()).c_str(), format_ms(sorted.back()).c_str());
    std::snprintf(switches, sizeof(switches), "%lld",
                  static_cast<long long>(mid->usage.voluntary_switches + mid->usage.involuntary_switches));
    std::snprintf(line, sizeof(line), header, r.model->name.c_str(), status.c_str(), format_ms(med).c_str(), range,
                  shown.c_str(), cpus, format_bytes(static_cast<double>(mid->peak_pss_bytes)).c_str(),
                  um.units_alive > 0 ? format_bytes(um.pss_bytes / um.units_alive).c_str() : "-", switches);
    out << line;
  }
  end_group();
  return out.str();
}

}  // namespace cmbench
