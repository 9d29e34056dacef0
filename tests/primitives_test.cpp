// The models' concurrency primitives on their own, as libfork tests its deque: single-thread
// semantics (FIFO, full, empty), then many threads at once with counts and checksums that must
// add up, then, for those that live in shared memory, the same across fork(). A lost wake-up
// would hang rather than fail, so every wait here has a deadline: a stuck thread is released and
// the test fails, a stuck process is killed and the test fails.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/parked/heap_graph.hpp"
#include "models/processes/eventcount.hpp"
#include "models/processes/futex_sync.hpp"
#include "models/processes/maps_reader.hpp"
#include "models/processes/mpmc_ring.hpp"
#include "models/processes/shared_memory.hpp"
#include "models/shared_region.hpp"
#include "models/threads/blocking_sync.hpp"

namespace cmbench {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Runs body(i) in `count` forked children, each ending with _exit(body's return value), and
// waits for them: every child must exit 0 within `deadline` (the ones still running then are
// killed). Returns a description of what went wrong, empty if nothing did.
std::string run_in_children(unsigned count, const std::function<int(unsigned)>& body,
                            std::chrono::seconds deadline = 60s) {
  std::vector<pid_t> children;
  for (unsigned i = 0; i < count; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body(i));
    if (pid < 0) {
      for (pid_t c : children) ::kill(c, SIGKILL);
      for (pid_t c : children) ::waitpid(c, nullptr, 0);
      return "fork failed";
    }
    children.push_back(pid);
  }
  std::string problems;
  const auto until = clock_type::now() + deadline;
  std::size_t left = children.size();
  std::vector<bool> reaped(children.size(), false);
  while (left > 0) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      int status = 0;
      if (reaped[i] || ::waitpid(children[i], &status, WNOHANG) != children[i]) continue;
      reaped[i] = true;
      --left;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        problems += "child " + std::to_string(i) + " ended with status " + std::to_string(status) + "; ";
      }
    }
    if (left > 0 && clock_type::now() > until) {
      for (std::size_t i = 0; i < children.size(); ++i) {
        if (reaped[i]) continue;
        ::kill(children[i], SIGKILL);
        ::waitpid(children[i], nullptr, 0);
      }
      return problems + std::to_string(left) + " children did not finish in time (a lost wake-up?)";
    }
    std::this_thread::sleep_for(1ms);
  }
  return problems;
}

// A thread that found a ring full or empty polls it again at once, as the pool's workers do, so
// that several threads race for the same cell (yielding every 256 misses, so that a thread whose
// partner was preempted lets it run on 2 CPUs).
void back_off(std::uint32_t& misses) {
  if (++misses % 256 == 0) {
    std::this_thread::yield();
  } else {
    detail::cpu_relax();
  }
}

