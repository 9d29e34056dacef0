#include "harness/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/report.hpp"

namespace cmbench {

journal_contents read_journal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("--resume " + path + ": cannot read it: " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  journal_contents contents;
  std::size_t line_number = 0;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // cut by a kill mid-write: that trial is run again
    ++line_number;
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    auto bad = [&](const std::string& why) {
      return std::invalid_argument("--resume " + path + ": line " + std::to_string(line_number) + ": " + why);
    };
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (line_number > 1 && j.is_discarded()) {
      // A trial line garbled by a failed write: that trial is run again, nothing else is lost.
      std::fprintf(stderr, "cmbench: %s: line %zu is not JSON; its trial will run again\n", path.c_str(), line_number);
      contents.complete_bytes = start;
      continue;
    }
    if (j.is_discarded() || !j.is_object()) throw bad("not a JSON object");
    try {
      if (line_number == 1) {
        if (!j.contains("cmbench_journal")) throw bad("not a cmbench journal (no cmbench_journal in its first line)");
        if (j.at("cmbench_journal") != journal_format) {
          throw bad("journal format " + j.at("cmbench_journal").dump() + ", this cmbench reads " +
                    std::to_string(journal_format));
        }
        journal_header& h = contents.header;
        h.args = j.at("args").get<std::vector<std::string>>();
        h.command_line = j.at("command_line").get<std::string>();
        h.out = j.at("out").get<std::string>();
        h.repetitions = j.at("repetitions").get<int>();
        h.warmup = j.at("warmup").get<int>();
        h.runs = j.at("runs");
        if (!h.runs.is_array()) throw bad("runs is not a list");
      } else {
        journal_entry e;
        e.run = j.at("run").get<std::size_t>();
        e.round = j.at("round").get<int>();
        e.request = j.at("request").get<trial_request>();
        e.result = j.at("result").get<trial_result>();
        const auto& h = contents.header;
        if (e.run >= h.runs.size()) throw bad("run " + std::to_string(e.run) + " is not one of the planned runs");
        if (e.round < 0 || e.round >= h.warmup + h.repetitions) {
          throw bad("round " + std::to_string(e.round) + " is out of range");
        }
        contents.entries.push_back(std::move(e));
      }
    } catch (const nlohmann::json::exception& e) {
      throw bad(std::string("unexpected content: ") + e.what());
    }
    contents.complete_bytes = start;
  }
  if (line_number == 0) throw std::invalid_argument("--resume " + path + ": empty, or not a cmbench journal");
  return contents;
}

nlohmann::json planned_runs(const std::vector<run_record>& runs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : runs) {
    list.push_back({{"workload", r.workload->name}, {"model", r.model->name}, {"params", r.params}});
  }
  return list;
}

finished_trials take_journal(const journal_contents& journal, const std::string& path,
                             const std::vector<run_record>& runs, int repetitions, int warmup) {
  if (journal.header.runs != planned_runs(runs) || journal.header.repetitions != repetitions ||
      journal.header.warmup != warmup) {
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
    finished.emplace(std::make_pair(e.run, e.round), e.result);
  }
  return finished;
}

journal_writer::journal_writer(std::string path, journal_header header)
    : path_(std::move(path)), header_(std::move(header)) {}

bool journal_writer::create() {
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return false;
  const nlohmann::json first = {{"cmbench_journal", journal_format}, {"args", header_.args},
                                {"command_line", header_.command_line}, {"out", header_.out},
                                {"repetitions", header_.repetitions}, {"warmup", header_.warmup},
                                {"runs", header_.runs}};
  if (write_line(first.dump())) return true;
  const int error = errno;
  close(fd_);
  fd_ = -1;
  unlink(path_.c_str());
  errno = error;
  return false;
}

journal_writer::journal_writer(const std::string& path, std::size_t complete_bytes) : path_(path) {
  fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  // A line cut by a kill would run into the next one: the journal ends at its last whole line.
  if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(complete_bytes)) != 0) {
    const std::string reason = std::strerror(errno);
    if (fd_ >= 0) close(fd_);
    throw std::invalid_argument("--resume " + path + ": cannot append to it: " + reason);
  }
}

journal_writer::~journal_writer() {
  if (fd_ >= 0) close(fd_);
}

bool journal_writer::write_line(const std::string& line) {
  // One write of the whole line: a kill leaves it whole or cut, and a cut last line is dropped.
  // A line cut by a full disk is taken back, so a later line never runs into it.
  const std::string text = line + "\n";
  const off_t before = lseek(fd_, 0, SEEK_END);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n == 0 ? ENOSPC : errno;
      if (before >= 0 && ftruncate(fd_, before) != 0) {
        // Could not take it back: the reader skips a line that is not JSON (its trial runs again).
      }
      errno = error;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void journal_writer::append(const journal_entry& entry, const std::string& run_name, int repetition) {
  auto warn = [&] {
    if (failed_) return;
    failed_ = true;
    std::fprintf(stderr, "cmbench: cannot write the journal %s: %s; the results stay in memory and go to the "
                         "report, but an interrupt now would lose the trials missing from the journal\n",
                 path_.c_str(), std::strerror(errno));
  };
  if (fd_ < 0 && !create()) return warn();
  const nlohmann::json line = {{"run", entry.run},
                               {"round", entry.round},
                               {"run_name", run_name},
                               {"repetition", repetition < 0 ? nlohmann::json(nullptr) : nlohmann::json(repetition)},
                               {"warmup", repetition < 0},
                               {"request", entry.request},
                               {"result", entry.result}};
  if (!write_line(line.dump())) warn();
}

void journal_writer::remove() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
  unlink(path_.c_str());
}

}  // namespace cmbench
