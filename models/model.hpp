// The backend contract: what every concurrency model provides to the workloads.
//
// A model is constructed (its setup: building a pool, forking workers, starting event loops,
// timed separately by the harness), then asked to run jobs inside the measured region. Jobs are
// plain data plus function pointers, so a job built before the model was constructed is valid in
// every process a model forks (same binary, same address space layout, memory inherited).
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "models/remote.hpp"

namespace cmbench {

// What the workload asks of the model's resources.
struct model_config {
  unsigned workers = 1;       // OS threads / processes / event loops the model may use at once
  std::uint64_t max_alive = 0;  // spawn models: at most this many units alive at once (0: no cap)
};

// A batch of independent tasks: the shape of `cpu`, `io` and `mixed`.
// Task i runs `rounds` rounds; a round first waits `wait` with the model's natural wait (a
// blocking sleep for threads and processes, a timer for event loops; skipped when zero), then
// runs compute(context, i, round). The batch result is the wrapping sum of every round's value.
//
// The workload watches every wait: right before a model starts a round's wait it calls
// begin_wait(task, round), and it calls run_round(task, round) as soon as the wait has ended. The
// workload checks that each wait lasted at least `wait` and counts how many were in flight at once,
// so a model that skips, shortens or serialises its waits fails verification.
struct bulk_job {
  std::uint64_t tasks = 0;
  std::uint32_t rounds = 1;
  std::chrono::nanoseconds wait{0};
  std::uint64_t (*compute)(const void* context, std::uint64_t task, std::uint32_t round) = nullptr;
  const void* context = nullptr;
  void (*wait_started)(const void* context, std::uint64_t task, std::uint32_t round) = nullptr;

  std::uint64_t run_round(std::uint64_t task, std::uint32_t round) const {
    return compute(context, task, round);
  }
  void begin_wait(std::uint64_t task, std::uint32_t round) const {
    if (wait_started != nullptr) wait_started(context, task, round);
  }
};

// A skynet tree: the root unit covers leaves [0, leaves); a unit covering size > 1 leaves creates
// `fanout` child units of size / fanout each, waits for all of them and returns the sum of their
// results; a unit of size 1 returns leaf(context, its leaf index), a value the workload mixes from
// the index, so every leaf must really run for the sum to come out right. `leaves` is a power of
// `fanout`.
struct tree_job {
  std::uint64_t leaves = 1;
  std::uint32_t fanout = 10;
  std::uint64_t (*leaf)(const void* context, std::uint64_t index) = nullptr;
  const void* context = nullptr;

  std::uint64_t leaf_value(std::uint64_t index) const { return leaf(context, index); }
};

// Total number of units a tree job creates (root included).
constexpr std::uint64_t tree_units(const tree_job& job) {
  std::uint64_t units = 0;
  for (std::uint64_t level = 1; level <= job.leaves; level *= job.fanout) {
    units += level;
    if (job.fanout < 2) break;
  }
  return units;
}

// Units joined by channels, mutexes and one barrier: the shape of pingpong, ring, pipeline,
// contention and memory. Each unit is a small state machine the workload writes once (`step`);
// the model calls step(), performs the operation it returns with the model's own primitive (a
// blocking channel between threads or processes, an Asio channel between coroutines, a parked
// actor in a pool), then calls step() again, until the unit finishes. The workload never sees the
// model's primitives and the model never sees the workload's logic, so every model does the same
// work by construction.
enum class unit_op : std::uint8_t {
  send,     // copy the unit's message into channel `target`, waiting while the channel is full
  receive,  // wait until channel `target` holds a message, then move the oldest into the unit's message
  lock,     // acquire mutex `target`; the unit holds it until its own unlock
  unlock,   // release mutex `target`
  arrive,   // the barrier of all units: wait until every unit has arrived; the last to arrive
            // first waits `hold` with the model's natural wait, then every unit goes on (the
            // barrier is then ready for the next round)
  finish,   // the unit is done; its state's `result` joins the job's wrapping sum
};

struct unit_action {
  unit_op op = unit_op::finish;
  std::uint32_t target = 0;  // the channel or mutex
};

// Everything a unit keeps between steps: plain words the workload owns, so a model may hold it
// anywhere (a thread's stack, a coroutine frame, shared memory between processes). The last word
// is the workloads' shared graph run's own (workloads/graph_support.hpp): it counts, per unit, the
// messages received and how many of them were sent from another OS thread or process.
struct unit_state {
  std::uint32_t unit = 0;  // this unit's index, set by the model before the first step
  std::uint32_t pc = 0;    // the workload's program counter, 0 before the first step
  std::uint64_t count = 0;
  std::uint64_t value = 0;
  std::uint64_t stamp = 0;
  std::uint64_t result = 0;  // read by the model when the unit finishes
  std::uint64_t handoffs = 0;
};

// The rules every model keeps, and every workload relies on:
// - Every unit exists from the start of the job and runs until it finishes; a model creates each
//   unit as its own kind of unit (a thread, a process, a coroutine, a parked actor of a pool).
// - Channel c is a bounded FIFO of `capacity` messages of `message_bytes` bytes; a message is
//   copied in on send and out on receive (into the receiving unit's own message buffer, 8-byte
//   aligned, `message_bytes` long, zeroed before the unit's first step). Any unit may use any
//   channel; a workload gives each channel one sender and one receiver.
// - A unit never sends, receives or arrives while it holds a mutex, so a pool may block a worker
//   on a mutex but must park (not block) a unit waiting on a channel or the barrier: the job
//   completes whatever the number of workers.
// - step() runs in whatever thread or process runs the unit; the context is in memory every
//   process of the model shares (the workload maps it MAP_SHARED), and shared state in it is
//   touched only under a mutex of the job. step() allocates nothing and takes no lock of its
//   own, so it may run in a forked child of a multi-threaded parent.
struct graph_job {
  std::uint32_t units = 0;
  std::uint32_t channels = 0;
  std::uint32_t capacity = 1;        // messages per channel, at least 1
  std::uint32_t message_bytes = 16;  // at least 16, a multiple of 8
  std::uint32_t mutexes = 0;
  std::chrono::nanoseconds hold{0};  // arrive: how long the last unit to arrive holds the rest
  unit_action (*step)(void* context, unit_state& state, std::byte* message) = nullptr;
  void* context = nullptr;

