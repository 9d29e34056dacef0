// What coroutines/asio-mt and coroutines/asio-pool share on the caller's side of a job: their
// loops run on threads of their own, started at setup, and the caller blocks until a job's last
// completion handler reports it done (job_tracker), or until Asio threw out of a loop's run(),
// after which the loops are stopped, destroyed and built afresh for the next job (job_loops).
#pragma once

#include "models/coroutines/asio_common.hpp"  // first: it fixes Asio's configuration

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cmbench::detail {

// The finished-job count of a model's loops and the first exception that escaped a loop's run().
// The loops' owner (asio-mt's loop_set, asio-pool's shared_loop) derives from it.
class job_tracker {
 public:
  job_tracker() = default;
  job_tracker(const job_tracker&) = delete;
  job_tracker& operator=(const job_tracker&) = delete;

  bool failed() const { return state_.load(std::memory_order_acquire) & failed_bit; }

  // A job's last completion handler calls this, from any of the loops' threads.
  void job_done() {
    state_.fetch_add(1, std::memory_order_release);
    state_.notify_one();
  }

  // Blocks the caller until job_done() brings the finished count to `jobs`. Rethrows what escaped
  // a loop's run() if that happened instead (the loops are then unusable).
  void wait_jobs(std::uint64_t jobs) {
    for (;;) {
      const std::uint64_t state = state_.load(std::memory_order_acquire);
      if (state & failed_bit) std::rethrow_exception(failure_);
      if (state >= jobs) return;
      state_.wait(state, std::memory_order_acquire);
    }
  }

 protected:
  // The body of a loop's thread. Only Asio's own allocations can throw out of a handler here (the
  // coroutines catch everything), and a completion is then lost: fail the job instead of letting
  // it hang. This thread runs nothing more; the caller stops the others before it destroys
  // anything a queued handler may touch.
  void run_loop(asio::io_context& io) {
    try {
      io.run();
    } catch (...) {
      bool expected = false;
      if (failure_claimed_.compare_exchange_strong(expected, true)) {
        failure_ = std::current_exception();
        state_.fetch_or(failed_bit, std::memory_order_release);
        state_.notify_all();
      }
    }
  }

 private:
  static constexpr std::uint64_t failed_bit = std::uint64_t{1} << 63;

  std::atomic<std::uint64_t> state_{0};  // jobs finished, plus failed_bit
  std::atomic<bool> failure_claimed_{false};
  std::exception_ptr failure_;
};

// A model's loops (Loops: a job_tracker built from the worker count, with halt() stopping and
// joining its threads) and the count of the jobs handed to them. If Asio throws out of a loop's
// run(), wait_job() destroys the loops; the next job builds a fresh set.
template <class Loops>
class job_loops {
 public:
  // `where` names the failed loop in the limit_error of wait_job().
  job_loops(unsigned workers, std::string_view model, std::string_view where)
      : workers_(workers), model_(model), where_(where) {
    if (workers_ == 0) {
      throw std::invalid_argument(std::string(model_) + ": workers must be at least 1");
    }
    loops_ = std::make_unique<Loops>(workers_);
  }

  unsigned workers() const { return workers_; }

  // The loops as they are (null after a failure, until ready() builds a fresh set).
  Loops* get() const { return loops_.get(); }

  // The loops for a job about to be counted by begin_job(), built afresh if a loop had failed.
  Loops* ready() {
    if (!loops_) {
      loops_ = std::make_unique<Loops>(workers_);
      jobs_ = 0;
    }
    return loops_.get();
  }

  // Counts the job that is about to be handed to the loops (nothing may throw between this and
  // the hand-off, or the count would wait for a job that never ran). A set whose loop threw was
  // destroyed by wait_job(): build a fresh one first.
  Loops* begin_job() {
    Loops* loops = ready();
    ++jobs_;
    return loops;
  }

  // Blocks until every job counted so far has finished. before_reset runs if a loop failed,
  // after every thread stopped and before the loops are destroyed.
  template <class BeforeReset = void (*)()>
  void wait_job(BeforeReset before_reset = [] {}) {
    try {
      loops_->wait_jobs(jobs_);
    } catch (...) {
      // Frames still suspended in the loops point into the caller's frame: stop the threads and
      // destroy the loops (and those frames) before the exception leaves this call.
      loops_->halt();
      before_reset();
      loops_.reset();
      rethrow_job_error(std::current_exception(), model_, where_);
    }
  }

 private:
  unsigned workers_;
  std::string_view model_;
  std::string_view where_;
  std::uint64_t jobs_ = 0;
  std::unique_ptr<Loops> loops_;
};

}  // namespace cmbench::detail
