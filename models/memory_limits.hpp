// Memory as a limit a model names, before the kernel does it for us.
//
// Memory is overcommitted: an allocation far past what the machine has usually succeeds, and the
// kernel's OOM killer ends the run later (or another process on the machine) with a SIGKILL that
// names nothing. So a model that knows what a run will take checks it first against a budget of
// 7/8 of MemAvailable (the share processes/spawn's fork budget uses too) and, under RLIMIT_AS,
// against the address space left, and throws limit_error naming the limit and the figures. A
// model whose per-unit cost is only known by measuring (coroutine frames) watches its resident
// memory grow as it creates units and stops as soon as the rest would not fit.
//
// These read /proc and allocate strings: call them in the caller's process, never in a forked
// child.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "models/model.hpp"
#include "models/system_limits.hpp"

namespace cmbench {

// RLIMIT_AS and this process's address space now, in KiB; -1: unlimited or unknown.
struct address_space {
  std::int64_t limit_kib = -1;
  std::int64_t mapped_kib = -1;  // VmSize

  // KiB that can still be mapped; -1 when RLIMIT_AS is unlimited.
  std::int64_t left_kib() const noexcept {
    if (limit_kib < 0) return -1;
    return mapped_kib < 0 || mapped_kib > limit_kib ? 0 : limit_kib - mapped_kib;
  }
};

inline address_space read_address_space() noexcept {
  address_space as;
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    as.limit_kib = static_cast<std::int64_t>(limit.rlim_cur / 1024);
  }
  as.mapped_kib = read_proc_field("/proc/self/status", "VmSize:");
  return as;
}

// "RLIMIT_AS=400,000 KiB, 392,896 KiB mapped" or "RLIMIT_AS=unlimited".
inline std::string describe_address_space(const address_space& as) {
  if (as.limit_kib < 0) return "RLIMIT_AS=unlimited";
  return "RLIMIT_AS=" + with_thousands(static_cast<std::uint64_t>(as.limit_kib)) + " KiB, " +
         (as.mapped_kib < 0 ? std::string("?") : with_thousands(static_cast<std::uint64_t>(as.mapped_kib))) +
         " KiB mapped";
}

inline std::string describe_address_space() { return describe_address_space(read_address_space()); }

// 7/8 of MemAvailable, in KiB; -1 when /proc/meminfo cannot be read (no budget then).
inline std::int64_t memory_budget_kib() noexcept {
  const std::int64_t available = read_proc_field("/proc/meminfo", "MemAvailable:");
  return available < 0 ? -1 : available / 8 * 7;
}

// Needs smaller than this are not checked: the check reads /proc (tens of microseconds, often
// inside the measured region), and an allocation that small that fails is still reported as a
// limit (the models turn std::bad_alloc into a limit_error naming RLIMIT_AS).
constexpr std::uint64_t memory_check_from_bytes = std::uint64_t{16} << 20;

// Throws limit_error unless `bytes` more memory fit both in 7/8 of MemAvailable and, under
// RLIMIT_AS, in the address space left. `what` names what needs them ("a graph of 100,000,000
// units (unit records and messages)"); the message begins with `model`.
inline void check_memory_need(std::string_view model, const std::string& what, std::uint64_t bytes) {
  if (bytes < memory_check_from_bytes) return;
  const std::uint64_t kib = (bytes + 1023) / 1024;
  const std::int64_t budget = memory_budget_kib();
  if (budget >= 0 && kib > static_cast<std::uint64_t>(budget)) {
    throw limit_error(std::string(model) + ": memory: " + what + " needs " + with_thousands(kib) +
                      " KiB, more than 7/8 of MemAvailable (" +
                      with_thousands(static_cast<std::uint64_t>(budget)) +
                      " KiB); the allocation would not fail, the kernel's OOM killer would strike instead");
  }
  const address_space as = read_address_space();
  if (as.limit_kib >= 0 && kib > static_cast<std::uint64_t>(as.left_kib())) {
    throw limit_error(std::string(model) + ": RLIMIT_AS: " + what + " needs " + with_thousands(kib) +
                      " KiB of address space, " + with_thousands(static_cast<std::uint64_t>(as.left_kib())) +
                      " KiB are left (" + describe_address_space(as) + ")");
  }
}