// Spins (yielding) until `done` holds or the deadline passes; false on the deadline.
template <class Done>
bool wait_until(Done done, std::chrono::seconds deadline = 30s) {
  const auto until = clock_type::now() + deadline;
  while (!done()) {
    if (clock_type::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// ---- the MPMC ring (processes/mpmc_ring.hpp) ----

// A ring and its ends in one shared region, zero as mmap gives it: an empty ring.
template <std::uint64_t Capacity>
struct shared_ring {
  using ring_type = detail::mpmc_ring<Capacity>;
  static constexpr std::size_t cells_at = 128;
  static_assert(sizeof(typename ring_type::ends) <= cells_at);

  shared_region region{cells_at + ring_type::cells_bytes};
  ring_type ring{*new (region.data()) typename ring_type::ends{},
                 region.at<typename ring_type::cell>(cells_at)};
};

TEST(mpmc_ring, is_fifo_full_at_capacity_and_empty_when_drained) {
  shared_ring<8> shared;
  auto& ring = shared.ring;
  std::uint64_t value = 0;
  EXPECT_TRUE(ring.empty());
  EXPECT_FALSE(ring.try_pop(value));
  // Round after round, so the positions pass the capacity many times (the sequence numbers wrap).
  std::uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 100; ++round) {
    const std::uint64_t fill = 1 + round % 8;
    for (std::uint64_t i = 0; i < fill; ++i) ASSERT_TRUE(ring.try_push(next_in++));
    EXPECT_EQ(ring.size(), fill);
    if (fill == 8) {
      EXPECT_FALSE(ring.try_push(12345)) << "a full ring took a ninth value";
    }
    for (std::uint64_t i = 0; i < fill; ++i) {
      ASSERT_TRUE(ring.try_pop(value));
      EXPECT_EQ(value, next_out++) << "out of order";
    }
    EXPECT_TRUE(ring.empty());
    EXPECT_FALSE(ring.try_pop(value));
  }
  // Full, then one out makes room for exactly one in.
  for (std::uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(ring.try_push(100 + i));
  EXPECT_FALSE(ring.try_push(999));
  ASSERT_TRUE(ring.try_pop(value));
  EXPECT_EQ(value, 100u);
  EXPECT_TRUE(ring.try_push(108));
  EXPECT_FALSE(ring.try_push(999));
  for (std::uint64_t i = 1; i <= 8; ++i) {
    ASSERT_TRUE(ring.try_pop(value));
    EXPECT_EQ(value, 100 + i);
  }
}

// What producers push: producer p's i-th value, so a consumer can check each producer's order.
constexpr std::uint64_t ring_value(std::uint64_t producer, std::uint64_t i) { return producer << 32 | i; }

// A consumer's tally, and whether each producer's values came to it in order (a FIFO ring keeps
// the order of one producer's pushes for every consumer).
struct ring_tally {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t out_of_order = 0;

  void take(std::uint64_t value, std::vector<std::int64_t>& last_seen) {
    const std::uint64_t producer = value >> 32;
    const auto i = static_cast<std::int64_t>(value & 0xffffffff);
    if (producer >= last_seen.size() || i <= last_seen[producer]) {
      ++out_of_order;
    } else {
      last_seen[producer] = i;
    }
    ++count;
    sum += value;
  }
};

std::uint64_t expected_ring_sum(std::uint64_t producers, std::uint64_t per_producer) {
  std::uint64_t sum = 0;
  for (std::uint64_t p = 0; p < producers; ++p) {
    for (std::uint64_t i = 0; i < per_producer; ++i) sum += ring_value(p, i);
  }
  return sum;
}

TEST(mpmc_ring, threads_pass_every_value_once_and_in_each_producers_order) {
  constexpr std::uint64_t producers = 2, consumers = 2, per_producer = 150'000;
  shared_ring<32> shared;  // small: producers find it full, consumers empty, all the time
  std::atomic<std::uint64_t> taken{0};
  std::atomic<bool> give_up{false};
  std::vector<std::atomic<std::uint8_t>> seen(producers * per_producer);
  std::vector<ring_tally> tallies(consumers);
  std::vector<std::thread> threads;
  for (std::uint64_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::uint32_t misses = 0;
      for (std::uint64_t i = 0; i < per_producer && !give_up.load(); ++i) {
        while (!shared.ring.try_push(ring_value(p, i)) && !give_up.load()) back_off(misses);
      }
    });
  }
  for (std::uint64_t c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::int64_t> last_seen(producers, -1);
      std::uint64_t value = 0;
      std::uint32_t misses = 0;
      while (taken.load() < producers * per_producer && !give_up.load()) {
        if (!shared.ring.try_pop(value)) {
          back_off(misses);
          continue;
        }
        taken.fetch_add(1);
        tallies[c].take(value, last_seen);
        const std::uint64_t index = (value >> 32) * per_producer + (value & 0xffffffff);
        if (index < seen.size()) seen[index].fetch_add(1);
      }
    });
  }
  const bool finished = wait_until([&] { return taken.load() == producers * per_producer; });
  give_up.store(true);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(finished) << "only " << taken.load() << " values came out";
  ring_tally total;
  for (const auto& t : tallies) {
    total.count += t.count;
    total.sum += t.sum;
    total.out_of_order += t.out_of_order;
  }
  EXPECT_EQ(total.count, producers * per_producer);
  EXPECT_EQ(total.sum, expected_ring_sum(producers, per_producer));
  EXPECT_EQ(total.out_of_order, 0u);
  std::uint64_t not_once = 0;
  for (const auto& s : seen) not_once += s.load() != 1;
  EXPECT_EQ(not_once, 0u) << "values seen zero or several times";
  EXPECT_TRUE(shared.ring.empty());
}

