// contention: N units each perform X updates of one shared structure, a counter and a small
// open-addressing map, each update under the job's one mutex (the model's idiomatic lock). The
// answer is a digest of the structure afterwards, so a lost or torn update changes it. Measures
// updates per second and what synchronisation costs each model.
#include <algorithm>
#include <array>

#include "workloads/graph_support.hpp"
#include "workloads/kernels.hpp"

namespace cmbench {
namespace {

constexpr std::uint32_t map_slots = 128;   // a power of two
constexpr std::uint64_t distinct_keys = 61;  // keys in use: the map stays half full

// The shared structure: what a real service keeps under one lock (a request count and a few
// counters by key). Plain data in shared memory.
struct shared_state {
  std::uint64_t counter = 0;
  std::array<std::uint64_t, map_slots> keys{};  // 0: empty slot; a key is stored as key + 1
  std::array<std::uint64_t, map_slots> values{};

  void add(std::uint64_t key, std::uint64_t amount) {
    std::uint32_t slot = static_cast<std::uint32_t>(kernels::mix64(key)) & (map_slots - 1);
    while (keys[slot] != 0 && keys[slot] != key + 1) slot = (slot + 1) & (map_slots - 1);
    keys[slot] = key + 1;
    values[slot] += amount;
  }

  std::uint64_t digest() const {
    std::uint64_t d = kernels::mix64(counter);
    for (std::uint32_t i = 0; i < map_slots; ++i) {
      if (keys[i] != 0) d += kernels::mix64(keys[i] * 0x100000001b3ULL ^ values[i]);
    }
    return d;
  }
};

struct contention_context {
  std::uint64_t updates;  // per unit
  shared_state state;
};

// Update i of unit u: its key and amount, the same under every model.
std::uint64_t key_of(std::uint64_t unit, std::uint64_t i) { return (unit * 7919 + i) % distinct_keys; }
std::uint64_t amount_of(std::uint64_t unit, std::uint64_t i) { return (unit << 20) + i + 1; }

unit_action contention_step(void* context, unit_state& s, std::byte*) {
  auto& c = *static_cast<contention_context*>(context);
  if (s.pc == 1) {  // holding the lock
    ++c.state.counter;
    c.state.add(key_of(s.unit, s.count), amount_of(s.unit, s.count));
    ++s.count;
    s.pc = 0;
    return {unit_op::unlock, 0};
  }
  if (s.count == c.updates) return {unit_op::finish};
  s.pc = 1;
  return {unit_op::lock, 0};
}

class contention_run final : public graph::graph_run<contention_context> {
 public:
  explicit contention_run(const param_values& p)
      : graph_run(p, graph_job{static_cast<std::uint32_t>(p.at("units")), 0, 1, 16, 1, {}, &contention_step, nullptr},
                  contention_context{static_cast<std::uint64_t>(p.at("updates")), {}}) {}
  // The answer lies in the shared structure, digested after the clock stopped.
  std::uint64_t checksum(std::uint64_t returned) const override { return returned + context().state.digest(); }
};

workload_entry make_contention() {
  return workload_entry{
      .name = "contention",
      .description = "N units each make X updates of one shared counter + small map under one lock",
      .measures = "updates per second; the cost of the model's synchronisation",
      .params = {{"units", "units updating the shared structure", 1, 1'000'000, 8, 64, 512},
                 {"updates", "updates per unit", 1, 1'000'000'000, 1000, 20'000, 20'000},
                 workers_param()},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<contention_run>(p);
      },
      .reference = [](const param_values& p) {
        shared_state state;
        for (std::int64_t u = 0; u < p.at("units"); ++u) {
          for (std::int64_t i = 0; i < p.at("updates"); ++i) {
            ++state.counter;
            state.add(key_of(static_cast<std::uint64_t>(u), static_cast<std::uint64_t>(i)),
                      amount_of(static_cast<std::uint64_t>(u), static_cast<std::uint64_t>(i)));
          }
        }
        return state.digest();
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units") * p.at("updates")); },
      .cost = [](const param_values& p, const model_info&, unsigned) {
        // One lock holds every update: 5 ns each, one after another, in any model.
        const double updates = static_cast<double>(p.at("units")) * static_cast<double>(p.at("updates"));
        return cost_estimate{updates * 5e-9, updates * 5e-9};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const double updates = static_cast<double>(p.at("units") * p.at("updates"));
        return std::map<std::string, double>{{"updates_per_second", updates / f.wall_seconds}};
      },
      .order = 80,
      .figures = {{"ns_per_unit", "time per locked update", "ns/update", figure_kind::time_ns, better::lower}},
      .speedup = true,
      .unit = "update",
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("units")); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(contention, make_contention);

}  // namespace cmbench
