// The floors of each model's primitives: what one hand-off or one unit costs at the very least on
// this machine (a condvar round trip between two threads, a pipe or futex round trip between two
// processes, a task handed on through a pool's shared queue, a post to an event loop, a thread
// created and joined, ...). `cmbench run` measures them in the same run as the workloads, so a
// backend's hand-off can be read against the floor of the same mechanism; the Google Benchmark
// binary cmbench_floors runs the same probes.
//
// A model whose mechanism has no probe here yet registers one from its own source, beside its
// CMBENCH_REGISTER_MODEL line, so adding a model touches only its own folder and its CMake line:
//
//   CMBENCH_REGISTER_PROBE(my_handoff_round_trip, "a turn handed to ... and handed back", "round trip",
//                          my_handoff_round_trip, /*timed_each=*/true);
//
// (models/floors/probe_support.hpp has the pinning, clocks and completion the built-in probes use.)
// Every program that links the models' parts (cmbench_link_parts: cmbench, cmbench_floors, the
// tests) sees every registered probe.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace cmbench::floors {

// A probe that cannot run on this machine (the cross-CPU round trips on one CPU) throws this:
// not a failure, nothing to measure.
class not_applicable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct probe {
  std::string_view name;  // "condvar_round_trip"
  std::string_view what;  // one line: what one operation is
  std::string_view per;   // "round trip", "thread", "post", ...
  // Performs n operations (n >= 1) and returns the nanoseconds they took, setup excluded. With
  // `each` (probes with timed_each only), also appends every operation's own nanoseconds.
  // Throws std::runtime_error when a system call fails.
  std::int64_t (*run)(std::uint64_t n, std::vector<std::uint32_t>* each);
  // Operations slow enough (microseconds) to time one by one without distorting them: their
  // median is measured too, to set against a workload's median of the same hand-off.
  bool timed_each = false;
};

// The built-in probes, then the registered ones in the order they registered.
std::span<const probe> all_probes();
// nullptr when there is no probe of that name.
const probe* find_probe(std::string_view name);

// Adds a probe to all_probes(), during static initialisation only (use CMBENCH_REGISTER_PROBE).
// Its run must leave no thread or process behind: later probes fork. Throws std::logic_error
// for a name already taken or a probe missing a field.
bool register_probe(const probe& p);

struct measurement {
  double ns_per_op = 0;            // the median of the samples' means
  double p50_ns = -1;              // timed_each probes: the median of every operation of all samples; else -1
  std::vector<double> samples_ns;  // ns per operation, one per sample
  std::uint64_t ops_per_sample = 0;
};

// Calibrates n so one sample takes at least `min_time`, then takes `samples` samples of n
// operations each.
measurement measure(const probe& p, std::chrono::nanoseconds min_time, int samples);

}  // namespace cmbench::floors

// One registration line per probe, in the model's own .cpp file: the probe's name (an identifier,
// as every probe name is), the one line saying what one operation is, what it is counted per, then
// the function and, optionally, timed_each.
#define CMBENCH_REGISTER_PROBE(name, what, per, ...)                \
  [[maybe_unused]] static const bool cmbench_probe_registered_##name = \
      ::cmbench::floors::register_probe(::cmbench::floors::probe{#name, what, per, __VA_ARGS__})
