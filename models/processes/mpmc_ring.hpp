// A bounded multi-producer multi-consumer FIFO of 8-byte words in memory shared by processes:
// Dmitry Vyukov's bounded MPMC queue (a sequence number per cell, one CAS per push or pop, no
// lock), so any process may push and pop without a system call. processes/pool's task queue.
//
// Zero memory is an empty ring: a cell stores its sequence number minus its index, so a fresh
// MAP_SHARED mapping needs no initialisation and its pages are touched only as far as the ring
// is used (the pool's 4M cells are 64 MiB of address space, mostly never touched).
//
// The ring is a view (two pointers) over memory the caller places: copies in forked children
// are valid as long as the memory is mapped at the same address in them (mapped before fork()).
// Plain code and atomics only: async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cmbench::detail {

template <std::uint64_t Capacity>
class mpmc_ring {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "the capacity is a power of two");

 public:
  static constexpr std::uint64_t capacity = Capacity;

  struct cell {
    std::atomic<std::uint64_t> sequence;  // minus the cell's index
    std::uint64_t value;
  };
  // The two ends, each on its own cache line: producers and consumers do not share one.
  struct ends {
    alignas(64) std::atomic<std::uint64_t> enqueue_pos{0};
    alignas(64) std::atomic<std::uint64_t> dequeue_pos{0};
  };
  static constexpr std::size_t cells_bytes = Capacity * sizeof(cell);

  // `cells`: cells_bytes of zeroed memory, at the same address in every process that uses it.
  mpmc_ring(ends& positions, cell* cells) noexcept : ends_(&positions), cells_(cells) {}

  // False if the ring is full.
  bool try_push(std::uint64_t value) const noexcept {
    std::uint64_t pos = ends_->enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask];
      const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire) + (pos & mask);
      const auto dif = static_cast<std::int64_t>(sequence - pos);
      if (dif == 0) {
        if (ends_->enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = value;
          c.sequence.store(pos + 1 - (pos & mask), std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = ends_->enqueue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  // False if the ring is empty, or its oldest cell is still being written by a producer.
  bool try_pop(std::uint64_t& value) const noexcept {
    std::uint64_t pos = ends_->dequeue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask];
      const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire) + (pos & mask);
      const auto dif = static_cast<std::int64_t>(sequence - (pos + 1));
      if (dif == 0) {
        if (ends_->dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          value = c.value;
          c.sequence.store(pos + Capacity - (pos & mask), std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;
      } else {
        pos = ends_->dequeue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  // Unfenced reads, for heuristics (should a worker sleep, pass a wake-up on); a caller that
  // needs an answer it can rely on fences first.
  bool empty() const noexcept {
    return ends_->enqueue_pos.load(std::memory_order_relaxed) == ends_->dequeue_pos.load(std::memory_order_relaxed);
  }
  std::uint64_t size() const noexcept {
    const std::uint64_t dequeued = ends_->dequeue_pos.load(std::memory_order_relaxed);
    const std::uint64_t enqueued = ends_->enqueue_pos.load(std::memory_order_relaxed);
    return enqueued > dequeued ? enqueued - dequeued : 0;  // the two reads are not one snapshot
  }
  // Pushes ever claimed: a position that moves whenever anything is pushed.
  std::uint64_t pushed(std::memory_order order = std::memory_order_relaxed) const noexcept {
    return ends_->enqueue_pos.load(order);
  }

 private:
  static constexpr std::uint64_t mask = Capacity - 1;

  ends* ends_;
  cell* cells_;
};

}  // namespace cmbench::detail
