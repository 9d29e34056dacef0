// Why a thread could not be created: every limit that caps threads, read at the moment of the
// failure, and how close this process or the system is to each, so a row names the limit it hit.
// Shared by every model that creates OS threads (threads/spawn, threads/pool, threads/tbb,
// coroutines/asio-mt). Reads /proc and allocates: call it in the thread that saw the failure,
// while the threads already created are still alive (they are what the counts count).
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "models/system_limits.hpp"

namespace cmbench::detail {

inline std::optional<std::uint64_t> read_number(const std::string& path) {
  const std::int64_t n = read_number_file(path.c_str());
  return n < 0 ? std::nullopt : std::optional<std::uint64_t>(n);
}

inline std::optional<std::uint64_t> known(std::int64_t n) {
  return n < 0 ? std::nullopt : std::optional<std::uint64_t>(n);
}

// The value of a "Key:\tvalue" line of /proc/self/status.
inline std::optional<std::uint64_t> status_field(std::string_view key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == ':') {
      return std::stoull(line.substr(key.size() + 1));
    }
  }
  return std::nullopt;
}

inline std::uint64_t lines_in(const char* path) {
  std::ifstream in(path);
  std::uint64_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

// The pids cgroup directory of this process (cgroup v2 "0::/path" or v1 "N:pids:/path").
inline std::optional<std::string> pids_cgroup_dir() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("0::")) return "/sys/fs/cgroup" + line.substr(3);
    const auto pids = line.find(":pids:");
    if (pids != std::string::npos) return "/sys/fs/cgroup/pids" + line.substr(pids + 6);
  }
  return std::nullopt;
}

// Threads of every process whose real user is this process's (what RLIMIT_NPROC counts), from
// /proc/PID/status; nullopt if /proc cannot be read.
inline std::optional<std::uint64_t> user_threads() {
  std::error_code error;
  std::filesystem::directory_iterator it("/proc", error);
  if (error) return std::nullopt;
  const std::string uid = std::to_string(::getuid());
  std::uint64_t threads = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) break;
    const std::filesystem::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream in(entry.path() / "status");
    bool mine = false;
    std::uint64_t count = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("Uid:")) {
        std::istringstream fields(line.substr(4));
        std::string real;
        fields >> real;
        mine = real == uid;
      } else if (line.starts_with("Threads:")) {
        count = std::strtoull(line.c_str() + 8, nullptr, 10);
      }
    }
    if (mine) threads += count;
  }
  return threads;
}

struct limit_reading {
  std::string name;
  std::optional<std::uint64_t> value;
  std::optional<std::uint64_t> used;
  std::string note;  // what `used` counts, or why there is no count
};

// Why a thread could not be created (`reason`: what the failed call said), with every limit that
// caps threads and how close the process or the system is to it, so the reader sees which one was
// hit: "thread creation failed with 39 threads alive: Resource temporarily unavailable (...,
// RLIMIT_NPROC=40 (39 threads in this process), ...); likely limit: RLIMIT_NPROC".
inline std::string describe_thread_failure(const std::string& reason) {
  const auto threads_alive = status_field("Threads");
  std::string message = "thread creation failed with " +
                        (threads_alive ? with_thousands(*threads_alive) : std::string("?")) +
                        " threads alive: " + reason;

  const kernel_limits kernel = read_kernel_limits();
  const auto tasks = known(kernel.tasks);
  const auto maps = lines_in("/proc/self/maps");
  std::vector<limit_reading> limits = {
      {"kernel.threads-max", known(kernel.threads_max), tasks, "tasks on the system"},
      {"kernel.pid_max", known(kernel.pid_max), tasks, "tasks on the system"},
      {"vm.max_map_count", known(kernel.max_map_count), maps,
       "maps in this process; a thread's stack takes 2 until it is joined"},
  };
  // RLIMIT_NPROC counts all of this user's threads, in every process (this process's are a lower
  // bound, used if /proc cannot be scanned). Root is exempt from it.
  rlimit nproc{};
  if (getrlimit(RLIMIT_NPROC, &nproc) == 0) {
    const bool root = geteuid() == 0;
    const auto user = root || nproc.rlim_cur == RLIM_INFINITY ? std::nullopt : user_threads();
    limits.push_back({"RLIMIT_NPROC",
                      nproc.rlim_cur == RLIM_INFINITY ? std::nullopt
                                                      : std::optional<std::uint64_t>(nproc.rlim_cur),
                      root ? std::nullopt : user ? user : threads_alive,
                      root   ? std::string("root is exempt")
                      : user ? "threads of this user, " + (threads_alive ? with_thousands(*threads_alive) : std::string("?")) +
                                   " in this process"
                             : std::string("threads in this process")});
  }
  // Address space: each thread reserves its whole stack (RLIMIT_STACK, 8 MiB by default).
  rlimit address_space{};
  if (getrlimit(RLIMIT_AS, &address_space) == 0 && address_space.rlim_cur != RLIM_INFINITY) {
    limits.push_back({"RLIMIT_AS (KiB)", address_space.rlim_cur / 1024, status_field("VmSize"),
                      "KiB of address space in this process"});
  }
  if (const auto dir = pids_cgroup_dir()) {
    if (const auto max = read_number(*dir + "/pids.max")) {
      limits.push_back({"cgroup pids.max", max, read_number(*dir + "/pids.current"), "in the cgroup"});
    }
  }

  // The limit closest to full is the likely culprit.
  const limit_reading* closest = nullptr;
  double closest_ratio = 0.0;
  std::string details;
  for (const auto& limit : limits) {
    if (!details.empty()) details += ", ";
    details += limit.name + "=" + (limit.value ? std::to_string(*limit.value) : "unlimited");
    if (limit.used) {
      details += " (" + with_thousands(*limit.used) + " " + limit.note + ")";
    } else if (!limit.note.empty()) {
      details += " (" + limit.note + ")";
    }
    if (limit.value && limit.used && *limit.value > 0) {
      const double ratio = static_cast<double>(*limit.used) / static_cast<double>(*limit.value);
      if (ratio > closest_ratio) {
        closest_ratio = ratio;
        closest = &limit;
      }
    }
  }
  message += " (" + details + ")";
  if (closest != nullptr && closest_ratio > 0.95) message += "; likely limit: " + closest->name;
  return message;
}

// What a failed std::thread (std::system_error) or pthread_create (an errno value) said.
inline std::string thread_failure_reason(const std::exception& error) {
  if (const auto* system = dynamic_cast<const std::system_error*>(&error)) {
    return system->code().message();
  }
  return error.what();
}

inline std::string describe_thread_failure(const std::exception& error) {
  return describe_thread_failure(thread_failure_reason(error));
}

// describe_thread_failure reads /proc; if even that fails, keep the original error.
inline std::string describe_thread_failure_safely(const std::string& reason) noexcept {
  try {
    return describe_thread_failure(reason);
  } catch (...) {
    try {
      return "thread creation failed: " + reason;
    } catch (...) {
      return {};
    }
  }
}

inline std::string describe_thread_failure_safely(const std::exception& error) noexcept {
  try {
    return describe_thread_failure_safely(thread_failure_reason(error));
  } catch (...) {
    return {};
  }
}

}  // namespace cmbench::detail