// This process's address space and resident memory, KiB (/proc/self/statm, in pages); -1 if
// unreadable.
struct process_memory {
  std::int64_t mapped_kib = -1;
  std::int64_t resident_kib = -1;
};

inline process_memory read_process_memory() noexcept {
  process_memory m;
  char buffer[128];
  if (!read_small_file("/proc/self/statm", buffer, sizeof buffer)) return m;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return m;
  const char* at = buffer;
  const std::int64_t size = parse_number(at);
  while (*at != '\0' && *at != ' ') ++at;
  if (*at == ' ') ++at;
  const std::int64_t resident = parse_number(at);
  if (size >= 0) m.mapped_kib = size * (page / 1024);
  if (resident >= 0) m.resident_kib = resident * (page / 1024);
  return m;
}

// For units whose cost is only known once made (a coroutine frame's size is the compiler's):
// made at the start of unit creation, check() reads, at 4,096, 8,192, ... 65,536 units made and
// every 65,536 after, how much resident memory the units made so far took, and throws
// limit_error when the units still to come would not fit: in 7/8 of MemAvailable (the kernel's
// OOM killer would strike first), or under RLIMIT_AS in 7/8 of the address space left (an
// allocation would fail, somewhere a library may not report it: Asio then calls
// std::terminate). One read of /proc/self/statm and one of /proc/meminfo per check (a few
// microseconds every 65,536 units); const, so creators on several threads may share one.
class unit_memory_watch {
 public:
  unit_memory_watch(std::string_view model, std::string_view unit_name, std::uint64_t units) noexcept
      : model_(model), unit_name_(unit_name), units_(units), start_(read_process_memory()) {}

  // Whether check() is due after `made` units (of one creator).
  static bool due(std::uint64_t made) noexcept {
    return made >= 4096 && ((made & (made - 1)) == 0 || made % 65'536 == 0);
  }

  // `made`: units made so far, over every creator.
  void check(std::uint64_t made) const {
    if (made == 0 || made >= units_ || start_.resident_kib < 0) return;
    const process_memory now = read_process_memory();
    if (now.resident_kib < 0) return;
    // What a unit takes is what it touched: resident memory. (Address space grows in steps, a
    // 64 MiB malloc arena at a time, so it says little about a few thousand units.)
    const double each = static_cast<double>(std::max<std::int64_t>(0, now.resident_kib - start_.resident_kib)) /
                        static_cast<double>(made);
    const double need = each * static_cast<double>(units_ - made);
    const std::int64_t budget = memory_budget_kib();
    if (budget >= 0 && need > static_cast<double>(budget)) {
      fail("memory", made, each, need,
           "7/8 of MemAvailable (" + with_thousands(static_cast<std::uint64_t>(budget)) +
               " KiB); stopped before the kernel's OOM killer would strike");
    }
    const address_space as = read_address_space();
    if (as.limit_kib >= 0 && need > static_cast<double>(as.left_kib()) / 8 * 7) {
      fail("RLIMIT_AS", made, each, need, "7/8 of the address space left (" + describe_address_space(as) + ")");
    }
  }

 private:
  [[noreturn]] void fail(const char* limit_name, std::uint64_t made, double each_kib, double need_kib,
                         const std::string& limit) const {
    throw limit_error(std::string(model_) + ": " + limit_name + ": " + with_thousands(units_) + " " +
                      std::string(unit_name_) + " at about " +
                      with_thousands(static_cast<std::uint64_t>(each_kib * 1024.0)) +
                      " bytes each (measured over the first " + with_thousands(made) + ") need " +
                      with_thousands(static_cast<std::uint64_t>(need_kib)) + " KiB more, more than " + limit);
  }

  std::string_view model_;
  std::string_view unit_name_;
  std::uint64_t units_;
  process_memory start_;
};

}  // namespace cmbench
