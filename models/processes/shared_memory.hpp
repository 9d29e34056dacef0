// What both processes/* models need: a MAP_SHARED region, process-shared futexes, fork and reap
// helpers, and the system limits a failed fork() is reported against.
//
// A forked child may be the copy of a multi-threaded parent (gtest, TBB workers), so it may only
// make async-signal-safe calls: every function here that a child calls is a raw system call or
// plain code, with no allocation and no locks. Messages are formatted by the parent afterwards.
#pragma once

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace cmbench::detail {

// An anonymous MAP_SHARED mapping: the parent maps it before fork() and every child writes into
// the same pages. Pages are zero until touched, and untouched pages cost nothing.
class shared_region {
 public:
  shared_region() = default;

  // `reserve` = false adds MAP_NORESERVE: address space for an arena most of which stays untouched.
  explicit shared_region(std::size_t bytes, bool reserve = true) : size_(bytes) {
    const int flags = MAP_SHARED | MAP_ANONYMOUS | (reserve ? 0 : MAP_NORESERVE);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(),
                              "mmap of " + std::to_string(bytes) + " shared bytes");
    }
    data_ = p;
  }

  shared_region(shared_region&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  shared_region& operator=(shared_region&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  ~shared_region() { release(); }

  void* data() const { return data_; }
  std::size_t size() const { return size_; }

  // The object of type T placed `offset` bytes into the region.
  template <class T>
  T* at(std::size_t offset = 0) const {
    return static_cast<T*>(static_cast<void*>(static_cast<char*>(data_) + offset));
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
  }

  void* data_ = nullptr;
  std::size_t size_ = 0;
};

constexpr std::size_t cache_line = 64;

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Process-shared futexes: no FUTEX_PRIVATE_FLAG, so the kernel keys the wait queue on the shared
// page, not on this process's address space, and a wake in one process reaches a waiter in another.
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain 32-bit integer");

// Sleeps while `word` holds `expected`. Returns 0 when woken, else the errno: EAGAIN (the word
// had already changed), ETIMEDOUT or EINTR. Callers re-check their condition either way.
inline int futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      const timespec* timeout = nullptr) noexcept {
  const long r = ::syscall(SYS_futex, &word, FUTEX_WAIT, expected, timeout, nullptr, 0);
  return r == 0 ? 0 : errno;
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, &word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

// waitpid() that survives signal interruptions. Returns the pid reaped, 0 (WNOHANG and nothing
// ready) or -1 with errno set.
inline pid_t reap(pid_t pid, int& status, int options = 0) noexcept {
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, options);
    if (r >= 0 || errno != EINTR) return r;
  }
}

inline bool exited_cleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// "was killed by signal 11 (Segmentation fault)" / "exited with code 3".
inline std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}

// 32700 -> "32,700".
inline std::string with_thousands(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The limits fork() runs into, read at the moment it failed. Plain numbers, so a child can fill
// it in and leave the formatting to the parent. -1: unknown (or unlimited, for nproc).
struct process_limits {
  std::int64_t pid_max = -1;      // kernel.pid_max
  std::int64_t threads_max = -1;  // kernel.threads-max
  std::int64_t nproc = -1;        // RLIMIT_NPROC soft limit
  std::int64_t tasks = -1;        // threads alive on the whole system (/proc/loadavg)
};

// Reads a small /proc file into `buffer` (NUL-terminated); false if it could not.
inline bool read_small_file(const char* path, char* buffer, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, buffer, size - 1);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  return true;
}

inline std::int64_t parse_number(const char* s) noexcept {
  if (*s < '0' || *s > '9') return -1;
  std::int64_t value = 0;
  for (; *s >= '0' && *s <= '9'; ++s) value = value * 10 + (*s - '0');
  return value;
}

// Async-signal-safe: open/read/close/getrlimit and plain parsing.
inline process_limits read_process_limits() noexcept {
  process_limits limits;
  char buffer[128];
  if (read_small_file("/proc/sys/kernel/pid_max", buffer, sizeof buffer)) {
    limits.pid_max = parse_number(buffer);
  }
  if (read_small_file("/proc/sys/kernel/threads-max", buffer, sizeof buffer)) {
    limits.threads_max = parse_number(buffer);
  }
  // "0.52 0.58 0.59 3/1234 5678": the field after '/' counts every task on the system.
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

// How many processes a run may keep alive before memory runs out. Every forked copy of this
// process costs about its page tables (VmPTE: fork copies them) plus a kernel stack and task
// bookkeeping; a parent with a large heap (an ASan build: 17 MiB of page tables) pays that per
// child. fork() does not fail when memory runs out (overcommit): the OOM killer picks a victim
// anywhere on the machine. So the models stop at 7/8 of MemAvailable, read by the caller
// before the run, and report it as the limit it is.
struct memory_budget {
  std::uint64_t per_process_kib = 0;
  std::uint64_t available_kib = 0;
  std::uint64_t max_processes = UINT64_MAX;  // unknown figures: no budget
};

// Kernel stack (16 KiB), task and mm structures, and the pages a child dirties first.
constexpr std::uint64_t per_process_kernel_kib = 64;

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

inline memory_budget read_memory_budget() noexcept {
  memory_budget budget;
  const std::int64_t page_tables = read_proc_field("/proc/self/status", "VmPTE:");
  const std::int64_t available = read_proc_field("/proc/meminfo", "MemAvailable:");
  if (page_tables < 0 || available < 0) return budget;
  budget.per_process_kib = static_cast<std::uint64_t>(page_tables) + per_process_kernel_kib;
  budget.available_kib = static_cast<std::uint64_t>(available);
  budget.max_processes = budget.available_kib / 8 * 7 / budget.per_process_kib;
  return budget;
}

// "memory: 1,310 processes alive at about 17,536 KiB each (page tables and kernel) fill 7/8 of
// the 22,937,052 KiB available; fork() would not fail but the OOM killer would strike"
inline std::string describe_memory_limit(std::uint64_t alive, const memory_budget& budget) {
  return "memory: " + with_thousands(alive) + " processes alive at about " +
         with_thousands(budget.per_process_kib) +
         " KiB each (the parent's page tables, copied by fork, plus kernel stack and "
         "bookkeeping) fill 7/8 of MemAvailable (" + with_thousands(budget.available_kib) +
         " KiB at the start); fork() would not fail, the OOM killer would strike instead";
}

// "fork failed with 32,700 processes alive: Resource temporarily unavailable (kernel.pid_max=32768,
// kernel.threads-max=192730, RLIMIT_NPROC=96365; 32,760 tasks on the system)"
inline std::string describe_fork_failure(int error, std::string_view alive,
                                         const process_limits& limits) {
  auto number = [](std::int64_t n, const char* unknown) {
    return n < 0 ? std::string(unknown) : std::to_string(n);
  };
  std::string message = "fork failed with " + std::string(alive) + ": " + std::strerror(error) +
                        " (kernel.pid_max=" + number(limits.pid_max, "?") +
                        ", kernel.threads-max=" + number(limits.threads_max, "?") +
                        ", RLIMIT_NPROC=" + number(limits.nproc, "unlimited");
  if (limits.tasks >= 0) {
    message += "; " + with_thousands(static_cast<std::uint64_t>(limits.tasks)) +
               " tasks on the system";
  }
  return message + ")";
}

}  // namespace cmbench::detail
