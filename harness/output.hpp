// Where a report goes, one rule each: --out is checked before any trial, an existing report is
// never replaced without --force, one run at a time writes an --out (OUT.lock), and a report that
// cannot be written where asked goes to a fallback path that the error names.
#pragma once

#include <string>

namespace cmbench {

// TMPDIR when set and not empty, else /tmp: where trial directories and a last-resort report go.
std::string temp_root();

// The files beside a report: its journal of finished trials and the lock of the run writing it.
std::string journal_path_of(const std::string& out);
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

// Refuses (std::invalid_argument, exit 2) to replace an existing report at `out`, or to start over
// an interrupted run's journal beside it, unless `force`. A resumed run may replace its own partial
// report (context.partial true) and nothing else.
void check_replaceable(const std::string& out, bool force, bool resuming);

// Writes the report to `out` (atomically); when that fails, to a fallback beside it, then in
// temp_root(). `path`: where it went (empty: nowhere); `failure`: why `out` failed (empty: it did not).
struct report_written {
  std::string path;
  std::string failure;
};
report_written write_report(const std::string& out, const std::string& text);

}  // namespace cmbench
