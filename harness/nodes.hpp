// The nodes of a distributed run: the node daemon (`cmbench node`, and every rank but 0 under a
// launcher) and the coordinator's handle on all of them.
//
// A node daemon lives for the whole suite. It connects to the coordinator's control listener,
// handshakes with the run's token (role node), says where it is (host, CPUs), then obeys: for
// each trial of a distributed workload, `serve` forks a fresh serving process (its own process
// group) that listens on a port the OS picks and runs the model's serve job; `stop` ends it and
// answers with what it used (CPU time over the trial, peak memory, processes and threads, what it
// counted on the wire); `exit` (or the coordinator's connection closing) ends the daemon. Control messages
// are `control` frames (models/wire/frame.hpp) holding one JSON object each; every order has a
// number its answer repeats, so an answer that came too late is never taken for the next one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/topology.hpp"
#include "models/remote.hpp"
#include "models/wire/io.hpp"
#include "workloads/workload.hpp"

namespace cmbench {

struct node_options {
  endpoint coordinator;
  std::string token;
  std::string listen_host;  // where serving processes listen; empty: loopback (127.0.0.1)
  long rank = 0;            // for log lines
  std::chrono::milliseconds connect_timeout{60'000};  // ranks start at once: the coordinator may be late
};

// The node daemon. Returns the exit status: 0 when told to exit or the coordinator went away
// after a clean start, 1 when it could not reach the coordinator at all.
int run_node(const node_options& options);

// A node as the coordinator knows it.
struct node_info {
  std::string host;          // where its serving processes listen (an address the coordinator reaches)
  unsigned cpus = 0;         // CPUs its serving processes may use
  std::string hostname;      // its machine's name: nodes on one machine share its CPUs
  long pid = 0;
  long rank = 0;
};

// What one node's serving process used during one trial.
struct node_trial_stats {
  // user + system of the serving process's group (every process and thread of it, and what it
  // reaped) from its model's construction to the trial's end: setup and teardown excluded, as
  // for the coordinator
  double cpu_seconds = 0;
  std::int64_t peak_rss_bytes = 0;
  std::int64_t peak_pss_bytes = 0;
  std::int64_t peak_processes = 0;
  std::int64_t peak_threads = 0;
  std::uint64_t connections = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t requests = 0;
  std::uint64_t refused = 0;
  std::uint64_t peak_in_flight = 0;
  std::string failure;             // the serving process crashed or had to be killed; empty: it ended cleanly
};

class node_pool {
 public:
  // Starts `count` node daemons on this machine (`self_exe node`), serving on 127.0.0.1, and
  // waits until each has connected. The token goes to them in their environment.
  static node_pool embedded(std::size_t count, const std::string& self_exe, const std::string& token);
  // Listens on `listen_on` (rank 0 under a launcher) until `count` daemons have connected.
  static node_pool launched(const endpoint& listen_on, std::size_t count, const std::string& token,
                            std::chrono::milliseconds timeout);

  node_pool(node_pool&&) noexcept;
  node_pool& operator=(node_pool&&) noexcept;
  ~node_pool();  // tells every daemon to exit; reaps the embedded ones

  std::size_t size() const { return nodes_.size(); }
  const std::vector<node_info>& nodes() const { return nodes_; }
  bool is_embedded() const { return !pids_.empty(); }
  // The CPUs of the first `count` nodes' machines, each machine counted once.
  unsigned cpus_of_first(std::size_t count) const;

  // Starts a serving process on the first `count` nodes, serving `workload`'s tasks on `model`
  // with `params`; returns their addresses. Throws std::runtime_error naming the node that could not.
  std::vector<node_address> start_serving(std::size_t count, const std::string& workload, const std::string& model,
                                          const param_values& params);
  // The control ports of the serving processes start_serving started, for a workload whose nodes
  // work (workload_entry::node_prepare), in node order; empty otherwise.
  const std::vector<node_address>& control_ports() const { return control_ports_; }
  // Stops the serving processes start_serving started; what each used. A node that does not
  // answer within a few seconds is reported as failed, never waited for longer.
  std::vector<node_trial_stats> stop_serving();

 private:
  node_pool() = default;
  void accept_nodes(std::size_t count, std::chrono::milliseconds timeout);
  std::string who(std::size_t node) const;  // "node 1 (rank 1, 127.0.0.1)"
  void shut_down() noexcept;

  wire::listener listener_;
  std::string token_;
  std::vector<node_info> nodes_;
  std::vector<wire::unique_fd> control_;
  std::vector<pid_t> pids_;  // embedded daemons
  std::size_t serving_ = 0;  // nodes with a serving process now
  std::vector<node_address> control_ports_;
  std::uint64_t orders_ = 0; // the last order's number: every answer carries its order's
};

// The figures a trial's row gets from its nodes' stats: summed, and per node.
std::map<std::string, double> node_figures(const std::vector<node_trial_stats>& stats, unsigned node_cpus);

}  // namespace cmbench