TEST(mpmc_ring, processes_pass_every_value_once_across_fork) {
  constexpr std::uint64_t producers = 2, consumers = 2, per_producer = 50'000;
  constexpr std::uint64_t total = producers * per_producer;
  shared_ring<32> shared;
  struct results {
    std::atomic<std::uint64_t> taken;
    std::atomic<std::uint64_t> sum;
    std::atomic<std::uint64_t> out_of_order;
    std::atomic<std::uint8_t> seen[total];
  };
  shared_region region(sizeof(results));
  auto* r = new (region.data()) results{};
  const std::string problems = run_in_children(producers + consumers, [&](unsigned child) {
    std::uint32_t misses = 0;
    if (child < producers) {
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        while (!shared.ring.try_push(ring_value(child, i))) back_off(misses);
      }
      return 0;
    }
    std::vector<std::int64_t> last_seen(producers, -1);
    ring_tally tally;
    std::uint64_t value = 0;
    while (r->taken.load() < total) {
      if (!shared.ring.try_pop(value)) {
        back_off(misses);
        continue;
      }
      r->taken.fetch_add(1);
      tally.take(value, last_seen);
      const std::uint64_t index = (value >> 32) * per_producer + (value & 0xffffffff);
      if (index < total) r->seen[index].fetch_add(1);
    }
    r->sum.fetch_add(tally.sum);
    r->out_of_order.fetch_add(tally.out_of_order);
    return 0;
  });
  ASSERT_EQ(problems, "");
  EXPECT_EQ(r->taken.load(), total);
  EXPECT_EQ(r->sum.load(), expected_ring_sum(producers, per_producer));
  EXPECT_EQ(r->out_of_order.load(), 0u);
  std::uint64_t not_once = 0;
  for (const auto& s : r->seen) not_once += s.load() != 1;
  EXPECT_EQ(not_once, 0u);
}

// ---- the futex mutex (processes/shared_memory.hpp) ----

// A counter only ever changed under the mutex, and a check that nobody else is inside.
struct guarded_counter {
  detail::futex_mutex mutex;
  std::atomic<std::uint32_t> inside{0};
  std::atomic<std::uint64_t> overlaps{0};
  std::uint64_t value = 0;  // plain: a second holder would lose updates

  void add_one() {
    mutex.lock();
    if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t v = value;
    if (v % 64 == 0) std::this_thread::yield();  // widen the window a broken lock would let in
    value = v + 1;
    inside.fetch_sub(1, std::memory_order_relaxed);
    mutex.unlock();
  }
};

TEST(futex_mutex, locks_and_unlocks_on_one_thread) {
  guarded_counter c;
  for (int i = 0; i < 1000; ++i) c.add_one();
  EXPECT_EQ(c.value, 1000u);
  EXPECT_EQ(c.overlaps.load(), 0u);
}

TEST(futex_mutex, excludes_threads_and_loses_no_update) {
  constexpr unsigned threads = 4;
  constexpr std::uint64_t each = 50'000;
  guarded_counter c;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::uint64_t i = 0; i < each; ++i) c.add_one();
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(c.value, threads * each);
  EXPECT_EQ(c.overlaps.load(), 0u);
}

