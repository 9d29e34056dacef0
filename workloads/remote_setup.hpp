// Where a distributed workload's nodes are, for the trial that runs its coordinator: set by the
// trial process from its request (the harness started a serving process on every node for this
// trial) before the workload prepares its run, and read by the workload. The token comes from the
// environment (CMBENCH_TOKEN), never from a command line another user could read.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "models/remote.hpp"

namespace cmbench {

struct remote_setup {
  std::vector<node_address> nodes;  // the serving processes of this trial, one per node
  std::vector<node_address> controls;  // their control ports, for a workload whose nodes work (else empty)
  std::string token;
  // Every remote call ends by this, a little before the harness would kill the trial, so a dead or
  // hung node fails the run with its name rather than a bare timeout.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

inline remote_setup& current_remote_setup() {
  static remote_setup setup;
  return setup;
}

}  // namespace cmbench
