// Where this process sits in a distributed run: its rank and the run's size, the launcher that
// started it, and the coordinator's address. Pure functions over an environment map, so tests
// can feed any environment; `current_environment()` reads the real one.
//
// Rank and size come from, in order (each field from the first source that has it):
//   1. explicit values (--rank/--size flags, passed in `topology_flags`);
//   2. Open MPI:  OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE       (launcher "openmpi");
//   3. PMIx:      PMIX_RANK; PMIx exports no size variable (a PMIx client asks the server for
//                 PMIX_JOB_SIZE), so the size is OMPI_COMM_WORLD_SIZE, else Slurm's
//                 SLURM_STEP_NUM_TASKS / SLURM_NTASKS, else it must be given (--size)
//                                                                   (launcher "pmix");
//   4. PMI:       PMI_RANK / PMI_SIZE (MPICH's Hydra, Slurm's PMI-2) (launcher "pmi");
//   5. Slurm:     SLURM_PROCID / SLURM_NTASKS (SLURM_STEP_NUM_TASKS if absent) (launcher "slurm");
//   6. none of them: rank 0 of 1                                      (launcher "none").
// The launcher is the first of 2-5 whose rank variable is set, whether or not flags override.
//
// All ranks on one host, decided from the first of these that is set: size == 1; Open MPI's
// OMPI_COMM_WORLD_LOCAL_SIZE == size; Hydra's MPI_LOCALNRANKS == size; Slurm's
// SLURM_STEP_NUM_NODES (else SLURM_JOB_NUM_NODES, else SLURM_NNODES) == 1. With no launcher
// the run is embedded (one host). Otherwise it is unknown, and a coordinator address must be given.
//
// The coordinator: --coordinator HOST:PORT, else CMBENCH_COORDINATOR, else loopback when all
// ranks are on one host (port 0 when embedded: the coordinator picks one and hands it to the
// nodes it starts; default_coordinator_port under a launcher, where every rank must agree on it
// without talking first); else an error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cmbench {

using environment = std::map<std::string, std::string, std::less<>>;

// The process's environment (environ) as a map.
environment current_environment();

enum class launcher { none, openmpi, pmix, pmi, slurm };
std::string_view launcher_name(launcher l);  // "none", "openmpi", "pmix", "pmi", "slurm"

// The coordinator's port when all ranks are on one host under a launcher and none was given.
inline constexpr std::uint16_t default_coordinator_port = 47381;
inline constexpr const char* coordinator_env = "CMBENCH_COORDINATOR";
// Sizes above this are refused as malformed (no launcher starts a million ranks of cmbench).
inline constexpr long max_size = 1 << 20;

struct endpoint {
  std::string host;        // a name or an address, IPv6 without brackets
  std::uint16_t port = 0;  // 0: not chosen yet (embedded runs only)
  std::string text() const;  // "host:port", "[::1]:port"
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

// "HOST:PORT" or "[IPV6]:PORT", port 1..65535. Throws std::invalid_argument naming `source`.
endpoint parse_endpoint(std::string_view text, std::string_view source);

struct topology_flags {
  std::optional<long> rank;
  std::optional<long> size;
  std::optional<std::string> coordinator;  // HOST:PORT
};

struct topology {
  long rank = 0;
  long size = 1;
  launcher launched_by = launcher::none;
  std::string rank_source;  // "--rank", "OMPI_COMM_WORLD_RANK", ..., "default"
  std::string size_source;
  std::optional<bool> single_host;  // unknown when no variable says
  std::string single_host_source;   // "OMPI_COMM_WORLD_LOCAL_SIZE=3 of 3", "SLURM_NNODES=2", ...
  endpoint coordinator;
  std::string coordinator_source;   // "--coordinator", "CMBENCH_COORDINATOR", "loopback (...)"
  bool is_coordinator() const { return rank == 0; }
};

// Throws std::invalid_argument with a message naming the variable or flag for a malformed
// number (not a plain non-negative decimal), size < 1 or > max_size, rank >= size, a launcher's
// rank without its size, or no coordinator address when the ranks may span hosts.
topology detect_topology(const environment& env, const topology_flags& flags = {});

}  // namespace cmbench