TEST(futex_mutex, excludes_processes_across_fork) {
  constexpr unsigned processes = 3;
  constexpr std::uint64_t each = 30'000;
  shared_region region(sizeof(guarded_counter));
  auto* c = new (region.data()) guarded_counter{};
  const std::string problems = run_in_children(processes, [&](unsigned) {
    for (std::uint64_t i = 0; i < each; ++i) c->add_one();
    return 0;
  });
  ASSERT_EQ(problems, "");
  EXPECT_EQ(c->value, processes * each);
  EXPECT_EQ(c->overlaps.load(), 0u);
}

// ---- the eventcount (processes/eventcount.hpp) ----

TEST(eventcount, a_ready_condition_does_not_sleep) {
  detail::eventcount ec;
  const auto start = clock_type::now();
  ec.sleep_unless([] { return true; });
  EXPECT_LT(clock_type::now() - start, 1s);
  EXPECT_EQ(ec.sleepers(), 0u);
  ec.notify_one();  // nobody sleeps: nothing to do, nothing breaks
}

TEST(eventcount, wake_all_wakes_every_sleeper) {
  detail::eventcount ec;
  std::atomic<bool> go{false};
  std::atomic<unsigned> woke{0};
  std::vector<std::thread> sleepers;
  for (int i = 0; i < 4; ++i) {
    sleepers.emplace_back([&] {
      while (!go.load()) ec.sleep_unless([&] { return go.load(); });
      woke.fetch_add(1);
    });
  }
  ASSERT_TRUE(wait_until([&] { return ec.sleepers() == 4; }, 10s));
  go.store(true);
  ec.wake_all();
  const bool all = wait_until([&] { return woke.load() == 4; }, 10s);
  if (!all) {
    for (int i = 0; i < 100; ++i) ec.wake_all();  // release them to join, then fail
  }
  for (auto& t : sleepers) t.join();
  EXPECT_TRUE(all);
}

// Items handed one at a time to consumers that sleep whenever there is none: every hand-off
// crosses a sleep, so a lost wake-up leaves an item behind and the producer's deadline fails.
TEST(eventcount, threads_lose_no_wake_up) {
  constexpr std::uint32_t items = 20'000;
  detail::eventcount ec;
  std::atomic<std::uint32_t> available{0};
  std::atomic<std::uint32_t> taken{0};
  std::atomic<bool> stop{false};
  auto take = [&] {
    std::uint32_t n = available.load();
    return n > 0 && available.compare_exchange_strong(n, n - 1);
  };
  std::vector<std::thread> consumers;
  for (int i = 0; i < 2; ++i) {
    consumers.emplace_back([&] {
      while (!stop.load()) {
        if (take()) {
          taken.fetch_add(1);
          continue;
        }
        ec.sleep_unless([&] { return available.load() > 0 || stop.load(); });
      }
    });
  }
  bool delivered = true;
  for (std::uint32_t i = 0; i < items && delivered; ++i) {
    available.fetch_add(1);
    ec.notify_one();
    if (i % 4 == 0) delivered = wait_until([&] { return taken.load() == i + 1; }, 10s);  // let them sleep
  }
  delivered = delivered && wait_until([&] { return taken.load() == items; }, 10s);
  stop.store(true);
  ec.wake_all();
  for (auto& t : consumers) t.join();
  EXPECT_TRUE(delivered) << taken.load() << " of " << items << " items taken";
  EXPECT_EQ(taken.load(), items);
}

// Two processes play ping-pong through two eventcounts: each turn sleeps until the other's.
TEST(eventcount, processes_lose_no_wake_up_across_fork) {
  constexpr std::uint32_t rounds = 5'000;
  struct table {
    detail::eventcount to[2];
    std::atomic<std::uint32_t> ball{0};  // even: side 0's turn, odd: side 1's
  };
  shared_region region(sizeof(table));
  auto* t = new (region.data()) table{};
  const std::string problems = run_in_children(
      2,
      [&](unsigned side) {
        for (std::uint32_t i = 0; i < rounds; ++i) {
          const std::uint32_t mine = 2 * i + side;
          while (t->ball.load() != mine) t->to[side].sleep_unless([&] { return t->ball.load() == mine; });
          t->ball.store(mine + 1);
          t->to[1 - side].notify_one();
        }
        return 0;
      },
      30s);
  ASSERT_EQ(problems, "");
  EXPECT_EQ(t->ball.load(), 2 * rounds);
}

