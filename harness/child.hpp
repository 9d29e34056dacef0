// Work the harness runs in a forked child of its own (the reference checksums, the floors): the
// child is in its own process group, so an interrupt or a timeout kills whatever it started too,
// and it dies with cmbench if cmbench is killed outright.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace cmbench {

struct child_output {
  std::string text;         // what the child wrote
  bool started = false;     // false: pipe or fork failed (`error` says which)
  bool timed_out = false;   // the deadline passed before the child closed its end
  int status = 0;           // waitpid status
  std::string error;
};

// Forks a child that runs `work` and writes what it returns to the parent, then waits for it up to
// `timeout`; the child's group is killed and reaped either way.
child_output run_in_child_group(const std::function<std::string()>& work, std::chrono::milliseconds timeout);

}  // namespace cmbench
