// What the floor probes are built from: the clock, the placements of a round trip's two ends
// (pinning), the clock of a volley, the completion its caller sleeps on, and a forked partner
// process that dies with its parent and is always reaped. Shared by the built-in probes
// (probes.cpp, tcp_probes.cpp) and the probes a model registers from its own source
// (CMBENCH_REGISTER_PROBE), so a model's floor is timed exactly as its siblings' are.
#pragma once

#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/floors/probes.hpp"

namespace cmbench::floors {

using clock = std::chrono::steady_clock;

inline std::int64_t since(clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start).count();
}

// Appends the time since `last` to `each` and returns now: one clock read per operation, which
// only the microsecond probes afford.
inline clock::time_point record(std::vector<std::uint32_t>* each, clock::time_point last) {
  const auto now = clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
  each->push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX)));
  return now;
}

[[noreturn]] inline void fail(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

// Where the two ends of a round trip run: wherever the scheduler puts them, both on one CPU, or
// on two different CPUs. On a virtual machine a wake-up across CPUs can cost several times one on
// the same CPU (an idle vCPU must be woken by the host), and an unpinned round trip lands on
// either: the pinned variants show both.
enum class placement { any, same_cpu, cross_cpu };

// The CPUs the caller's end (first) and the partner's end (second) run on, chosen from this
// thread's affinity before either end is pinned; -1: unpinned.
inline std::pair<int, int> cpus_for(placement where) {
  if (where == placement::any) return {-1, -1};
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (::sched_getaffinity(0, sizeof(mask), &mask) != 0) fail("sched_getaffinity");
  int cpus[2] = {-1, -1};
  for (int cpu = 0, found = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
    if (CPU_ISSET(cpu, &mask)) cpus[found++] = cpu;
  }
  if (where == placement::same_cpu) return {cpus[0], cpus[0]};
  if (cpus[1] < 0) throw not_applicable("needs two CPUs to run its ends on different CPUs");
  return {cpus[0], cpus[1]};
}

// Pins the calling thread to `cpu` (-1: leaves it) for the lifetime of this object, then
// restores its mask.
class pinned {
 public:
  explicit pinned(int cpu) {
    if (cpu < 0) return;
    CPU_ZERO(&saved_);
    if (::sched_getaffinity(0, sizeof(saved_), &saved_) != 0) fail("sched_getaffinity");
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) fail("sched_setaffinity");
    restore_ = true;
  }
  ~pinned() {
    if (restore_) ::sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  pinned(const pinned&) = delete;
  pinned& operator=(const pinned&) = delete;

 private:
  cpu_set_t saved_{};
  bool restore_ = false;
};

// The clock of a volley whose turns run wherever the mechanism puts them (a pool's workers, an
// arena's threads, two event loops): ping i reads the clock once as it starts, closing round trip
// i - 1. Turns run one at a time and each hand-off orders its writes before the next turn, so
// there is one writer at a time and no lock.
class round_trip_clock {
 public:
  round_trip_clock(std::uint64_t rounds, std::vector<std::uint32_t>* each) : rounds_(rounds), each_(each) {}

  // Ping i starting; true when it ends the volley (ping `rounds`, after the last round trip).
  bool ping(std::uint64_t i) {
    if (i == 0) {
      first_ = last_ = clock::now();
    } else if (each_ != nullptr) {
      last_ = record(each_, last_);
    } else {
      last_ = clock::now();
    }
    return i == rounds_;
  }

  // The round trips' nanoseconds: from ping 0 starting to ping `rounds` starting.
  std::int64_t total() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(last_ - first_).count();
  }

 private:
  std::uint64_t rounds_;
  std::vector<std::uint32_t>* each_;
  clock::time_point first_, last_;
};

// Set once by whichever thread ends a volley; the caller sleeps on it. Signalled under the lock,
// so the caller cannot return (and destroy it) before the signalling thread is done with it.
class completion {
 public:
  void signal() {
    std::lock_guard lock(mutex_);
    done_ = true;
    cv_.notify_one();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

// In a forked child: die with the thread that forked it (PR_SET_PDEATHSIG fires when that thread
// exits; the probes reap their children before they return, so that is never early).
inline void die_with_parent(pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent died before prctl() took effect
}

// A forked child, reaped however the caller leaves: killed first if it still runs.
class child_process {
 public:
  child_process() = default;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap(0);
  }

  void adopt(pid_t pid) { pid_ = pid; }

  // Whether the child has ended (it is then reaped), without waiting.
  bool ended() { return pid_ <= 0 || reap(WNOHANG); }

  // Waits for the child to end; whether it exited with status 0.
  bool exited_cleanly() {
    if (pid_ > 0) reap(0);
    return WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
  }

 private:
  bool reap(int options) {
    pid_t r;
    do r = ::waitpid(pid_, &status_, options);
    while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    if (r < 0) status_ = -1;  // not ours to wait for any more: count it as ended badly
    pid_ = 0;
    return true;
  }

  pid_t pid_ = 0;
  int status_ = -1;
};

// A round trip at one placement, as a probe's plain function pointer.
template <std::int64_t (*RoundTrip)(placement, std::uint64_t, std::vector<std::uint32_t>*), placement Where>
std::int64_t placed(std::uint64_t n, std::vector<std::uint32_t>* each) {
  return RoundTrip(Where, n, each);
}

}  // namespace cmbench::floors
