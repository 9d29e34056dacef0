#include "harness/topology.hpp"

#include <unistd.h>

#include <charconv>
#include <stdexcept>

extern char** environ;

namespace cmbench {

namespace {

std::optional<std::string> get(const environment& env, std::string_view name) {
  if (auto it = env.find(name); it != env.end()) return it->second;
  return std::nullopt;
}

// A plain non-negative decimal: no sign, no spaces, no suffix.
long parse_count(std::string_view text, std::string_view source) {
  long v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || text.front() == '-' || ec != std::errc() || p != end || v < 0 || v > 100 * max_size)
    throw std::invalid_argument(std::string(source) + "='" + std::string(text) +
                                "' is not a non-negative whole number");
  return v;
}

struct found {
  long value;
  std::string source;
};

std::optional<found> first_of(const environment& env, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names)
    if (auto v = get(env, n)) return found{parse_count(*v, n), std::string(n)};
  return std::nullopt;
}

}  // namespace

environment current_environment() {
  environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::string_view launcher_name(launcher l) {
  switch (l) {
    case launcher::none: return "none";
    case launcher::openmpi: return "openmpi";
    case launcher::pmix: return "pmix";
    case launcher::pmi: return "pmi";
    case launcher::slurm: return "slurm";
  }
  return "unknown";
}

std::string endpoint::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

endpoint parse_endpoint(std::string_view text, std::string_view source) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(std::string(source) + "='" + std::string(text) + "': " + why +
                                 " (expected HOST:PORT or [IPV6]:PORT)");
  };
  endpoint e;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw bad("unclosed '[' or no ':PORT' after ']'");
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw bad("no port");
    e.host = std::string(text.substr(0, colon));
    if (e.host.find(':') != std::string::npos) throw bad("an IPv6 address needs brackets");
    port = text.substr(colon + 1);
  }
  if (e.host.empty()) throw bad("empty host");
  if (e.host.find_first_of(" \t\n[]/") != std::string::npos) throw bad("invalid character in host");
  unsigned long p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535)
    throw bad("port must be 1..65535");
  e.port = static_cast<std::uint16_t>(p);
  return e;
}

topology detect_topology(const environment& env, const topology_flags& flags) {
  topology t;

  // The launcher, and the rank and size it gives.
  std::optional<found> rank, size;
  if (auto r = get(env, "OMPI_COMM_WORLD_RANK")) {
    t.launched_by = launcher::openmpi;
    rank = found{parse_count(*r, "OMPI_COMM_WORLD_RANK"), "OMPI_COMM_WORLD_RANK"};
    size = first_of(env, {"OMPI_COMM_WORLD_SIZE"});
  } else if (auto pr = get(env, "PMIX_RANK")) {
    t.launched_by = launcher::pmix;
    rank = found{parse_count(*pr, "PMIX_RANK"), "PMIX_RANK"};
    size = first_of(env, {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"});
  } else if (auto r1 = get(env, "PMI_RANK")) {
    t.launched_by = launcher::pmi;
    rank = found{parse_count(*r1, "PMI_RANK"), "PMI_RANK"};
    size = first_of(env, {"PMI_SIZE"});
  } else if (auto sr = get(env, "SLURM_PROCID")) {
    t.launched_by = launcher::slurm;
    rank = found{parse_count(*sr, "SLURM_PROCID"), "SLURM_PROCID"};
    size = first_of(env, {"SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"});
  }

  // Explicit values first, field by field.
  if (flags.rank) {
    if (*flags.rank < 0) throw std::invalid_argument("--rank " + std::to_string(*flags.rank) + " is negative");
    rank = found{*flags.rank, "--rank"};
  }
  if (flags.size) size = found{*flags.size, "--size"};

  if (rank && !size) {
    if (t.launched_by == launcher::pmix)
      throw std::invalid_argument("PMIX_RANK is set but no size is (PMIx exports none; looked for "
                                  "OMPI_COMM_WORLD_SIZE, SLURM_STEP_NUM_TASKS, SLURM_NTASKS): give --size");
    throw std::invalid_argument(rank->source + " is set but no size is: " +
                                (t.launched_by == launcher::none ? std::string("give --size as well")
                                                                 : "the launcher's size variable is missing"));
  }
  if (size && !rank) throw std::invalid_argument(size->source + " is given but no rank is: give --rank as well");
  if (rank) {
    t.rank = rank->value;
    t.rank_source = rank->source;
    t.size = size->value;
    t.size_source = size->source;
  } else {
    t.rank_source = t.size_source = "default";
  }
  if (t.size < 1 || t.size > max_size)
    throw std::invalid_argument(t.size_source + "=" + std::to_string(t.size) + ": size must be 1.." +
                                std::to_string(max_size));
  if (t.rank >= t.size)
    throw std::invalid_argument(t.rank_source + "=" + std::to_string(t.rank) + " is not below " + t.size_source +
                                "=" + std::to_string(t.size));

  // All ranks on one host?
  if (t.launched_by == launcher::none && !flags.rank) {
    t.single_host = true;
    t.single_host_source = "no launcher (embedded)";
  } else if (t.size == 1) {
    t.single_host = true;
    t.single_host_source = "size 1";
  } else if (auto local = first_of(env, {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})) {
    t.single_host = local->value == t.size;
    t.single_host_source = local->source + "=" + std::to_string(local->value) + " of " + std::to_string(t.size);
  } else if (auto nodes = first_of(env, {"SLURM_STEP_NUM_NODES", "SLURM_JOB_NUM_NODES", "SLURM_NNODES"})) {
    if (nodes->value < 1) throw std::invalid_argument(nodes->source + "=0: a job has at least one node");
    t.single_host = nodes->value == 1;
    t.single_host_source = nodes->source + "=" + std::to_string(nodes->value);
  }

  // The coordinator.
  if (flags.coordinator) {
    t.coordinator = parse_endpoint(*flags.coordinator, "--coordinator");
    t.coordinator_source = "--coordinator";
  } else if (auto c = get(env, coordinator_env)) {
    t.coordinator = parse_endpoint(*c, coordinator_env);
    t.coordinator_source = coordinator_env;
  } else if (t.single_host.value_or(false)) {
    const bool embedded = t.launched_by == launcher::none && !flags.rank;
    t.coordinator = {"127.0.0.1", embedded ? std::uint16_t{0} : default_coordinator_port};
    t.coordinator_source = "loopback (" + t.single_host_source + ")";
  } else {
    throw std::invalid_argument(
        std::string(t.single_host ? "the ranks span several hosts (" + t.single_host_source + ")"
                                  : "cannot tell whether the ranks share one host (launcher " +
                                        std::string(launcher_name(t.launched_by)) + " sets no local size)") +
        ": give --coordinator HOST:PORT or " + coordinator_env + " (rank 0's address, the same on every rank)");
  }
  return t;
}

}  // namespace cmbench
