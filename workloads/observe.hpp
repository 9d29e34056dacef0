// What a workload observes of a run without taking the model's word for it: the OS thread a step
// runs in, how many units are alive now, and a memory sample at the moment that matters.
//
// The harness shares one page with the trial process (and every process the model forks from it):
// workloads keep the gauge of units alive there, and the harness's memory sampler reads it beside
// each sample, so a per-unit figure divides by the units alive when the memory was measured. A
// workload that knows the moment its peak is reached (every unit at the barrier) asks for a sample
// then and waits until it is taken. Without a harness (the unit tests) the page is the process's
// own and sample_memory_now() returns at once.
#pragma once

#include <atomic>
#include <cstdint>

namespace cmbench::observe {

// The page shared between the harness and the trial.
struct trial_page {
  std::atomic<std::int64_t> units_alive{0};  // what the running workload counts as alive now
  std::atomic<std::uint32_t> gauge_used{0};  // 1 once a workload keeps the gauge
};

// Called by the harness in the trial process before the input is prepared: the shared page (a
// memfd) and the pipes of the sample handshake. Throws std::runtime_error when mapping fails.
void attach(int page_fd, int request_fd, int reply_fd);

// The page: the harness's, or a process-local MAP_SHARED one (mapped on first use, so call it
// before the model forks: in prepare()).
trial_page& page();

// Adds `delta` to the units alive (a workload that uses the gauge marks it used first).
inline void units_alive_add(std::int64_t delta) noexcept {
  page().units_alive.fetch_add(delta, std::memory_order_relaxed);
}

// Asks the harness to measure the memory of every process of the trial now and blocks until it
// has (two pipe system calls: safe in any thread and in a forked child). Returns false when no
// harness is attached or it did not answer.
bool sample_memory_now() noexcept;

// The kernel thread id of the calling thread: units run by one thread of one process share it,
// and different threads and processes differ. A system call once per thread, then cached; a
// forked child starts afresh.
std::uint32_t current_place() noexcept;

}  // namespace cmbench::observe
