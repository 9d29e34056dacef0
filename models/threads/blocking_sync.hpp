// What threads/spawn's graph units share: a blocking bounded channel, the barrier and the start
// gate, all built from the standard library's blocking primitives (std::mutex,
// std::condition_variable, std::barrier, std::atomic wait/notify). Waits block; nothing spins
// beyond what the standard library does inside its own waits.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace cmbench::detail {

// Keeps objects that different threads write on different cache lines.
constexpr std::size_t thread_cache_line = 64;

// A bounded FIFO of `capacity` messages of `message_bytes` bytes between threads: a ring buffer
// guarded by one mutex, with a condition variable per direction. A side notifies only when the
// other side registered itself as waiting (under the mutex), so a hand-off to a running peer makes
// no system call, and it notifies after unlocking, so the woken peer does not wake into a held
// mutex. Any number of threads may use it; a graph job gives it one sender and one receiver.
class alignas(thread_cache_line) blocking_channel {
 public:
  // Called once, before any thread uses the channel.
  void init(std::uint32_t capacity, std::uint32_t message_bytes) {
    capacity_ = capacity;
    bytes_ = message_bytes;
    slots_ = std::make_unique<std::uint64_t[]>(std::size_t{capacity} * message_bytes / 8);
  }

  // Copies `message` in, waiting while the channel is full. Returns whether it had to wait.
  bool send(const std::byte* message) {
    std::unique_lock lock(mutex_);
    const bool was_full = size_ == capacity_;
    if (was_full) {
      ++senders_waiting_;
      not_full_.wait(lock, [this] { return size_ < capacity_; });
      --senders_waiting_;
    }
    std::uint32_t tail = head_ + size_;
    if (tail >= capacity_) tail -= capacity_;
    std::memcpy(slot(tail), message, bytes_);
    ++size_;
    const bool wake = receivers_waiting_ > 0;
    lock.unlock();
    if (wake) not_empty_.notify_one();
    return was_full;
  }

  // Moves the oldest message into `message`, waiting while the channel is empty.
  void receive(std::byte* message) {
    std::unique_lock lock(mutex_);
    if (size_ == 0) {
      ++receivers_waiting_;
      not_empty_.wait(lock, [this] { return size_ > 0; });
      --receivers_waiting_;
    }
    std::memcpy(message, slot(head_), bytes_);
    if (++head_ == capacity_) head_ = 0;
    --size_;
    const bool wake = senders_waiting_ > 0;
    lock.unlock();
    if (wake) not_full_.notify_one();
  }

 private:
  std::byte* slot(std::uint32_t index) const {
    return reinterpret_cast<std::byte*>(slots_.get()) + std::size_t{index} * bytes_;
  }

  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::uint32_t head_ = 0;  // oldest message
  std::uint32_t size_ = 0;
  std::uint32_t receivers_waiting_ = 0;
  std::uint32_t senders_waiting_ = 0;
  std::uint32_t capacity_ = 1;
  std::uint32_t bytes_ = 0;
  std::unique_ptr<std::uint64_t[]> slots_;  // capacity messages, 8-byte aligned
};

// A mutex of a graph job, alone on its cache line so mutexes do not share a line.
struct alignas(thread_cache_line) padded_mutex {
  std::mutex mutex;
};

// The barrier's completion step: runs once per phase in the last thread to arrive, before any
// thread goes on, so the last arriver holds every unit for `hold`.
struct hold_step {
  std::chrono::nanoseconds hold{0};
  void operator()() const noexcept {
    if (hold.count() > 0) std::this_thread::sleep_for(hold);
  }
};

using hold_barrier = std::barrier<hold_step>;

// Units wait here until every unit's thread exists, so a run that cannot create them all can
// send the ones it made home before any has taken a step (and so before any can block on a unit
// that does not exist).
class start_gate {
 public:
  // Blocks until the gate opens; false if the run was called off.
  bool wait() {
    state_.wait(closed, std::memory_order_acquire);
    return state_.load(std::memory_order_acquire) == go;
  }
  void open(bool run) {
    state_.store(run ? go : call_off, std::memory_order_release);
    state_.notify_all();
  }

 private:
  static constexpr std::uint32_t closed = 0, go = 1, call_off = 2;
  std::atomic<std::uint32_t> state_{closed};
};

}  // namespace cmbench::detail
