// Every registered model runs the same graph jobs (units joined by channels, a mutex, the
// barrier) and must give serial/baseline's answer, whatever its number of workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "models/model.hpp"
#include "tests/every_model.hpp"
#include "workloads/kernels.hpp"
#include "models/shared_region.hpp"

namespace cmbench {
namespace {

// A message is filled from its first word, so a receiver notices a message not copied whole.
void fill(std::byte* message, std::uint32_t bytes, std::uint64_t value) {
  for (std::uint32_t i = 0; i < bytes / 8; ++i) {
    const std::uint64_t word = i == 0 ? value : kernels::mix64(value + i);
    std::memcpy(message + 8 * i, &word, 8);
  }
}
bool intact(const std::byte* message, std::uint32_t bytes) {
  std::uint64_t value = 0;
  std::memcpy(&value, message, 8);
  for (std::uint32_t i = 1; i < bytes / 8; ++i) {
    std::uint64_t word = 0;
    std::memcpy(&word, message + 8 * i, 8);
    if (word != kernels::mix64(value + i)) return false;
  }
  return true;
}
std::uint64_t first_word(const std::byte* message) {
  std::uint64_t v = 0;
  std::memcpy(&v, message, 8);
  return v;
}

// A chain: unit 0 sends `items` values through units 1..stages to the last unit, which folds them
// in order. A message that arrives torn or out of order changes the result.
struct chain_context {
  std::uint32_t stages;
  std::uint64_t items;
  std::uint32_t bytes;
};

unit_action chain_step(void* context, unit_state& s, std::byte* message) {
  const auto& c = *static_cast<const chain_context*>(context);
  const std::uint32_t last = c.stages + 1;
  if (s.unit == 0) {  // producer: sends items 0..items-1 into channel 0
    if (s.count == c.items) return {unit_op::finish};
    fill(message, c.bytes, kernels::mix64(s.count++));
    return {unit_op::send, 0};
  }
  if (s.pc == 1) {  // a message arrived
    if (!intact(message, c.bytes)) s.result += 0xdead;
    const std::uint64_t v = first_word(message);
    if (s.unit == last) {
      s.value = kernels::mix64(s.value ^ v);
    } else {
      fill(message, c.bytes, v + s.unit);
      s.pc = 2;
      return {unit_op::send, s.unit};
    }
  }
  if (++s.count > c.items) {
    if (s.unit == last) s.result += s.value;
    return {unit_op::finish};
  }
  s.pc = 1;
  return {unit_op::receive, s.unit - 1};
}

std::uint64_t chain_expected(const chain_context& c) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < c.items; ++i) {
    std::uint64_t v = kernels::mix64(i);
    for (std::uint32_t u = 1; u <= c.stages; ++u) v += u;
    acc = kernels::mix64(acc ^ v);
  }
  return acc;
}

// A token ring: unit u receives on channel u and sends on channel (u + 1) % units. Unit 0 sends
// token 0; the unit that receives token t (hop t + 1) sends t + 1. The unit that makes the last
// hop sends a stop token, marked with its own index, once round the ring so every unit finishes.
struct ring_context {
  std::uint32_t units;
  std::uint64_t hops;
  std::uint32_t bytes;
};
constexpr std::uint64_t stop_base = std::uint64_t{1} << 63;

unit_action ring_step(void* context, unit_state& s, std::byte* message) {
  const auto& c = *static_cast<const ring_context*>(context);
  const std::uint32_t next = (s.unit + 1) % c.units;
  switch (s.pc) {
    case 0:  // start
      if (s.unit == 0) {
        fill(message, c.bytes, 0);
        s.pc = 3;
        return {unit_op::send, next};
      }
      s.pc = 1;
      return {unit_op::receive, s.unit};
    case 1: {  // a token arrived
      if (!intact(message, c.bytes)) s.result += 0xdead;
      const std::uint64_t token = first_word(message);
      s.pc = 2;
      if (token >= stop_base) {
        if (next == token - stop_base) return {unit_op::finish};
        return {unit_op::send, next};  // forward the stop token as it came
      }
      if (token + 1 == c.hops) {
        s.result += kernels::mix64(token) ^ s.unit;
        fill(message, c.bytes, stop_base + s.unit);
        return {unit_op::send, next};
      }
      fill(message, c.bytes, token + 1);
      s.pc = 3;
      return {unit_op::send, next};
    }
    case 3:  // sent a live token: wait for the next
      s.pc = 1;
      return {unit_op::receive, s.unit};
  }
  return {unit_op::finish};
}

// Contention: every unit adds to a shared counter `updates` times with a read-modify-write that
// yields in the middle, so a mutex that does not exclude loses updates.
struct shared_counter {
  std::uint64_t value;
  std::uint64_t updates;
};

unit_action contention_step(void* context, unit_state& s, std::byte*) {
  auto& c = *static_cast<shared_counter*>(context);
  switch (s.pc) {
    case 0:
      if (s.count == c.updates) return {unit_op::finish};
      s.pc = 1;
      return {unit_op::lock, 0};
    case 1: {
      const std::uint64_t seen = c.value;
      if (s.count % 7 == 0) std::this_thread::yield();
      c.value = seen + 1;
      ++s.count;
      s.pc = 0;
      return {unit_op::unlock, 0};
    }
  }
  return {unit_op::finish};
}