// ---- the processes' channel, barrier and gate (processes/futex_sync.hpp) ----

// A message: a sequence number, then a checksum of it, then bytes that depend on both.
constexpr std::uint32_t message_bytes = 32;
void fill_message(std::byte* m, std::uint64_t seq) {
  const std::uint64_t words[4] = {seq, seq * 0x9e3779b97f4a7c15ULL, ~seq, seq ^ 0x5555};
  std::memcpy(m, words, sizeof(words));
}
bool message_is(const std::byte* m, std::uint64_t seq) {
  std::byte expected[message_bytes];
  fill_message(expected, seq);
  return std::memcmp(m, expected, message_bytes) == 0;
}

struct shared_channel {
  static constexpr std::uint32_t capacity = 4;
  detail::futex_channel channel;
  alignas(64) std::byte slots[capacity * message_bytes];
  shared_channel() : channel(slots, capacity, message_bytes) {}
};

TEST(futex_channel, is_fifo_and_says_when_a_send_found_it_full) {
  shared_region region(sizeof(shared_channel));
  auto* c = new (region.data()) shared_channel{};
  std::byte m[message_bytes];
  for (std::uint64_t seq = 0; seq < shared_channel::capacity; ++seq) {
    fill_message(m, seq);
    EXPECT_FALSE(c->channel.send(m)) << "room left, yet reported full";
  }
  // Full: the next send waits for a receive (from another thread) and says it was full.
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    std::byte extra[message_bytes];
    fill_message(extra, shared_channel::capacity);
    EXPECT_TRUE(c->channel.send(extra));
    sent.store(true);
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(sent.load()) << "a send into a full channel did not wait";
  for (std::uint64_t seq = 0; seq <= shared_channel::capacity; ++seq) {
    c->channel.receive(m);
    EXPECT_TRUE(message_is(m, seq)) << "message " << seq << " out of order or damaged";
  }
  sender.join();
  EXPECT_TRUE(sent.load());
}

TEST(futex_channel, carries_every_message_in_order_across_fork) {
  constexpr std::uint64_t messages = 100'000;
  struct table {
    shared_channel c;
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> damaged{0};
    std::atomic<std::uint64_t> found_full{0};
  };
  shared_region region(sizeof(table));
  auto* t = new (region.data()) table{};
  const std::string problems = run_in_children(2, [&](unsigned side) {
    std::byte m[message_bytes];
    for (std::uint64_t seq = 0; seq < messages; ++seq) {
      if (side == 0) {
        fill_message(m, seq);
        if (t->c.channel.send(m)) t->found_full.fetch_add(1);
      } else {
        t->c.channel.receive(m);
        if (!message_is(m, seq)) t->damaged.fetch_add(1);
        t->received.fetch_add(1);
      }
    }
    return 0;
  });
  ASSERT_EQ(problems, "");
  EXPECT_EQ(t->received.load(), messages);
  EXPECT_EQ(t->damaged.load(), 0u);
  EXPECT_LE(t->found_full.load(), messages);
}

