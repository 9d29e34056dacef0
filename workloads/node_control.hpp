// The control port of a working node (workload_entry::node_prepare): both ends of one short
// exchange between a trial's coordinator and each node's serving process, blocking sockets, no
// model involved.
//
// A serving process of such a workload listens on a second port, its control port, beside the
// one its serving model listens on. The coordinator connects to every node's control port, does
// the wire handshake (role coordinator, the run's token), sends each a `control` frame
// {"op": "go", "index": i, "peers": ["host:port", ...], "remaining_ms": n} and reads back
// {"op": "done", "checksum": c, "figures": {...}, "error": ""}. Every node is told before any
// answer is read, so the nodes start together.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "models/model.hpp"
#include "models/wire/io.hpp"
#include "workloads/workload.hpp"

namespace cmbench {

// The node's end: accepts on `listen_fd` (non-blocking) until `stop_fd` is readable; runs `work`
// on `worker` once, for the first well-formed go of this node's index, and answers done. Refused
// or malformed control connections are logged with `log` and never stop it.
void serve_node_control(int listen_fd, int stop_fd, const std::string& token, std::size_t index, node_work& work,
                        model_instance& worker, void (*log)(const void* context, std::string_view line),
                        const void* log_context);

// The coordinator's end: connected to node i's control port controls[i] (with the handshake) when
// constructed, before the measured region; run() tells every node to go with `peers` (the nodes'
// serving addresses) and returns what each answered, in node order. Both throw std::runtime_error
// naming the node that could not be reached, answered badly, failed, or did not answer by
// `deadline`.
class working_nodes {
 public:
  working_nodes(std::vector<node_address> controls, std::vector<node_address> peers, std::string token,
                std::chrono::steady_clock::time_point deadline);
  std::vector<node_done> run();

 private:
  std::vector<node_address> controls_;
  std::vector<node_address> peers_;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<wire::unique_fd> fds_;
};

}  // namespace cmbench
