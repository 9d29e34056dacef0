// Interrupting cmbench (Ctrl-C, SIGTERM, SIGHUP) stops the child it is running now, a trial or the
// floors, with everything that child started, and leaves no temporary files behind. Ctrl-C reaches
// only the foreground process group, and each child has its own, so the handler kills it.
#pragma once

#include <sys/types.h>

#include <string>

namespace cmbench::interrupts {

// Installs the handlers once (a signal that was ignored, as under nohup, stays ignored).
void install();
// The process group of the child running now; 0: none.
void set_group(pid_t group);
// Its temporary result file and directory, removed on an interrupt; empty: none.
void set_files(const std::string& result_path, const std::string& dir);
// A file of the suite (its lock) removed when an interrupt ends cmbench; empty: none.
void set_lock_file(const std::string& path);

}  // namespace cmbench::interrupts