// Every party counts itself in before each round's barrier; after round r the count is at least
// every party's r + 1 arrivals and at most one round ahead.
TEST(futex_barrier, holds_every_process_until_all_arrived_round_after_round) {
  constexpr std::uint32_t parties = 3, rounds = 300;
  struct table {
    detail::futex_barrier barrier{parties, std::chrono::nanoseconds{0}};
    std::atomic<std::uint32_t> arrivals{0};
    std::atomic<std::uint32_t> early{0};
  };
  shared_region region(sizeof(table));
  auto* t = new (region.data()) table{};
  const std::string problems = run_in_children(parties, [&](unsigned) {
    for (std::uint32_t r = 0; r < rounds; ++r) {
      t->arrivals.fetch_add(1);
      t->barrier.arrive_and_wait();
      const std::uint32_t seen = t->arrivals.load();
      if (seen < parties * (r + 1) || seen > parties * (r + 2)) t->early.fetch_add(1);
    }
    return 0;
  });
  ASSERT_EQ(problems, "");
  EXPECT_EQ(t->arrivals.load(), parties * rounds);
  EXPECT_EQ(t->early.load(), 0u) << "a party passed the barrier before every party arrived";
}

TEST(futex_gate, lets_waiters_go_or_calls_them_off) {
  for (bool run : {true, false}) {
    shared_region region(sizeof(detail::futex_gate));
    auto* gate = new (region.data()) detail::futex_gate{};
    std::atomic<int> answers{0};
    std::atomic<int> went{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.emplace_back([&] {
        went.fetch_add(gate->wait() ? 1 : 0);
        answers.fetch_add(1);
      });
    }
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(answers.load(), 0) << "a waiter passed a closed gate";
    gate->open(run);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(went.load(), run ? 3 : 0);
  }
}

// ---- the threads' blocking primitives (threads/blocking_sync.hpp) ----

TEST(blocking_channel, is_fifo_and_says_when_a_send_found_it_full) {
  detail::blocking_channel channel;
  channel.init(2, message_bytes);
  std::byte m[message_bytes];
  fill_message(m, 0);
  EXPECT_FALSE(channel.send(m));
  fill_message(m, 1);
  EXPECT_FALSE(channel.send(m));
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    std::byte extra[message_bytes];
    fill_message(extra, 2);
    EXPECT_TRUE(channel.send(extra));
    sent.store(true);
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(sent.load()) << "a send into a full channel did not wait";
  for (std::uint64_t seq = 0; seq < 3; ++seq) {
    channel.receive(m);
    EXPECT_TRUE(message_is(m, seq)) << "message " << seq;
  }
  sender.join();
}

// A pipeline of threads over small channels: every message arrives whole and in order.
TEST(blocking_channel, threads_carry_every_message_in_order) {
  constexpr std::uint64_t messages = 50'000;
  constexpr int stages = 3;
  std::vector<detail::blocking_channel> channels(stages + 1);
  for (auto& c : channels) c.init(3, message_bytes);
  std::atomic<std::uint64_t> damaged{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    std::byte m[message_bytes];
    for (std::uint64_t seq = 0; seq < messages; ++seq) {
      fill_message(m, seq);
      channels[0].send(m);
    }
  });
  for (int s = 0; s < stages; ++s) {
    threads.emplace_back([&, s] {
      std::byte m[message_bytes];
      for (std::uint64_t seq = 0; seq < messages; ++seq) {
        channels[s].receive(m);
        channels[s + 1].send(m);
      }
    });
  }
  std::uint64_t received = 0;
  std::byte m[message_bytes];
  for (std::uint64_t seq = 0; seq < messages; ++seq) {
    channels[stages].receive(m);
    if (!message_is(m, seq)) damaged.fetch_add(1);
    ++received;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(received, messages);
  EXPECT_EQ(damaged.load(), 0u);
}

