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

#include "models/shared_region.hpp"
#include "models/system_limits.hpp"

namespace cmbench::detail {

// One round of a bounded poll: tells the CPU this is a spin-wait (kinder to a sibling hyperthread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

using ::cmbench::shared_region;
using ::cmbench::with_thousands;

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

// A mutex between processes: a futex word in shared memory, 0 free, 1 held, 2 held with
// (possible) waiters, so an uncontended lock and unlock make no system call (Drepper's
// "Futexes Are Tricky", mutex 2). Blocking, never spinning; async-signal-safe.
class futex_mutex {
 public:
  void lock() noexcept {
    std::uint32_t seen = 0;
    if (state_.compare_exchange_strong(seen, 1, std::memory_order_acquire)) return;
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      futex_wait(state_, 2);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }
  void unlock() noexcept {
    if (state_.fetch_sub(1, std::memory_order_release) != 1) {
      state_.store(0, std::memory_order_release);
      futex_wake(state_, 1);
    }
  }

 private:
  std::atomic<std::uint32_t> state_{0};
};

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

// The limits fork() runs into, read at the moment it failed (models/system_limits.hpp).
using process_limits = kernel_limits;
inline process_limits read_process_limits() noexcept { return read_kernel_limits(); }

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
