#include "harness/output.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
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
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) fs::remove(entry.path(), ec);
  }
}

}  // namespace

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

report_written write_report(const std::string& out, const std::string& text) {
  report_written written;
  try {
    write_atomically(out, text);
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
      write_atomically(candidate.string(), text);
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
