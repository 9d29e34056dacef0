// io: N tasks meant to be in flight at once, each waiting D ms on the model's natural wait (a
// blocking sleep in a thread or process, a timer in an event loop), then doing a little work.
// Measures the makespan against the ideal D, and memory per waiting task.
#include <algorithm>
#include "workloads/kernels.hpp"
#include "workloads/waits.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

// "A little work" after the wait: about 2 us, the cost of handling a small reply.
constexpr std::uint64_t reply_numbers = 2 * kernels::numbers_per_us;

std::uint64_t io_task(const void* /*context*/, std::uint64_t task, std::uint32_t round) {
  return kernels::compute_round(task, round, reply_numbers);
}

model_config config_of(const param_values& p) {
  return {static_cast<unsigned>(p.at("workers")), static_cast<std::uint64_t>(p.at("concurrency"))};
}

class io_run final : public prepared_run {
 public:
  explicit io_run(const param_values& p)
      : config_(config_of(p)),
        bulk_(bulk_job{static_cast<std::uint64_t>(p.at("tasks")), 1, std::chrono::milliseconds{p.at("wait_ms")},
                       &io_task, nullptr},
              config_) {}
  model_config config() const override { return config_; }
  std::uint64_t run(model_instance& model) override { return model.run_bulk(bulk_.job()); }
  std::string verify(const model_info& model, std::map<std::string, double>& metrics) const override {
    return bulk_.verify(model, metrics);
  }

 private:
  model_config config_;
  waits::watched_bulk bulk_;
};

workload_entry make_io() {
  return workload_entry{
      .name = "io",
      .description = "N concurrent tasks each waiting D ms (simulated I/O), then ~2 us of work",
      .measures = "makespan over the ideal D; memory per waiting task; the largest N sustained",
      .params = {{"tasks", "tasks meant to be waiting at once", 1, 10'000'000, 100, 1000, 100'000},
                 {"wait_ms", "the wait of every task, milliseconds", 0, 60'000, 10, 20, 100},
                 workers_param(32, 32, 32),
                 {"concurrency", "spawn models: most units alive at once (0: every task at once)",
                  0, 10'000'000, 0, 0, 0, false, true}},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<io_run>(p);
      },
      .reference = [](const param_values& p) {
        std::uint64_t sum = 0;
        for (std::uint64_t t = 0; t < static_cast<std::uint64_t>(p.at("tasks")); ++t) sum += io_task(nullptr, t, 0);
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("tasks")); },
      .cost = [](const param_values& p, const model_info& model, unsigned) {
        const auto tasks = static_cast<std::uint64_t>(p.at("tasks"));
        return cost_estimate{wait_rounds_seconds(p, model, tasks, static_cast<double>(p.at("wait_ms")) * 1e-3),
                             static_cast<double>(tasks) * 2e-6};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const double ideal_s = static_cast<double>(p.at("wait_ms")) * 1e-3;
        std::map<std::string, double> m{{"ideal_ms", ideal_s * 1e3}};
        if (ideal_s > 0) m["makespan_over_ideal"] = f.wall_seconds / ideal_s;
        return m;
      },
      .order = 20,
      .figures = {{"makespan_over_ideal", "makespan over the ideal wait", "x ideal", figure_kind::ratio,
                   better::lower}},
      .memory_per_unit = true,
      .unit = "task",
      .alive = [](const param_values& p) { return waits::tasks_in_flight(p); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(io, make_io);

}  // namespace cmbench
