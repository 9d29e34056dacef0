// Where a report goes, one rule each: --out is checked before any trial, an existing report is
// never replaced without --force, one run at a time writes an --out (OUT.lock), and a report that
// cannot be written where asked goes to a fallback path that the error names.
#pragma once

#include <sys/types.h>

#include <string>

namespace cmbench {

// TMPDIR when set and not empty, else /tmp: where trial directories and a last-resort report go.
std::string temp_root();

// True once no process has this pid: what a file named after its writer's pid was left by (a
// run killed outright) may then be removed. A live pid of any program keeps it.
bool process_is_gone(long pid);

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

// The files a reader must find whole, and how each is kept so: a report (fsynced before its
// rename, so it survives a power cut too; its temporary registered with the interrupt handler; the
// test hook CMBENCH_PAUSE_AT=report-rename stops before the rename) and a trial's result.json (read
// at once by the harness, then removed with the trial's directory).
enum class written_file { report, trial_result };

// Writes `text` to temp_path_of(path, this process), then renames it over `path`: a reader, or a
// writer killed meanwhile, finds it whole or absent, never half-written. Throws
// std::runtime_error "cannot write <report|the trial's result> <path>: <reason>".
void write_atomically(const std::string& path, const std::string& text, written_file kind);
// PATH.tmp.PID, PID its writer's: one left by a writer killed outright names the process, so the
// next run knows it stale once that process is gone.
std::string temp_path_of(const std::string& path, pid_t writer);

// Writes the report to `out` (atomically, durably); when that fails, to a fallback beside it, then in
// temp_root(). `path`: where it went (empty: nowhere); `failure`: why `out` failed (empty: it did not).
struct report_written {
  std::string path;
  std::string failure;
};
report_written write_report(const std::string& out, const std::string& text);

}  // namespace cmbench
