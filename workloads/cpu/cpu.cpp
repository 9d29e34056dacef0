// cpu: N independent CPU-bound tasks. Measures makespan, and speedup and efficiency vs workers.
#include <algorithm>
#include <stdexcept>

#include "workloads/kernels.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

struct cpu_input {
  std::uint64_t numbers_per_task;
};

std::uint64_t cpu_task(const void* context, std::uint64_t task, std::uint32_t round) {
  return kernels::compute_round(task, round, static_cast<const cpu_input*>(context)->numbers_per_task);
}

struct cpu_params {
  std::uint64_t tasks, task_us;
  unsigned workers;
  explicit cpu_params(const param_values& p)
      : tasks(static_cast<std::uint64_t>(p.at("tasks"))),
        task_us(static_cast<std::uint64_t>(p.at("task_us"))),
        workers(static_cast<unsigned>(p.at("workers"))) {}
  cpu_input input() const { return {task_us * kernels::numbers_per_us}; }
};

class cpu_run final : public prepared_run {
 public:
  explicit cpu_run(const param_values& p) : params_(p), input_(params_.input()) {}
  // Spawn models keep at most `workers` units alive: the same parallelism a pool has.
  model_config config() const override { return {params_.workers, params_.workers}; }
  std::uint64_t run(model_instance& model) override {
    return model.run_bulk(bulk_job{params_.tasks, 1, std::chrono::nanoseconds{0}, &cpu_task, &input_});
  }

 private:
  cpu_params params_;
  cpu_input input_;
};

workload_entry make_cpu() {
  return workload_entry{
      .name = "cpu",
      .description = "N independent CPU-bound tasks (Collatz stopping times over disjoint ranges)",
      .measures = "makespan; speedup and efficiency against the baseline model as workers grow",
      .params = {{"tasks", "number of independent tasks", 1, 100'000'000, 64, 1000, 20000},
                 {"task_us", "nominal CPU work per task, microseconds on the reference machine", 1,
                  1'000'000, 100, 200, 500},
                 {"workers", "threads / processes / event loops (0: every CPU this run may use); "
                             "spawn models keep at most this many units alive",
                  0, 100'000, 0, 0, 0, true, true}},
      .validate = nullptr,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<cpu_run>(p);
      },
      .reference = [](const param_values& p) {
        const cpu_params params(p);
        const cpu_input input = params.input();
        std::uint64_t sum = 0;
        for (std::uint64_t t = 0; t < params.tasks; ++t) sum += cpu_task(&input, t, 0);
        return sum;
      },
      .units = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("tasks")); },
      .cost = [](const param_values& p, const model_info&, unsigned cpus) {
        const double work = static_cast<double>(p.at("tasks")) * static_cast<double>(p.at("task_us")) * 1e-6;
        return cost_estimate{work / std::max(1u, cpus), work};  // every CPU busy, at best
      },
      .metrics = [](const param_values& p, const trial_figures& f) {
        const double tasks = static_cast<double>(p.at("tasks"));
        const double work_s = tasks * static_cast<double>(p.at("task_us")) * 1e-6;
        return std::map<std::string, double>{{"tasks_per_second", tasks / f.wall_seconds},
                                             {"nominal_work_seconds", work_s}};
      },
      .order = 10,
      .figures = {{"speedup", "speedup over the baseline model", "speedup", figure_kind::ratio, better::higher},
                  {"tasks_per_second", "tasks per second", "tasks/s", figure_kind::rate, better::higher}},
      .speedup = true,
      .unit = "task",
      // Spawn models keep at most `workers` alive, but `workers` may be 0 (every CPU) here.
      .alive = [](const param_values& p) { return static_cast<std::uint64_t>(p.at("tasks")); },
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(cpu, make_cpu);

}  // namespace cmbench