  unit_action next(unit_state& state, std::byte* message) const { return step(context, state, message); }
};

struct graph_result {
  std::uint64_t checksum = 0;       // wrapping sum of every unit's result
  std::uint64_t blocked_sends = 0;  // sends that found their channel full and had to wait
};

// How many of a bulk job's waits a model can hold at once: one at a time (serial), one per
// worker (its W threads or processes block in them), one per task as it creates a unit for each
// (a thread or a process per task, at most model_config::max_alive alive), or every task at once
// (coroutines: all started in one turn of the loop, max_alive not applied).
enum class wait_capacity : std::uint8_t { one, workers, tasks, every_task };

constexpr std::string_view wait_capacity_name(wait_capacity waits) {
  switch (waits) {
    case wait_capacity::one: return "one";
    case wait_capacity::workers: return "workers";
    case wait_capacity::every_task: return "every_task";
    case wait_capacity::tasks: break;
  }
  return "tasks";
}

// How a model runs the work, one field per primitive: the structure `cmbench list` prints as a
// table and every report carries in context.models. Each field is a short phrase; together they
// replace a paragraph of prose, so two models can be compared field by field.
struct mechanism_info {
  std::string_view summary;  // one line: the model in a nutshell
  std::string_view unit;     // what runs one unit: a bulk task, a tree unit, a graph unit
  std::string_view tree;     // how a tree unit creates its children and waits for them
  std::string_view channel;  // a graph channel: the buffer, and how a full or empty one waits
  std::string_view mutex;    // a graph mutex
  std::string_view barrier;  // the graph barrier, and who sleeps its hold
  std::string_view wait;     // a timed wait, and how a blocked unit sleeps (blocking or spinning)
  std::string_view handoff;  // how a unit made runnable gets to run again
  std::string_view results;  // how results come back to the caller
  std::string_view calls;    // scatter, coordinator side: how C remote calls are kept in flight
  std::string_view serves;   // scatter, node side: how concurrent requests are served
};

// The fields of mechanism_info with their names, in the order they are printed and written.
struct mechanism_field {
  std::string_view name;
  std::string_view mechanism_info::*member;
};
inline constexpr mechanism_field mechanism_fields[] = {
    {"summary", &mechanism_info::summary}, {"unit", &mechanism_info::unit},
    {"tree", &mechanism_info::tree},       {"channel", &mechanism_info::channel},
    {"mutex", &mechanism_info::mutex},     {"barrier", &mechanism_info::barrier},
    {"wait", &mechanism_info::wait},       {"handoff", &mechanism_info::handoff},
    {"results", &mechanism_info::results}, {"calls", &mechanism_info::calls},
    {"serves", &mechanism_info::serves},
};

// Everything the harness, the report and the scripts know about a model comes from here: no
// other file names a model to decide anything.
struct model_info {
  std::string_view family;       // "threads"
  std::string_view variant;      // "pool"
  std::string_view description;  // one line, shown by `cmbench list`
  // Where the model sorts among all models (lists, reports, charts): families in blocks of ten,
  // variants within a block. Distinct for every model.
  int order = 0;
  // The reference model: the 1x of every speedup. It ignores the parameters that size a model
  // (workers, concurrency), so the harness runs it once per combination of the others.
  bool baseline = false;
  mechanism_info mechanism;
  // The floor probe (models/floors/probes.hpp) a hand-off between two of this model's units is
  // read against: a round trip of the same mechanism with nothing else in the way. Empty: none.
  // Units that block run on different CPUs when they can, so theirs is a `_cross_cpu` round trip
  // (the harness falls back to the unpinned one on a machine with one CPU).
  std::string_view round_trip_floor = {};
  // How many waits it holds at once: a bulk job's waits, and a scatter job's remote calls (with
  // max_alive = the job's in_flight) on the coordinator's side.
  wait_capacity waits = wait_capacity::tasks;
  // How many requests a node serving on this model holds at once (one per connection: `tasks`).
  wait_capacity serves = wait_capacity::tasks;
};

// The most waits of a bulk job a model may hold at once; verification expects no more.
constexpr std::uint64_t wait_limit(wait_capacity waits, const model_config& config, std::uint64_t tasks) {
  const std::uint64_t workers = config.workers < 1 ? 1 : config.workers;
  switch (waits) {
    case wait_capacity::one: return tasks < 1 ? tasks : 1;
    case wait_capacity::workers: return tasks < workers ? tasks : workers;
    case wait_capacity::every_task: return tasks;
    case wait_capacity::tasks: break;
  }
  return config.max_alive == 0 || config.max_alive > tasks ? tasks : config.max_alive;
}

// A model that cannot do a run (a system limit was hit) throws this, naming the limit; the trial
// ends as `failed` with the message. Never shrink the run instead.
class limit_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class M>
concept backend = std::constructible_from<M, const model_config&> &&
    requires(M& m, const bulk_job& bulk, const tree_job& tree, const graph_job& graph) {
      { M::info } -> std::convertible_to<model_info>;
      { m.run_bulk(bulk) } -> std::same_as<std::uint64_t>;
      { m.run_tree(tree) } -> std::same_as<std::uint64_t>;
      { m.run_graph(graph) } -> std::same_as<graph_result>;
    };

// A model that also runs the remote jobs of models/remote.hpp.
template <class M>
concept remote_backend = backend<M> && requires(M& m, const scatter_job& scatter, const serve_job& serve) {
  { m.run_scatter(scatter) } -> std::same_as<std::uint64_t>;
  { m.serve(serve) } -> std::same_as<void>;
};

// Type erasure at the harness boundary: the harness never sees TBB or Asio types.
class model_instance {
 public:
  virtual ~model_instance() = default;
  virtual std::uint64_t run_bulk(const bulk_job& job) = 0;
  virtual std::uint64_t run_tree(const tree_job& job) = 0;
  virtual graph_result run_graph(const graph_job& job) = 0;
  virtual std::uint64_t run_scatter(const scatter_job& job) = 0;
  virtual void serve(const serve_job& job) = 0;
};

struct model_entry {
  model_info info;
  std::string name;  // "family/variant"
  std::unique_ptr<model_instance> (*make)(const model_config&);
};

// All registered models, sorted by their order key (then name).
const std::vector<model_entry>& all_models();
const model_entry* find_model(std::string_view name);
// The reference model (model_info::baseline): the 1x of speedups, and the model a coordinator that
// is a workload's own code runs on, as it makes no units.
const model_entry& baseline_model();

namespace detail {

template <backend M>
class model_adapter final : public model_instance {
 public:
  explicit model_adapter(const model_config& config) : model_(config) {}
  std::uint64_t run_bulk(const bulk_job& job) override { return model_.run_bulk(job); }
  std::uint64_t run_tree(const tree_job& job) override { return model_.run_tree(job); }
  graph_result run_graph(const graph_job& job) override { return model_.run_graph(job); }
  std::uint64_t run_scatter(const scatter_job& job) override {
    if constexpr (remote_backend<M>) {
      return model_.run_scatter(job);
    } else {
      throw std::logic_error("this model has no remote side yet");
    }
  }
  void serve(const serve_job& job) override {
    if constexpr (remote_backend<M>) {
      model_.serve(job);
    } else {
      throw std::logic_error("this model has no remote side yet");
    }
  }

 private:
  M model_;
};

bool add_model(model_entry entry);

template <backend M>
bool register_model() {
  return add_model(model_entry{
      M::info, std::string(M::info.family) + "/" + std::string(M::info.variant),
      [](const model_config& config) -> std::unique_ptr<model_instance> {
        return std::make_unique<model_adapter<M>>(config);
      }});
}

}  // namespace detail
}  // namespace cmbench

// One registration line per model, in the model's own .cpp file.
#define CMBENCH_REGISTER_MODEL(Type)                                              \
  static_assert(::cmbench::backend<Type>, #Type " does not satisfy the backend contract"); \
  [[maybe_unused]] static const bool cmbench_registered_##Type =                    \
      ::cmbench::detail::register_model<Type>()
