// The floors of each model's primitives as a Google Benchmark binary: the same probes
// `cmbench run` measures into its report's context.floors, here with Google Benchmark's
// repetitions, statistics and output formats.
//
//   build/release/models/cmbench_floors --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>

#include "models/floors/probes.hpp"

namespace {

// The next batch to try after `batch` operations took `ns`: aimed past a millisecond, at most
// ten times larger.
std::uint64_t grown(std::uint64_t batch, double ns) {
  const double scale = ns > 0 ? 1.2e6 / ns : 10;
  return std::max(batch + 1, static_cast<std::uint64_t>(static_cast<double>(batch) * std::min(scale, 10.0)));
}

}  // namespace

int main(int argc, char** argv) {
  for (const auto& p : cmbench::floors::all_probes()) {
    // Batches of operations timed by the probe itself (its setup, such as starting the partner
    // thread, stays outside), reported per operation.
    benchmark::RegisterBenchmark(std::string(p.name).c_str(), [&p](benchmark::State& state) {
      try {
        // About a millisecond per batch: long enough to amortise waking a pool's workers, and the
        // first, cold operations after a probe starts its partner process or threads. Grown from
        // one operation as measure() does, since that one operation alone is mostly the cold start.
        std::uint64_t batch = 1;
        for (double took = 0; batch < (1u << 30); batch = grown(batch, took)) {
          took = static_cast<double>(p.run(batch, nullptr));
          if (took >= 1e6) break;
        }
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
