// An eventcount between processes: consumers sleep on a futex until a condition they check (work
// on a queue, shutdown) may have become true, and a producer makes no system call while nobody
// sleeps. A sequence word (the futex word, bumped only to wake someone) and a count of sleepers,
// in shared memory; all zero is its initial state. processes/pool's idle workers sleep on one.
//
// No lost wake-up: a sleeper announces itself (sleepers + 1) and then fences before checking its
// condition; a producer changes the condition and then fences before reading `sleepers` (in
// notify()). Either the sleeper sees the change, or the producer sees the sleeper and bumps the
// sequence, which FUTEX_WAIT rechecks in the kernel against the value read before announcing.
// Raw atomics and futex calls: async-signal-safe.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>

#include "models/processes/shared_memory.hpp"

namespace cmbench::detail {

class eventcount {
 public:
  // Sleeps unless ready() holds, at most until a wake-up; the caller re-checks either way (a
  // wake-up may be meant for another sleeper, or the condition taken by another consumer).
  template <class Ready>
  void sleep_unless(Ready ready) noexcept {
    const std::uint32_t seen = sequence_.load(std::memory_order_acquire);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!ready()) futex_wait(sequence_, seen);  // returns at once if a wake-up came meanwhile
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  // After making a condition true: wakes one sleeper, if anyone sleeps. The fence pairs with the
  // one in sleep_unless().
  void notify_one() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_relaxed) != 0) wake_one();
  }

  // Wakes one sleeper whether or not one was seen (a caller that read sleepers() itself).
  void wake_one() noexcept {
    sequence_.fetch_add(1, std::memory_order_release);
    futex_wake(sequence_, 1);
  }

  void wake_all() noexcept {
    sequence_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(sequence_, INT_MAX);
  }

  // How many are between announcing a sleep and leaving it.
  std::uint32_t sleepers(std::memory_order order = std::memory_order_relaxed) const noexcept {
    return sleepers_.load(order);
  }

 private:
  std::atomic<std::uint32_t> sequence_{0};  // the futex word
  std::atomic<std::uint32_t> sleepers_{0};
};

}  // namespace cmbench::detail
