// Where a report goes, one rule each: --out is checked before any trial, an existing report is
// never replaced without --force, and one run at a time writes an --out (OUT.lock).
#pragma once

#include <string>

namespace cmbench {

// TMPDIR when set and not empty, else /tmp: where trial directories go.
std::string temp_root();

// The lock of the run writing a report, beside it.
std::string lock_path_of(const std::string& out);

// Holds OUT.lock (flock) while this run writes OUT. A second run on the same OUT is refused with
// std::invalid_argument (exit 2) naming the run that holds it. The lock file goes with the lock.
class out_lock {
 public:
  explicit out_lock(const std::string& out);
  ~out_lock() { release(); }
  out_lock(const out_lock&) = delete;
  out_lock& operator=(const out_lock&) = delete;
  void release();

 private:
  std::string path_;
  int fd_ = -1;
};

// Refuses (std::invalid_argument, exit 2) to replace an existing report at `out` unless `force`.
void check_replaceable(const std::string& out, bool force);

}  // namespace cmbench
