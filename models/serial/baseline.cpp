// serial/baseline: one thread, no concurrency. The reference answer and the 1x line.
#include <cstring>
#include <deque>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "models/bulk_task.hpp"
#include "models/memory_limits.hpp"
#include "models/model.hpp"

namespace cmbench {
namespace {

std::uint64_t serial_tree(const tree_job& job, std::uint64_t first, std::uint64_t size) {
  if (size == 1) return job.leaf_value(first);
  const std::uint64_t child = size / job.fanout;
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < job.fanout; ++c) sum += serial_tree(job, first + c * child, child);
  return sum;
}

// The graph's units as state machines interleaved by one run queue on the calling thread: a unit
// runs until it must wait (a full or empty channel, the barrier), parks on that channel and is
// queued again when another unit changes it. Deterministic, no concurrency.
class cooperative_graph {
 public:
  explicit cooperative_graph(const graph_job& job)
      : job_(fits_in_memory(job)),
        units_(job.units),
        messages_(std::size_t{job.units} * job.message_bytes / 8),
        channels_(job.channels) {
    for (std::uint32_t u = 0; u < job.units; ++u) {
      units_[u].state.unit = u;
      ready_.push_back(u);
    }
    for (auto& c : channels_) c.slots.resize(std::size_t{job.capacity} * job.message_bytes / 8);
  }

  // Every unit's record, message and run-queue entry, every channel's slots: all touched as the
  // units start, so a graph past the memory budget is refused before the OOM killer meets it.
  static const graph_job& fits_in_memory(const graph_job& job) {
    const std::uint64_t bytes =
        std::uint64_t{job.units} * (sizeof(unit_record) + job.message_bytes + 2 * sizeof(std::uint32_t)) +
        std::uint64_t{job.channels} * (sizeof(channel) + std::uint64_t{job.capacity} * job.message_bytes);
    check_memory_need("serial/baseline",
                      "a graph of " + with_thousands(job.units) + " units and " + with_thousands(job.channels) +
                          " channels (unit records, messages, channel slots)",
                      bytes);
    return job;
  }

  graph_result run() {
    while (!ready_.empty()) {
      const std::uint32_t u = ready_.front();
      ready_.pop_front();
      run_unit(u);
    }
    if (finished_ != job_.units) throw std::logic_error("graph job deadlocked: a unit waits forever");
    return result_;
  }

 private:
  struct unit_record {
    unit_state state;
    unit_action pending{};  // the operation it parked on, retried when woken
    bool started = false;
    bool parked_before = false;  // `pending` is being retried after a wake-up
  };
  struct channel {
    std::vector<std::uint64_t> slots;  // capacity messages
    std::uint32_t head = 0, size = 0;
    std::deque<std::uint32_t> receivers, senders;  // parked units
  };

  std::byte* message_of(std::uint32_t u) {
    return reinterpret_cast<std::byte*>(messages_.data() + std::size_t{u} * job_.message_bytes / 8);
  }
  std::byte* slot_of(channel& c, std::uint32_t i) {
    return reinterpret_cast<std::byte*>(c.slots.data() + std::size_t{i} * job_.message_bytes / 8);
  }
  void wake(std::deque<std::uint32_t>& parked) {
    if (parked.empty()) return;
    ready_.push_back(parked.front());
    parked.pop_front();
  }

  void run_unit(std::uint32_t u) {
    unit_record& r = units_[u];
    std::byte* message = message_of(u);
    unit_action action = r.started ? r.pending : job_.next(r.state, message);
    r.started = true;
    for (;;) {
      switch (action.op) {
        case unit_op::send: {
          channel& c = channels_[action.target];
          if (c.size == job_.capacity) {
            if (!r.parked_before) ++result_.blocked_sends;  // once per send, however often it parks
            park(r, action, c.senders, u);
            return;
          }
          std::memcpy(slot_of(c, (c.head + c.size) % job_.capacity), message, job_.message_bytes);
          ++c.size;
          wake(c.receivers);
          break;
        }
        case unit_op::receive: {
          channel& c = channels_[action.target];
          if (c.size == 0) {
            park(r, action, c.receivers, u);
            return;
          }
          std::memcpy(message, slot_of(c, c.head), job_.message_bytes);
          c.head = (c.head + 1) % job_.capacity;
          --c.size;
          wake(c.senders);
          break;
        }
        case unit_op::lock:
        case unit_op::unlock:
          break;  // one thread: nothing else runs between a unit's lock and unlock
        case unit_op::arrive:
          if (!r.parked_before) {
            if (++arrived_ < job_.units) {
              park(r, action, barrier_, u);
              return;
            }
            arrived_ = 0;  // the next arrival starts the next round
            if (job_.hold.count() > 0) std::this_thread::sleep_for(job_.hold);
            while (!barrier_.empty()) wake(barrier_);
          }
          break;
        case unit_op::finish:
          result_.checksum += r.state.result;
          ++finished_;
          return;
      }
      r.parked_before = false;
      action = job_.next(r.state, message);
    }
  }

  void park(unit_record& r, unit_action action, std::deque<std::uint32_t>& on, std::uint32_t u) {
    r.pending = action;
    r.parked_before = true;
    on.push_back(u);
  }

  const graph_job& job_;
  std::vector<unit_record> units_;
  std::vector<std::uint64_t> messages_;  // one message buffer per unit, 8-byte aligned
  std::vector<channel> channels_;
  std::deque<std::uint32_t> ready_;
  std::deque<std::uint32_t> barrier_;
  std::uint32_t arrived_ = 0;
  std::uint32_t finished_ = 0;
  graph_result result_;
};

}  // namespace

class serial_baseline {
 public:
  static constexpr model_info info{
      "serial", "baseline", "one thread, no concurrency: the reference and the 1x line",
      "tasks run one after another on the calling thread; waits are blocking sleeps; a tree unit "
      "is a function call; graph units are state machines interleaved by one run queue on the "
      "calling thread, parked on a channel until another unit changes it (no locks needed)",
      {}, wait_capacity::one};

  explicit serial_baseline(const model_config& /*config*/) {}

  std::uint64_t run_bulk(const bulk_job& job) {
    std::uint64_t sum = 0;
    for (std::uint64_t task = 0; task < job.tasks; ++task) sum += run_blocking_task(job, task);
    return sum;
  }

  std::uint64_t run_tree(const tree_job& job) { return serial_tree(job, 0, job.leaves); }

  graph_result run_graph(const graph_job& job) {
    try {
      return cooperative_graph(job).run();
    } catch (const std::bad_alloc&) {
      throw limit_error("serial/baseline: out of memory in a graph of " + with_thousands(job.units) +
                        " units (" + describe_address_space() + ")");
    }
  }
};

CMBENCH_REGISTER_MODEL(serial_baseline);

}  // namespace cmbench
