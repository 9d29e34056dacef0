// The journal beside a report (OUT.journal): every finished trial, one JSON line each, appended as
// it ends, so an interrupted suite, or one whose report cannot be written, loses nothing, and
// `cmbench run --resume OUT.journal` finishes it. The first line holds the command line and the
// planned runs; each other line one trial: its run, its round, its request and its result.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/trial.hpp"

namespace cmbench {

struct run_record;

inline constexpr int journal_format = 1;

struct journal_header {
  std::vector<std::string> args;  // the command line after the program's name, as given
  std::string command_line;       // the whole of it, as the report's context shows it
  std::string out;                // the report's absolute path
  int repetitions = 0;
  int warmup = 0;
  nlohmann::json runs;            // as planned: [{workload, model, params}, ...]
};

struct journal_entry {
  std::size_t run = 0;  // index into the planned runs
  int round = 0;        // 0 .. warmup + repetitions - 1; the warmups come first
  trial_request request;
  trial_result result;
};

struct journal_contents {
  journal_header header;
  std::vector<journal_entry> entries;
  std::size_t complete_bytes = 0;  // up to the last whole line: a line cut by a kill is dropped
};

// Reads a journal. Throws std::invalid_argument (bad input, exit 2) naming the file and the line.
journal_contents read_journal(const std::string& path);

// The planned runs as the journal records them ([{workload, model, params}, ...]): a resumed run
// must plan the very same.
nlohmann::json planned_runs(const std::vector<run_record>& runs);

// The trials a journal holds, by (run, round), each checked against the runs planned now (and the
// repetitions and warmup); the first one recorded for a (run, round) counts. Throws
// std::invalid_argument (--resume's bad input) when the journal is of other runs.
using finished_trials = std::map<std::pair<std::size_t, int>, trial_result>;
finished_trials take_journal(const journal_contents& journal, const std::string& path,
                             const std::vector<run_record>& runs, int repetitions, int warmup);

// Appends finished trials to a journal. An append that fails says so once on stderr and the suite
// goes on (its results stay in memory, for the report).
class journal_writer {
 public:
  // A new journal, created with its header at the first append (replacing any file at `path`):
  // a run stopped before any trial finished leaves none.
  journal_writer(std::string path, journal_header header);
  // An existing journal, cut after its last whole line, to append to. Throws
  // std::invalid_argument (--resume's bad input) when it cannot be.
  journal_writer(const std::string& path, std::size_t complete_bytes);
  ~journal_writer();
  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  void append(const journal_entry& entry, const std::string& run_name, int repetition);
  // The journal is no longer needed (the complete report was written where asked).
  void remove();
  const std::string& path() const { return path_; }
  // The journal is on disk, with every trial appended so far.
  bool kept() const { return fd_ >= 0 && !failed_; }

 private:
  bool create();
  bool write_line(const std::string& line);
  std::string path_;
  journal_header header_;
  int fd_ = -1;
  bool failed_ = false;  // an append failed: some trial is missing from it
};

}  // namespace cmbench
