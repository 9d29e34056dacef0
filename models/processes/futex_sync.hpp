// What processes/spawn's graph units share, placed in a MAP_SHARED region mapped before fork():
// a bounded single-producer single-consumer channel, the barrier and the start gate, all waiting
// on process-shared futexes. Every call is plain code or a raw system call, so forked copies of a
// multi-threaded parent may use them. Waits block in FUTEX_WAIT; nothing spins.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>

#include "models/processes/shared_memory.hpp"

namespace cmbench::detail {

// Sleeps while `word` still holds `seen`, announcing the sleep in `sleeping` so the other side
// knows to wake it. Returns the word's new value. The store to `sleeping` and the load of `word`
// are seq_cst, as are the other side's store to `word` and load of `sleeping` (see wake_sleeper),
// so either this side sees the new value or the other side sees the announcement: no lost wake-up.
// FUTEX_WAIT rechecks the word in the kernel, which closes the window before the sleep.
inline std::uint32_t sleep_while_equal(std::atomic<std::uint32_t>& word,
                                       std::atomic<std::uint32_t>& sleeping,
                                       std::uint32_t seen) noexcept {
  for (;;) {
    sleeping.store(1, std::memory_order_seq_cst);
    const std::uint32_t now = word.load(std::memory_order_seq_cst);
    if (now != seen) {
      sleeping.store(0, std::memory_order_relaxed);
      return now;
    }
    futex_wait(word, seen);
  }
}

// Publishes `value` in `word` and wakes the other side only if it announced a sleep.
inline void publish_and_wake(std::atomic<std::uint32_t>& word, std::uint32_t value,
                             const std::atomic<std::uint32_t>& sleeping) noexcept {
  word.store(value, std::memory_order_seq_cst);
  if (sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(word, 1);
}

// A bounded FIFO of `capacity` messages of `message_bytes` bytes from one sending process to one
// receiving process: a ring of slots and two 32-bit counters, messages sent (`tail`) and taken
// (`head`), which are also the futex words the receiver and the sender sleep on. One writer per
// counter, so no lock: a hand-off is a copy, a store and, only when the peer sleeps, one
// FUTEX_WAKE. Each side keeps its own words on its own cache line, with a cached copy of the
// other side's counter so a send into a non-full ring or a receive from a non-empty one does not
// read the peer's line.
class futex_channel {
 public:
  // In the parent, before fork(): `slots` holds capacity * message_bytes bytes of shared memory.
  futex_channel(std::byte* slots, std::uint32_t capacity, std::uint32_t message_bytes) noexcept
      : slots_(slots), capacity_(capacity), bytes_(message_bytes) {}

  // Copies `message` in, sleeping while the ring is full. Returns whether it was full.
  bool send(const std::byte* message) noexcept {
    const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    bool was_full = false;
    if (tail - head_seen_ == capacity_) {
      head_seen_ = head_.load(std::memory_order_acquire);
      if (tail - head_seen_ == capacity_) {
        was_full = true;
        head_seen_ = sleep_while_equal(head_, sender_sleeping_, head_seen_);
      }
    }
    std::memcpy(slots_ + std::size_t{send_slot_} * bytes_, message, bytes_);
    if (++send_slot_ == capacity_) send_slot_ = 0;
    publish_and_wake(tail_, tail + 1, receiver_sleeping_);
    return was_full;
  }

  // Moves the oldest message into `message`, sleeping while the ring is empty.
  void receive(std::byte* message) noexcept {
    const std::uint32_t head = head_.load(std::memory_order_relaxed);
    if (tail_seen_ == head) {
      tail_seen_ = tail_.load(std::memory_order_acquire);
      if (tail_seen_ == head) tail_seen_ = sleep_while_equal(tail_, receiver_sleeping_, head);
    }
    std::memcpy(message, slots_ + std::size_t{receive_slot_} * bytes_, bytes_);
    if (++receive_slot_ == capacity_) receive_slot_ = 0;
    publish_and_wake(head_, head + 1, sender_sleeping_);
  }

 private:
  // Read-only after construction.
  std::byte* slots_;
  std::uint32_t capacity_;
  std::uint32_t bytes_;
  // The sender's line. The counters wrap at 2^32; tail - head stays exact since capacity < 2^31.
  alignas(cache_line) std::atomic<std::uint32_t> tail_{0};
  std::atomic<std::uint32_t> sender_sleeping_{0};
  std::uint32_t head_seen_ = 0;  // the receiver's head as the sender last read it
  std::uint32_t send_slot_ = 0;  // tail % capacity, kept apart because 2^32 % capacity may be != 0
  // The receiver's line.
  alignas(cache_line) std::atomic<std::uint32_t> head_{0};
  std::atomic<std::uint32_t> receiver_sleeping_{0};
  std::uint32_t tail_seen_ = 0;
  std::uint32_t receive_slot_ = 0;
};

// The barrier of all units: an arrival counter and a generation word the others sleep on. The
// last to arrive resets the counter, sleeps the hold, bumps the generation and wakes everyone.
class futex_barrier {
 public:
  futex_barrier(std::uint32_t units, std::chrono::nanoseconds hold) noexcept
      : units_(units), hold_(hold) {}

  void arrive_and_wait() noexcept {
    // Read before arriving: the generation cannot move until this unit has arrived.
    const std::uint32_t generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == units_) {
      arrived_.store(0, std::memory_order_relaxed);  // published by the release below
      if (hold_.count() > 0) std::this_thread::sleep_for(hold_);  // nanosleep: safe after fork
      generation_.store(generation + 1, std::memory_order_release);
      if (units_ > 1) futex_wake(generation_, INT_MAX);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) {
      futex_wait(generation_, generation);
    }
  }

 private:
  std::uint32_t units_;
  std::chrono::nanoseconds hold_;
  alignas(cache_line) std::atomic<std::uint32_t> arrived_{0};
  alignas(cache_line) std::atomic<std::uint32_t> generation_{0};
};

// Units wait here until every unit's process exists, so a run whose fork() fails part way can
// send the ones already forked home before any has taken a step (and so before any can block on
// a unit that does not exist).
class futex_gate {
 public:
  // Blocks until the gate opens; false if the run was called off.
  bool wait() noexcept {
    std::uint32_t state = state_.load(std::memory_order_acquire);
    while (state == closed) {
      futex_wait(state_, closed);
      state = state_.load(std::memory_order_acquire);
    }
    return state == go;
  }
  void open(bool run) noexcept {
    state_.store(run ? go : call_off, std::memory_order_release);
    futex_wake(state_, INT_MAX);
  }

 private:
  static constexpr std::uint32_t closed = 0, go = 1, call_off = 2;
  alignas(cache_line) std::atomic<std::uint32_t> state_{closed};
};

}  // namespace cmbench::detail
