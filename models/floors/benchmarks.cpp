// The floors of each model's primitives as a Google Benchmark binary: the same probes
// `cmbench run` measures into its report's context.floors, here with Google Benchmark's
// repetitions, statistics and output formats.
//
//   build/release/models/cmbench_floors --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <exception>
#include <string>

#include "models/floors/probes.hpp"

int main(int argc, char** argv) {
  for (const auto& p : cmbench::floors::all_probes()) {
    // Batches of operations timed by the probe itself (its setup, such as starting the partner
    // thread, stays outside), reported per operation.
    benchmark::RegisterBenchmark(std::string(p.name).c_str(), [&p](benchmark::State& state) {
      try {
        // About a millisecond per batch: long enough to amortise waking a pool's workers.
        const auto one = static_cast<double>(p.run(1, nullptr));
        const auto batch = static_cast<std::uint64_t>(std::max(1.0, 1e6 / std::max(one, 1.0)));
        while (state.KeepRunningBatch(batch)) state.SetIterationTime(static_cast<double>(p.run(batch, nullptr)) / 1e9);
      } catch (const std::exception& e) {
        state.SkipWithError(e.what());
      }
      state.SetLabel("per " + std::string(p.per));
    })->UseManualTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