// The barrier: each unit counts itself in under the mutex, arrives, then reads the count, which
// must be every unit. Each unit's result is the count it saw.
struct barrier_context {
  std::uint64_t arrived;
};

unit_action barrier_step(void* context, unit_state& s, std::byte*) {
  auto& c = *static_cast<barrier_context*>(context);
  switch (s.pc++) {
    case 0: return {unit_op::lock, 0};
    case 1: ++c.arrived; return {unit_op::unlock, 0};
    case 2: return {unit_op::arrive};
    case 3: return {unit_op::lock, 0};
    case 4: s.result = c.arrived; return {unit_op::unlock, 0};
  }
  return {unit_op::finish};
}

class graph_conformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<model_instance> make(unsigned workers) {
    const model_entry* entry = find_model(GetParam());
    EXPECT_NE(entry, nullptr);
    return entry->make(model_config{workers, 0});
  }

  // The context lives in shared memory mapped before the model is made (as the harness builds a
  // workload's input before the model), so processes a model forks share it.
  template <class T>
  T* place(const T& value) {
    static_assert(sizeof(T) <= context_bytes);
    return new (region_.data()) T(value);
  }

  static constexpr std::size_t context_bytes = 1 << 16;
  shared_region region_{context_bytes};
};

TEST_P(graph_conformance, chain_delivers_every_message_whole_and_in_order) {
  for (unsigned workers : {1u, 2u, 4u}) {
    for (std::uint32_t capacity : {1u, 4u}) {
      auto model = make(workers);
      auto* c = place(chain_context{3, 500, 64});
      graph_job job{c->stages + 2, c->stages + 1, capacity, c->bytes, 0, {}, &chain_step, c};
      const graph_result r = model->run_graph(job);
      EXPECT_EQ(r.checksum, chain_expected(*c)) << "workers=" << workers << " capacity=" << capacity;
      EXPECT_LE(r.blocked_sends, c->items * (c->stages + 1));
    }
  }
}

TEST_P(graph_conformance, ring_passes_the_token_through_every_unit) {
  for (unsigned workers : {1u, 2u}) {
    for (std::uint32_t units : {2u, 5u, 101u}) {
      auto model = make(workers);
      auto* c = place(ring_context{units, 3000, 32});
      graph_job job{units, units, 1, c->bytes, 0, {}, &ring_step, c};
      EXPECT_EQ(model->run_graph(job).checksum, kernels::mix64(c->hops - 1) ^ (c->hops % units))
          << "workers=" << workers << " units=" << units;
    }
  }
}

TEST_P(graph_conformance, mutex_excludes_across_units) {
  for (unsigned workers : {1u, 3u}) {
    auto model = make(workers);
    auto* c = place(shared_counter{0, 300});
    graph_job job{6, 0, 1, 16, 1, {}, &contention_step, c};
    EXPECT_EQ(model->run_graph(job).checksum, 0u);
    EXPECT_EQ(c->value, 6u * 300u) << "workers=" << workers;
  }
}

TEST_P(graph_conformance, barrier_holds_every_unit_until_all_arrived) {
  for (unsigned workers : {1u, 2u}) {
    auto model = make(workers);
    auto* c = place(barrier_context{0});
    graph_job job{40, 0, 1, 16, 1, std::chrono::milliseconds{5}, &barrier_step, c};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(model->run_graph(job).checksum, 40u * 40u) << "workers=" << workers;
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds{5});
  }
}

TEST_P(graph_conformance, model_is_reusable_across_graph_jobs) {
  auto model = make(2);
  for (int i = 0; i < 3; ++i) {
    auto* c = place(chain_context{1, 50, 16});
    graph_job job{3, 2, 2, 16, 0, {}, &chain_step, c};
    EXPECT_EQ(model->run_graph(job).checksum, chain_expected(*c));
  }
}

// Every model makes the one check of models/graph_validation.hpp, and stays usable after it.
TEST_P(graph_conformance, a_job_outside_the_contract_is_refused) {
  auto model = make(2);
  auto* c = place(chain_context{1, 50, 16});
  const graph_job valid{3, 2, 2, 16, 0, {}, &chain_step, c};
  graph_job no_room = valid;
  no_room.capacity = 0;
  graph_job short_message = valid;
  short_message.message_bytes = 8;
  graph_job ragged_message = valid;
  ragged_message.message_bytes = 20;
  graph_job no_step = valid;
  no_step.step = nullptr;
  for (const graph_job& job : {no_room, short_message, ragged_message, no_step}) {
    EXPECT_THROW(model->run_graph(job), std::invalid_argument)
        << "capacity=" << job.capacity << " message_bytes=" << job.message_bytes;
  }
  EXPECT_EQ(model->run_graph(valid).checksum, chain_expected(*c));
}

INSTANTIATE_TEST_SUITE_P(all, graph_conformance, ::testing::ValuesIn(test_support::model_names()),
                         test_support::model_test_name{});

}  // namespace
}  // namespace cmbench
