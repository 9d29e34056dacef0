// One task of a bulk job as every model that blocks in its waits runs it (threads and processes,
// serial, oneTBB): per round, tell the workload the wait begins, sleep it, then compute. Written
// once so that what the workload verifies (models/model.hpp's bulk_job: each wait begun, lasting
// its full length, then computed) is the same code in every such model. Coroutine models wait on
// a timer instead (a co_await cannot sit inside a plain function): coroutines/asio_common.hpp.
//
// Safe in a forked child of a multi-threaded parent: a sleep is nanosleep(), and the workload's
// begin_wait and compute allocate nothing and take no lock.
#pragma once

#include <cstdint>
#include <thread>

#include "models/model.hpp"

namespace cmbench {

// Task `task`'s rounds, its waits blocking the calling thread; the wrapping sum of their values.
inline std::uint64_t run_blocking_task(const bulk_job& job, std::uint64_t task) {
  std::uint64_t sum = 0;
  for (std::uint32_t round = 0; round < job.rounds; ++round) {
    if (job.wait.count() > 0) {
      job.begin_wait(task, round);
      std::this_thread::sleep_for(job.wait);
    }
    sum += job.run_round(task, round);
  }
  return sum;
}

}  // namespace cmbench
