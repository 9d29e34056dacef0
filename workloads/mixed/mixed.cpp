// mixed: N tasks, each R rounds of a wait then compute, with the compute fraction of a round as
// the parameter: at 0% the tasks only wait (io's world, where event loops win), at 100% they only
// compute (cpu's world, where parallel models win). Sweeping it shows where the winner changes.

#include <algorithm>

#include "workloads/kernels.hpp"
#include "models/system_limits.hpp"
#include "workloads/waits.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

struct mixed_params {
  std::uint64_t tasks, rounds, round_us, compute_pct, concurrency;
  unsigned workers;
  explicit mixed_params(const param_values& p)
      : tasks(static_cast<std::uint64_t>(p.at("tasks"))),
        rounds(static_cast<std::uint64_t>(p.at("rounds"))),
        round_us(static_cast<std::uint64_t>(p.at("round_us"))),
        compute_pct(static_cast<std::uint64_t>(p.at("compute_pct"))),
        concurrency(static_cast<std::uint64_t>(p.at("concurrency"))),
        workers(static_cast<unsigned>(p.at("workers"))) {}
  std::uint64_t compute_us() const { return round_us * compute_pct / 100; }
  std::uint64_t wait_us() const { return round_us - compute_us(); }
  std::uint64_t numbers() const { return compute_us() * kernels::numbers_per_us; }
};

std::uint64_t mixed_round(const void* context, std::uint64_t task, std::uint32_t round) {
  return kernels::compute_round(task, round, *static_cast<const std::uint64_t*>(context));
}

class mixed_run final : public prepared_run {
 public:
  explicit mixed_run(const param_values& p)
      : params_(p),
        numbers_(params_.numbers()),
        bulk_(bulk_job{params_.tasks, static_cast<std::uint32_t>(params_.rounds),
                       std::chrono::microseconds{params_.wait_us()}, &mixed_round, &numbers_},
              config()) {}
  model_config config() const override { return {params_.workers, params_.concurrency}; }
  std::uint64_t run(model_instance& model) override { return model.run_bulk(bulk_.job()); }
  std::string verify(const model_info& model, std::map<std::string, double>& metrics) const override {
    return bulk_.verify(model, metrics);
  }

 private:
  mixed_params params_;
  std::uint64_t numbers_;  // read by every model's units: built before the model forks any
  waits::watched_bulk bulk_;
};

workload_entry make_mixed() {
  return workload_entry{
      .name = "mixed",
      .description = "N tasks of R rounds: wait (1 - f) of a round, then compute f of it",
      .measures = "makespan against the ideal as the compute fraction f moves; where the winner changes",
      .params = {{"tasks", "tasks, all meant to be in flight at once", 1, 10'000'000, 40, 200, 2000},
                 {"rounds", "wait-then-compute rounds per task", 1, 100'000, 3, 5, 10},
                 {"round_us", "length of one round (wait + compute), microseconds", 1, 10'000'000, 1000,
                  2000, 2000},
                 {"compute_pct", "compute fraction of a round, percent (the rest is a wait)", 0, 100, 50, 50, 50},
                 workers_param(),
                 {"concurrency", "spawn models: most units alive at once (0: every task at once)", 0,
                  10'000'000, 0, 0, 0, false, true}},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<mixed_run>(p);
      },
      .reference = [](const param_values& p) {
        const mixed_params params(p);
        const std::uint64_t numbers = params.numbers();
        std::uint64_t sum = 0;
        for (std::uint64_t t = 0; t < params.tasks; ++t) {
          for (std::uint32_t r = 0; r < params.rounds; ++r) sum += mixed_round(&numbers, t, r);
        }
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("tasks") * p.at("rounds")); },
      .cost = [](const param_values& p, const model_info& model, unsigned cpus) {
        const mixed_params params(p);
        const double rounds = static_cast<double>(params.rounds);
        const double compute = static_cast<double>(params.tasks) * rounds * static_cast<double>(params.compute_us()) * 1e-6;
        const double waits = wait_rounds_seconds(p, model, params.tasks, static_cast<double>(params.wait_us()) * 1e-6) * rounds;
        return cost_estimate{std::max(waits, compute / std::max(1u, cpus)), compute};
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const mixed_params params(p);
        // No schedule beats the longest task (every round in a row) nor all compute spread
        // over every CPU.
        const double chain_s = static_cast<double>(params.rounds * params.round_us) * 1e-6;
        const double compute_s =
            static_cast<double>(params.tasks * params.rounds * params.compute_us()) * 1e-6 / static_cast<double>(usable_cpu_count());
        const double ideal_s = std::max(chain_s, compute_s);
        return std::map<std::string, double>{
            {"compute_fraction", static_cast<double>(params.compute_pct) / 100.0},
            {"compute_us", static_cast<double>(params.compute_us())},
            {"wait_us", static_cast<double>(params.wait_us())},
            {"ideal_ms", ideal_s * 1e3},
            {"makespan_over_ideal", ideal_s > 0 ? f.wall_seconds / ideal_s : 0.0}};
      },
      .order = 30,
      .figures = {{"makespan_over_ideal", "makespan over the ideal", "x ideal", figure_kind::ratio, better::lower}},
      .speedup = true,
      .unit = "round",
      .alive = [](const param_values& p) { return waits::tasks_in_flight(p); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(mixed, make_mixed);

}  // namespace cmbench
