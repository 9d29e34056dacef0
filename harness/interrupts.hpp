// Interrupting cmbench (Ctrl-C, SIGTERM, SIGHUP) stops the child it is running now, a trial or the
// floors, with everything that child started, and leaves no temporary files behind. Ctrl-C reaches
// only the foreground process group, and each child has its own, so the handler kills it.
//
// Before the trials, nothing finished can be lost: an interrupt ends cmbench at once. Once the
// suite calls defer(), the handler only kills the running child and records the signal; the suite
// sees requested(), keeps what finished (a partial report) and then calls end(). A second
// interrupt ends cmbench at once whatever the phase.
#pragma once

#include <sys/types.h>

#include <string>

namespace cmbench::interrupts {

// Installs the handlers once (a signal that was ignored, as under nohup, stays ignored).
void install();
// The process group of the child running now; 0: none. A group set after an interrupt was
// recorded is killed at once: the child must not outlive a request to stop.
void set_group(pid_t group);
// Its result file and directory, removed on an interrupt; empty: none.
void set_files(const std::string& result_path, const std::string& dir);
// The temporary file the trial writes its result through (named by the trial's pid, so known
// once it is forked), removed on an interrupt too; empty: none.
void set_result_temp(const std::string& path);
// A file of the suite (its lock) removed when an interrupt ends cmbench at once; empty: none.
void set_lock_file(const std::string& path);
// The report's temporary file while it is written, removed when an interrupt ends cmbench at once
// (a second interrupt while the report is written); empty: none.
void set_report_temp(const std::string& path);

// From now on an interrupt is recorded for the suite to act on, not acted on at once.
void defer();
// The signal that interrupted cmbench since defer(); 0: none.
int requested();
// Ends cmbench by the recorded signal, as if its default action had run (the shell sees it).
[[noreturn]] void end();

// "SIGINT", "SIGTERM", "SIGHUP", else "signal N": how the report and the messages name an interrupt.
std::string signal_name(int sig);

}  // namespace cmbench::interrupts
