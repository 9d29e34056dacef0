// The kernel and resource limits that cap how many units a model can create, read in one place
// for the models (to name the limit a run hit) and the harness (to record them in the report).
// Async-signal-safe (open/read/close/getrlimit and plain parsing): a forked child may call it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace cmbench {

// Reads a small /proc or /sys file into `buffer` (NUL-terminated); false if it could not.
inline bool read_small_file(const char* path, char* buffer, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, buffer, size - 1);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  return true;
}

// The decimal number at the start of `s`, or -1.
inline std::int64_t parse_number(const char* s) noexcept {
  if (*s < '0' || *s > '9') return -1;
  std::int64_t value = 0;
  for (; *s >= '0' && *s <= '9'; ++s) value = value * 10 + (*s - '0');
  return value;
}

// The number a one-number file holds (/proc/sys/kernel/pid_max), or -1.
inline std::int64_t read_number_file(const char* path) noexcept {
  char buffer[64];
  return read_small_file(path, buffer, sizeof buffer) ? parse_number(buffer) : -1;
}

// The number after `key` in a "Key:   123 kB" /proc file, or -1.
inline std::int64_t read_proc_field(const char* path, const char* key) noexcept {
  char buffer[8192];
  if (!read_small_file(path, buffer, sizeof buffer)) return -1;
  const char* at = std::strstr(buffer, key);
  if (at == nullptr) return -1;
  at += std::strlen(key);
  while (*at == ' ' || *at == '\t') ++at;
  return parse_number(at);
}

// -1: unknown (or unlimited, for the rlimit).
struct kernel_limits {
  std::int64_t pid_max = -1;        // kernel.pid_max
  std::int64_t threads_max = -1;    // kernel.threads-max
  std::int64_t max_map_count = -1;  // vm.max_map_count (a thread's stack takes two maps)
  std::int64_t nproc = -1;          // RLIMIT_NPROC soft limit
  std::int64_t tasks = -1;          // threads alive on the whole system (/proc/loadavg)
};

inline kernel_limits read_kernel_limits() noexcept {
  kernel_limits limits;
  limits.pid_max = read_number_file("/proc/sys/kernel/pid_max");
  limits.threads_max = read_number_file("/proc/sys/kernel/threads-max");
  limits.max_map_count = read_number_file("/proc/sys/vm/max_map_count");
  // "0.52 0.58 0.59 3/1234 5678": the field after '/' counts every task on the system.
  char buffer[128];
  if (read_small_file("/proc/loadavg", buffer, sizeof buffer)) {
    const char* slash = std::strchr(buffer, '/');
    if (slash != nullptr) limits.tasks = parse_number(slash + 1);
  }
  rlimit nproc{};
  if (::getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY) {
    limits.nproc = static_cast<std::int64_t>(nproc.rlim_cur);
  }
  return limits;
}

// 32700 -> "32,700": counts in a message naming a limit are read by people (not for a child).
inline std::string with_thousands(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Descriptors this process has open now (/proc/self/fd, less the one reading it), or -1.
inline std::int64_t open_descriptor_count() noexcept {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  std::int64_t n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;
}

// EMFILE or ENFILE when `error` carries one of them as an errno value (std::system_category,
// std::generic_category, or Asio's own system category, which standalone Asio defines apart), else 0.
inline int descriptor_errno(const std::exception& error) noexcept {
  const auto* system = dynamic_cast<const std::system_error*>(&error);
  if (system == nullptr) return 0;
  const std::string_view category = system->code().category().name();
  if (category != "system" && category != "generic" && category != "asio.system") return 0;
  const int value = system->code().value();
  return value == EMFILE || value == ENFILE ? value : 0;
}

// True when `error` is the kernel refusing a new descriptor: this process's RLIMIT_NOFILE
// (EMFILE) or the system's fs.file-max (ENFILE).
inline bool out_of_descriptors(const std::exception& error) noexcept {
  return descriptor_errno(error) != 0;
}

// "RLIMIT_NOFILE=16 reached (16 descriptors open)": the limit a descriptor failure hit and the
// count reached, read while the failing model still holds its descriptors. EMFILE means no number
// below the limit was free, so when not even /proc/self/fd can be opened, the count is the limit.
inline std::string describe_descriptor_limit(int error) {
  if (error == ENFILE) return "fs.file-max (the system's open files) reached";
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur == RLIM_INFINITY) return "RLIMIT_NOFILE=unlimited";
  const std::int64_t counted = open_descriptor_count();
  const std::int64_t open = counted >= 0 ? counted : static_cast<std::int64_t>(files.rlim_cur);
  return "RLIMIT_NOFILE=" + std::to_string(files.rlim_cur) + " reached (" + std::to_string(open) +
         " descriptors open)";
}
inline std::string describe_descriptor_limit(const std::exception& error) {
  return describe_descriptor_limit(descriptor_errno(error));
}

// CPUs this process may run on (its affinity mask, which taskset and cgroups' cpusets narrow;
// std::thread::hardware_concurrency counts the machine's). At least 1.
inline unsigned usable_cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

}  // namespace cmbench
