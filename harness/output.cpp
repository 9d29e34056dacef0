#include "harness/output.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/interrupts.hpp"
#include "harness/report.hpp"

namespace cmbench {
namespace {

namespace fs = std::filesystem;

// A report whose context says it is partial: what an interrupted run leaves for --resume.
bool is_partial_report(const std::string& path) {
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("context") || !j["context"].is_object()) return false;
  const auto& context = j["context"];
  return context.contains("partial") && context["partial"] == true;
}

// OUT.tmp.PID of a run killed outright while it wrote the report (no handler runs on SIGKILL):
// removed by the next run that holds OUT's lock, once no process PID is alive.
void remove_stale_temporaries(const std::string& out) {
  const fs::path target(out);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (process_is_gone(pid)) fs::remove(entry.path(), ec);
  }
}

// A test hook: with CMBENCH_PAUSE_AT=<point>, cmbench stops at that point for up to 30 s (less if
// interrupted), so a test can signal it there: "report-rename" is between the report's temporary
// file being complete and its rename to --out.
void pause_if_asked(std::string_view point, const std::string& detail) {
  const char* asked = std::getenv("CMBENCH_PAUSE_AT");
  if (asked == nullptr || point != asked) return;
  std::fprintf(stderr, "cmbench: paused at %s (%s)\n", asked, detail.c_str());
  for (int i = 0; i < 3000 && interrupts::requested() == 0; ++i) usleep(10'000);
}

}  // namespace

bool process_is_gone(long pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

std::string temp_root() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && dir[0] != '\0' ? dir : "/tmp";
}

std::string journal_path_of(const std::string& out) { return out + ".journal"; }
std::string lock_path_of(const std::string& out) { return out + ".lock"; }

out_lock::out_lock(const std::string& out) : path_(lock_path_of(out)) {
  // A run that ends removes its lock file while holding the lock; one opened just before that
  // removal locks a file no longer at the path: lock again what is there now.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw std::invalid_argument("--out " + out + ": cannot create the lock " + path_ + ": " + std::strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      char holder[32] = {};
      const ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
      close(fd);
      if (error == EWOULDBLOCK) {
        const std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string();
        throw std::invalid_argument("--out " + out + " is being written by another cmbench run" +
                                    (pid.empty() ? "" : " (pid " + pid + ")") + ", which holds " + path_ +
                                    ": wait for it to end, or choose another --out");
      }
      throw std::invalid_argument("--out " + out + ": cannot lock " + path_ + ": " + std::strerror(error));
    }
    struct stat held {}, at_path {};
    if (fstat(fd, &held) == 0 && stat(path_.c_str(), &at_path) == 0 && held.st_dev == at_path.st_dev &&
        held.st_ino == at_path.st_ino) {
      fd_ = fd;
      break;
    }
    close(fd);
  }
  if (fd_ < 0) throw std::invalid_argument("--out " + out + ": cannot lock " + path_ + ": it keeps being replaced");
  remove_stale_temporaries(out);
  const std::string pid = std::to_string(getpid());
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid in it; only a refused run's message would miss it.
  }
  interrupts::set_lock_file(path_);
}

void out_lock::release() {
  if (fd_ < 0) return;
  interrupts::set_lock_file({});
  unlink(path_.c_str());  // still holding the lock: no other run can be between open and flock on it
  close(fd_);
  fd_ = -1;
}

void check_replaceable(const std::string& out, bool force, bool resuming) {
  std::error_code ec;
  const std::string journal = journal_path_of(out);
  if (resuming) {
    if (fs::exists(out, ec) && !is_partial_report(out)) {
      throw std::invalid_argument("--out " + out + " exists and is not the partial report of the run being resumed: "
                                  "move it away, then resume again");
    }
    return;
  }
  if (force) return;
  if (fs::exists(out, ec)) {
    if (is_partial_report(out) && fs::exists(journal, ec)) {
      throw std::invalid_argument("--out " + out + " is the partial report of an interrupted run: finish it with "
                                  "`cmbench run --resume " + journal + "`, or pass --force to start again");
    }
    throw std::invalid_argument("--out " + out + " already exists: cmbench never replaces a report unless told; "
                                "pass --force to replace it, or choose another --out");
  }
  if (fs::exists(journal, ec)) {
    throw std::invalid_argument(journal + " holds the finished trials of an interrupted run: finish it with "
                                "`cmbench run --resume " + journal + "`, or pass --force to start again");
  }
}

std::string temp_path_of(const std::string& path, pid_t writer) { return path + ".tmp." + std::to_string(writer); }

void write_atomically(const std::string& path, const std::string& text, written_file kind) {
  const bool report = kind == written_file::report;
  const std::string temp = temp_path_of(path, getpid());
  // A second interrupt while the report is written ends cmbench at once: the handler removes it.
  if (report) interrupts::set_report_temp(temp);
  struct forget_temp {
    bool report;
    ~forget_temp() {
      if (report) interrupts::set_report_temp({});
    }
  } forget{report};
  auto failed = [&](const std::string& reason) {
    unlink(temp.c_str());
    return std::runtime_error(std::string("cannot write ") + (report ? "report " : "the trial's result ") + path +
                              ": " + reason);
  };
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw failed(std::strerror(errno));
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = std::strerror(errno);
      close(fd);
      throw failed(reason);
    }
    done += static_cast<std::size_t>(n);
  }
  const int synced = report ? fsync(fd) : 0;
  const int sync_error = errno;
  const int closed = close(fd);  // even when fsync failed: no descriptor is left open
  if (synced != 0 || closed != 0) throw failed(std::strerror(synced != 0 ? sync_error : errno));
  if (report) pause_if_asked("report-rename", temp);
  if (std::rename(temp.c_str(), path.c_str()) != 0) throw failed(std::strerror(errno));
}

report_written write_report(const std::string& out, const std::string& text) {
  report_written written;
  try {
    write_atomically(out, text, written_file::report);
    written.path = out;
    return written;
  } catch (const std::exception& e) {
    written.failure = e.what();
  }
  // report.json -> report.fallback-PID.json, beside it (an immutable or replaced --out), then in the
  // temporary directory (a full disk).
  const fs::path target(out);
  const std::string name = target.stem().string() + ".fallback-" + std::to_string(getpid()) +
                           (target.has_extension() ? target.extension().string() : std::string(".json"));
  std::vector<fs::path> candidates{(target.has_parent_path() ? target.parent_path() : fs::path(".")) / name,
                                   fs::path(temp_root()) / name};
  if (temp_root() != "/tmp") candidates.push_back(fs::path("/tmp") / name);
  std::string tried;
  for (const auto& candidate : candidates) {
    try {
      write_atomically(candidate.string(), text, written_file::report);
      written.path = candidate.string();
      return written;
    } catch (const std::exception& e) {
      tried += std::string("; ") + e.what();
    }
  }
  written.failure += tried;
  return written;
}

}  // namespace cmbench