TEST(hold_barrier, holds_every_thread_until_all_arrived_and_for_the_hold) {
  constexpr std::uint32_t parties = 4, rounds = 200;
  detail::hold_barrier barrier(parties, detail::hold_step{std::chrono::microseconds{50}});
  std::atomic<std::uint32_t> arrivals{0};
  std::atomic<std::uint32_t> early{0};
  std::vector<std::thread> threads;
  const auto start = clock_type::now();
  for (std::uint32_t p = 0; p < parties; ++p) {
    threads.emplace_back([&] {
      for (std::uint32_t r = 0; r < rounds; ++r) {
        arrivals.fetch_add(1);
        barrier.arrive_and_wait();
        const std::uint32_t seen = arrivals.load();
        if (seen < parties * (r + 1) || seen > parties * (r + 2)) early.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(early.load(), 0u);
  EXPECT_GE(clock_type::now() - start, rounds * std::chrono::microseconds{50});
}

TEST(start_gate, lets_waiters_go_or_calls_them_off) {
  for (bool run : {true, false}) {
    detail::start_gate gate;
    std::atomic<int> went{0};
    std::atomic<int> answers{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.emplace_back([&] {
        went.fetch_add(gate.wait() ? 1 : 0);
        answers.fetch_add(1);
      });
    }
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(answers.load(), 0);
    gate.open(run);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(went.load(), run ? 3 : 0);
  }
}

// ---- /proc/self/maps (processes/maps_reader.hpp) ----

TEST(maps_reader, keeps_shared_mappings_and_skips_what_it_cannot_read) {
  std::istringstream maps(
      "55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 1234  /usr/bin/cmbench\n"
      "7f0000000000-7f0000100000 rw-s 00000000 00:01 99    /dev/zero (deleted)\n"
      "garbage line\n"
      "7f00zz000000-7f0000200000 rw-s 00000000 00:01 1\n"
      "7f0000300000-7f0000400000 r--s 00000000 00:05 7     /memfd:x (deleted)\n"
      "7f0000500000-7f0000500000 rw-s 00000000 00:05 7\n");
  const auto mappings = detail::parse_shared_mappings(maps);
  ASSERT_EQ(mappings.size(), 2u);
  EXPECT_EQ(mappings[0].start, 0x7f0000000000u);
  EXPECT_EQ(mappings[0].end, 0x7f0000100000u);
  EXPECT_EQ(mappings[1].start, 0x7f0000300000u);
  EXPECT_TRUE(detail::in_shared_mapping(mappings, reinterpret_cast<void*>(0x7f00000fffffu)));
  EXPECT_FALSE(detail::in_shared_mapping(mappings, reinterpret_cast<void*>(0x7f0000100000u)));
  EXPECT_FALSE(detail::in_shared_mapping(mappings, reinterpret_cast<void*>(0x55d0c0a00000u)));
}

TEST(maps_reader, finds_a_region_this_process_maps_shared) {
  shared_region shared(4096);
  std::vector<int> private_memory(16);
  const auto mappings = detail::read_shared_mappings();
  EXPECT_TRUE(detail::in_shared_mapping(mappings, shared.data()));
  EXPECT_FALSE(detail::in_shared_mapping(mappings, private_memory.data()));
}

// ---- the parked-unit interpreter (parked/graph_interpreter.hpp), driven by hand ----

// A runtime that only records what the interpreter asks of it; the test runs the units.
struct recording_runtime {
  using mutex_type = detail::no_lock;
  std::vector<std::uint32_t> scheduled;
  std::vector<std::uint32_t> resumed_all_but;
  int finished_calls = 0;
  void schedule(std::uint32_t unit) { scheduled.push_back(unit); }
  void resume_all_but(std::uint32_t unit) { resumed_all_but.push_back(unit); }
  void all_finished() { ++finished_calls; }
};

// Unit 0 sends 1, 2, 3 on channel 0 (capacity 1); unit 1 receives them and returns their sum.
unit_action sender_receiver_step(void*, unit_state& s, std::byte* message) {
  if (s.unit == 0) {
    if (s.pc < 3) {
      const std::uint64_t value = ++s.pc;
      std::memcpy(message, &value, sizeof(value));
      return {unit_op::send, 0};
    }
    return {unit_op::finish};
  }
  if (s.pc > 0) {
    std::uint64_t value = 0;
    std::memcpy(&value, message, sizeof(value));
    s.result += value;
  }
  if (s.pc++ < 3) return {unit_op::receive, 0};
  return {unit_op::finish};
}

TEST(parked_interpreter, parks_on_a_full_or_empty_channel_and_hands_the_peer_to_the_runtime) {
  const graph_job job{2, 1, 1, 16, 0, {}, &sender_receiver_step, nullptr};
  detail::heap_graph<detail::no_lock> storage(job, "test");
  recording_runtime runtime;
  detail::graph_interpreter<recording_runtime, detail::heap_graph<detail::no_lock>> graph(storage, runtime);
  graph.run(0);  // sends 1, parks on the full channel sending 2
  EXPECT_EQ(runtime.scheduled, std::vector<std::uint32_t>{});
  graph.run(1);  // takes 1 (readying 0), parks on the empty channel
  EXPECT_EQ(runtime.scheduled, (std::vector<std::uint32_t>{0}));
  graph.run(0);  // sends 2 (readying 1), parks sending 3
  graph.run(1);  // takes 2 (readying 0), parks
  graph.run(0);  // sends 3 (readying 1), finishes
  EXPECT_EQ(runtime.finished_calls, 0);
  graph.run(1);  // takes 3, finishes: the last
  EXPECT_EQ(runtime.scheduled, (std::vector<std::uint32_t>{0, 1, 0, 1}));
  EXPECT_EQ(runtime.finished_calls, 1);
  EXPECT_TRUE(graph.all_finished());
  const graph_result result = graph.result();
  EXPECT_EQ(result.checksum, 1u + 2u + 3u);
  EXPECT_EQ(result.blocked_sends, 2u);  // sends 2 and 3 found the channel full
}

// A unit run again while its channel is still full (a runtime may run a unit spuriously) parks
// again, and its send is counted as blocked once.
TEST(parked_interpreter, a_retried_send_is_counted_once) {
  const graph_job job{2, 1, 1, 16, 0, {}, &sender_receiver_step, nullptr};
  detail::heap_graph<detail::no_lock> storage(job, "test");
  recording_runtime runtime;
  detail::graph_interpreter<recording_runtime, detail::heap_graph<detail::no_lock>> graph(storage, runtime);
  graph.run(0);
  graph.run(0);
  graph.run(0);
  EXPECT_EQ(graph.result().blocked_sends, 1u);
  EXPECT_EQ(runtime.scheduled, std::vector<std::uint32_t>{});
}

unit_action arrive_twice_step(void*, unit_state& s, std::byte*) {
  if (s.pc++ < 2) return {unit_op::arrive};
  s.result = s.unit + 1;
  return {unit_op::finish};
}

TEST(parked_interpreter, the_last_arriver_resumes_every_other_unit_round_after_round) {
  const graph_job job{3, 0, 1, 16, 0, {}, &arrive_twice_step, nullptr};
  detail::heap_graph<detail::no_lock> storage(job, "test");
  recording_runtime runtime;
  detail::graph_interpreter<recording_runtime, detail::heap_graph<detail::no_lock>> graph(storage, runtime);
  graph.run(1);
  graph.run(0);
  EXPECT_EQ(runtime.resumed_all_but, std::vector<std::uint32_t>{});
  graph.run(2);  // last to arrive: resumes 0 and 1, then arrives again itself
  EXPECT_EQ(runtime.resumed_all_but, (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(storage.counters().arrived.load(), 1u);  // the second round: unit 2 is in
  graph.run(0);
  graph.run(1);  // last of the second round: resumes 0 and 2, then finishes
  EXPECT_EQ(runtime.resumed_all_but, (std::vector<std::uint32_t>{2, 1}));
  EXPECT_EQ(storage.counters().arrived.load(), 0u);
  graph.run(0);
  EXPECT_EQ(runtime.finished_calls, 0);
  graph.run(2);
  EXPECT_EQ(runtime.finished_calls, 1);
  EXPECT_EQ(graph.result().checksum, 1u + 2u + 3u);
}

}  // namespace
}  // namespace cmbench
