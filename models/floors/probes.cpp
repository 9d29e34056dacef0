#include "models/floors/probes.hpp"
#include "models/floors/probe_support.hpp"
#include "models/floors/tcp_probes.hpp"

#include "models/median.hpp"
#include "models/shared_region.hpp"
#include "models/processes/shared_memory.hpp"
#include "models/system_limits.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <exception>
#include <iterator>
#include <latch>
#include <mutex>
#include <new>
#include <utility>
#include <stdexcept>
#include <string>
#include <thread>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

namespace cmbench::floors {
namespace {

using detail::cpu_relax;

std::int64_t thread_create_join(std::uint64_t n, std::vector<std::uint32_t>*) {
  std::atomic<std::uint64_t> ran{0};
  const auto start = clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::thread t([&] { ran.fetch_add(1, std::memory_order_relaxed); });
    t.join();
  }
  return since(start);
}

std::int64_t fork_exit_wait(std::uint64_t n, std::vector<std::uint32_t>*) {
  const auto start = clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) fail("fork");
    if (pid == 0) ::_exit(0);
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) fail("waitpid");
  }
  return since(start);
}

// A hand-off between two threads through a mutex and condition variable, there and back.
std::int64_t condvar_round_trip_on(placement where, std::uint64_t n, std::vector<std::uint32_t>* each) {
  const auto [caller_cpu, partner_cpu] = cpus_for(where);
  const pinned caller_pin(caller_cpu);
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: the caller's, 1: the partner's, -1: stop, -2: the partner failed
  std::exception_ptr partner_failure;
  std::thread partner([&, partner_cpu = partner_cpu] {
    std::unique_lock lock(m);
    try {
      const pinned partner_pin(partner_cpu);  // the thread ends unpinned with it
      while (true) {
        cv.wait(lock, [&] { return turn != 0; });
        if (turn < 0) return;
        turn = 0;
        cv.notify_one();
      }
    } catch (...) {
      partner_failure = std::current_exception();
      turn = -2;  // failed: the caller stops waiting
      cv.notify_one();
    }
  });
  const auto start = clock::now();
  auto last = start;
  bool failed = false;
  for (std::uint64_t i = 0; i < n && !failed; ++i) {
    {
      std::unique_lock lock(m);
      if (turn == 0) {
        turn = 1;
        cv.notify_one();
      }
      cv.wait(lock, [&] { return turn != 1; });
      failed = turn < 0;
    }
    if (each != nullptr) last = record(each, last);
  }
  const std::int64_t ns = since(start);
  {
    std::lock_guard lock(m);
    if (turn == 0) turn = -1;
  }
  cv.notify_one();
  partner.join();
  if (partner_failure) std::rethrow_exception(partner_failure);
  return ns;
}

// threads/pool's executor cut to its mechanism: workers popping one FIFO under one mutex, idle
// ones sleeping on one condition variable, a submit waking at most one sleeper and a woken worker
// waking the next while work remains. A task runs on whichever worker pops it.
class handoff_pool {
 public:
  struct item {
    void (*run)(void* context, std::uint64_t arg);
    void* context;
    std::uint64_t arg;
  };

  explicit handoff_pool(unsigned count) {
    workers_.reserve(count);
    try {
      for (unsigned i = 0; i < count; ++i) workers_.emplace_back([this] { work(); });
    } catch (...) {
      stop();
      throw;
    }
    // Start from every worker asleep, as a pool between jobs is.
    while (true) {
      {
        std::lock_guard lock(mutex_);
        if (sleeping_ == count) break;
      }
      std::this_thread::yield();
    }
  }

  ~handoff_pool() { stop(); }

  handoff_pool(const handoff_pool&) = delete;
  handoff_pool& operator=(const handoff_pool&) = delete;

  void submit(const item& task) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      queue_[(head_ + size_++) % capacity] = task;  // a volley queues one task at a time
      wake = wake_one_locked();
    }
    if (wake) work_available_.notify_one();
  }

 private:
  static constexpr std::size_t capacity = 4;

  bool wake_one_locked() {
    if (size_ == 0 || sleeping_ == waking_) return false;
    ++waking_;
    return true;
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      while (size_ == 0) {
        if (stopping_) return;
        ++sleeping_;
        work_available_.wait(lock);
        --sleeping_;
        if (waking_ > 0) --waking_;
      }
      const item task = queue_[head_];
      head_ = (head_ + 1) % capacity;
      --size_;
      const bool wake = wake_one_locked();
      lock.unlock();
      if (wake) work_available_.notify_one();
      task.run(task.context, task.arg);
      lock.lock();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_available_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex mutex_;
  std::condition_variable work_available_;
  item queue_[capacity] = {};
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t sleeping_ = 0;  // workers waiting on work_available_
  std::size_t waking_ = 0;    // of those, signalled and not yet running
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

struct pool_volley {
  handoff_pool* pool;
  round_trip_clock clock;
  completion done;
};

void pool_pong(void* context, std::uint64_t i);

// Ping i submits pong i and returns; pong i submits ping i + 1 and returns.
void pool_ping(void* context, std::uint64_t i) {
  auto& v = *static_cast<pool_volley*>(context);
  if (v.clock.ping(i)) {
    v.done.signal();
    return;
  }
  v.pool->submit({&pool_pong, context, i});
}

void pool_pong(void* context, std::uint64_t i) {
  static_cast<pool_volley*>(context)->pool->submit({&pool_ping, context, i + 1});
}

// A task that submits a task that submits the next, on a pool of two threads: the hand-off of a
// unit woken through the shared queue, as threads/pool does it.
std::int64_t pool_handoff_round_trip(std::uint64_t n, std::vector<std::uint32_t>* each) {
  handoff_pool pool(2);
  pool_volley v{&pool, round_trip_clock(n, each), {}};
  pool.submit({&pool_ping, &v, 0});
  v.done.wait();
  return v.clock.total();
}

// The far end of a pipe round trip: echoes every byte until end-of-file.
void run_partner(int from, int to) {
  char c;
  while (::read(from, &c, 1) == 1) {
    if (::write(to, &c, 1) != 1) break;
  }
}

// A byte through a pipe to another process and back.
std::int64_t pipe_round_trip_on(placement where, std::uint64_t n, std::vector<std::uint32_t>* each) {
  const auto [caller_cpu, partner_cpu] = cpus_for(where);
  const pinned caller_pin(caller_cpu);
  int there[2], back[2];
  if (::pipe(there) != 0) fail("pipe");
  if (::pipe(back) != 0) {
    const int error = errno;
    ::close(there[0]);
    ::close(there[1]);
    errno = error;
    fail("pipe");
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(there[1]);  // or the read below never sees end-of-file
    ::close(back[0]);
    try {
      const pinned partner_pin(partner_cpu);  // stays pinned until _exit
      run_partner(there[0], back[1]);
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  ::close(there[0]);
  ::close(back[1]);
  bool ok = pid > 0;
  const int fork_error = errno;
  char c = 'x';
  const auto start = clock::now();
  auto last = start;
  for (std::uint64_t i = 0; ok && i < n; ++i) {
    ok = ::write(there[1], &c, 1) == 1 && ::read(back[0], &c, 1) == 1;
    if (each != nullptr) last = record(each, last);
  }
  const std::int64_t ns = since(start);
  const int io_error = errno;
  ::close(there[1]);
  ::close(back[0]);
  if (pid > 0) ::waitpid(pid, nullptr, 0);
  errno = pid > 0 ? io_error : fork_error;
  if (!ok) fail(pid > 0 ? "pipe round trip" : "fork");
  return ns;
}

// Process-shared futexes (no FUTEX_PRIVATE_FLAG: the kernel keys the wait on the shared page, so a
// wake in one process reaches a waiter in another). Returns 0 when woken, else the errno (EAGAIN:
// the word had already changed, ETIMEDOUT, EINTR); callers re-check their condition either way.
int futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const timespec* timeout) noexcept {
  const long r = ::syscall(SYS_futex, &word, FUTEX_WAIT, expected, timeout, nullptr, 0);
  return r == 0 ? 0 : errno;
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, &word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

// How long a side of a cross-process probe sleeps before checking that the other side still
// lives: a dead partner fails the probe instead of hanging it.
constexpr timespec liveness_period{1, 0};

// One direction of a futex hand-off: the word the receiving side sleeps on, and whether it
// announced a sleep (so the sender makes no system call while it is awake), on a line of its own.
struct alignas(64) futex_line {
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> sleeping{0};
};

// Stores `value` and wakes the other side only if it announced a sleep (processes/spawn's
// publish_and_wake). seq_cst store then load, against the sleeper's store then load in
// wait_for_change: either it sees the value or we see its announcement.
void publish(futex_line& line, std::uint32_t value) noexcept {
  line.word.store(value, std::memory_order_seq_cst);
  if (line.sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(line.word, 1);
}

// Returns the word once it no longer holds `seen`: one plain check, then asleep in FUTEX_WAIT
// (processes/spawn's sleep_while_equal), calling `check_partner` every liveness_period asleep.
template <class Check>
std::uint32_t wait_for_change(futex_line& line, std::uint32_t seen, Check check_partner) {
  std::uint32_t now = line.word.load(std::memory_order_acquire);
  while (now == seen) {
    line.sleeping.store(1, std::memory_order_seq_cst);
    now = line.word.load(std::memory_order_seq_cst);
    if (now != seen) break;
    if (futex_wait(line.word, seen, &liveness_period) == ETIMEDOUT) check_partner();
    now = line.word.load(std::memory_order_acquire);
  }
  line.sleeping.store(0, std::memory_order_relaxed);
  return now;
}

struct futex_volley {
  futex_line there;  // round trips started: the partner sleeps on it
  futex_line back;   // round trips the partner answered: the caller sleeps on it
  std::atomic<std::uint32_t> stop{0};
};

// The far end of a futex round trip: hands every turn back until told to stop.
[[noreturn]] void run_futex_partner(futex_volley& v, int cpu, pid_t parent) noexcept {
  die_with_parent(parent);
  try {
    const pinned partner_pin(cpu);  // stays pinned until _exit
    const auto parent_alive = [parent] {
      if (::getppid() != parent) ::_exit(1);
    };
    for (std::uint32_t seen = 0;;) {
      seen = wait_for_change(v.there, seen, parent_alive);
      if (v.stop.load(std::memory_order_acquire) != 0) ::_exit(0);
      publish(v.back, seen);
    }
  } catch (...) {
    ::_exit(1);
  }
}

// A turn handed to another process through a futex word in shared memory and handed back: what
// processes/spawn's channels (shared-memory rings with futex wake-ups) cost at the least.
std::int64_t futex_round_trip_on(placement where, std::uint64_t n, std::vector<std::uint32_t>* each) {
  const auto [caller_cpu, partner_cpu] = cpus_for(where);
  const pinned caller_pin(caller_cpu);
  const shared_region region(sizeof(futex_volley));
  futex_volley& v = *new (region.data()) futex_volley{};
  const pid_t parent = ::getpid();
  child_process partner;  // after the region: reaped before it is unmapped
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) run_futex_partner(v, partner_cpu, parent);
  partner.adopt(pid);
  const auto partner_alive = [&partner] {
    if (partner.ended()) throw std::runtime_error("futex round trip: the partner process ended");
  };
  const auto start = clock::now();
  auto last = start;
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto turn = static_cast<std::uint32_t>(i);  // wraps with the partner's copy
    publish(v.there, turn + 1);
    wait_for_change(v.back, turn, partner_alive);
    if (each != nullptr) last = record(each, last);
  }
  const std::int64_t ns = since(start);
  v.stop.store(1, std::memory_order_release);
  publish(v.there, static_cast<std::uint32_t>(n) + 1);
  if (!partner.exited_cleanly()) throw std::runtime_error("futex round trip: the partner process failed");
  return ns;
}

// processes/pool's mechanism on two forked workers: 8-byte descriptors through a Vyukov MPMC ring
// in shared memory, idle workers sleeping on a futex eventcount (work_seq, bumped only when
// someone sleeps, and a sleeper count), a push waking at most one sleeper and a worker that pops
// waking the next while work remains; an idle worker polls the ring idle_spin_rounds pause rounds
// before it sleeps, only when every worker has a CPU of its own.
constexpr unsigned pool_processes = 2;
constexpr std::uint32_t idle_spin_rounds = 2000;  // processes/pool's: about 50 us
constexpr std::uint64_t pool_ring_size = 8;       // a power of two; a volley queues one task at a time

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
}

// In a MAP_SHARED region mapped before the fork, so the same address in every process.
struct process_pool_shared {
  alignas(64) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(64) std::atomic<std::uint64_t> dequeue_pos{0};
  alignas(64) std::atomic<std::uint32_t> work_seq{0};
  std::atomic<std::uint32_t> sleepers{0};
  std::atomic<std::uint32_t> shutdown{0};
  std::uint32_t idle_spin = 0;
  // The volley: a descriptor is ping i (i << 1) or pong i (i << 1 | 1). Its clock, written by one
  // task at a time (the ring orders them), in nanoseconds of the system-wide monotonic clock.
  alignas(64) std::uint64_t rounds = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  std::uint32_t* each = nullptr;  // `rounds` slots after this block, or none
  // The caller sleeps on these: workers started, volley done.
  alignas(64) std::atomic<std::uint32_t> started{0};
  std::atomic<std::uint32_t> done{0};
  struct cell {
    std::atomic<std::uint64_t> sequence;
    std::uint64_t task;
  } cells[pool_ring_size];

  bool has_work() const noexcept {
    return enqueue_pos.load(std::memory_order_relaxed) != dequeue_pos.load(std::memory_order_relaxed);
  }

  bool try_push(std::uint64_t task) noexcept {
    std::uint64_t pos = enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells[pos % pool_ring_size];
      const auto dif = static_cast<std::int64_t>(c.sequence.load(std::memory_order_acquire) - pos);
      if (dif == 0) {
        if (enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.task = task;
          c.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = enqueue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  bool try_pop(std::uint64_t& task) noexcept {
    std::uint64_t pos = dequeue_pos.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells[pos % pool_ring_size];
      const auto dif = static_cast<std::int64_t>(c.sequence.load(std::memory_order_acquire) - (pos + 1));
      if (dif == 0) {
        if (dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          task = c.task;
          c.sequence.store(pos + pool_ring_size, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // empty, or the next cell is still being written
      } else {
        pos = dequeue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  void wake_one() noexcept {
    work_seq.fetch_add(1, std::memory_order_release);
    futex_wake(work_seq, 1);
  }

  // A push, then a wake-up only if someone sleeps. The fence pairs with sleep_until_work's:
  // either the sleeper sees the push or we see the sleeper.
  void submit(std::uint64_t task) noexcept {
    while (!try_push(task)) cpu_relax();  // never full: one task queued at a time
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_relaxed) != 0) wake_one();
  }

  // A worker that popped: pass the wake-up on if more is queued (unfenced, as in the model).
  void wake_another() noexcept {
    if (sleepers.load(std::memory_order_relaxed) != 0 && has_work()) wake_one();
  }

  bool spin_for_work() const noexcept {
    for (std::uint32_t i = 0; i < idle_spin; ++i) {
      if (has_work()) return true;
      cpu_relax();
    }
    return false;
  }

  void sleep_until_work(pid_t parent) noexcept {
    const std::uint32_t seq = work_seq.load(std::memory_order_acquire);
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!has_work() && shutdown.load(std::memory_order_relaxed) == 0 &&
        futex_wait(work_seq, seq, &liveness_period) == ETIMEDOUT && ::getppid() != parent) {
      ::_exit(1);
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
  }

  // Ping i submits pong i and returns; pong i submits ping i + 1 and returns.
  void run(std::uint64_t task) noexcept {
    const std::uint64_t i = task >> 1;
    if ((task & 1) != 0) {
      submit((i + 1) << 1);
      return;
    }
    const std::int64_t now = now_ns();
    if (i == 0) {
      first_ns = now;
    } else if (each != nullptr) {
      each[i - 1] = static_cast<std::uint32_t>(std::min<std::int64_t>(now - last_ns, UINT32_MAX));
    }
    last_ns = now;
    if (i == rounds) {
      done.store(1, std::memory_order_release);
      futex_wake(done, 1);
      return;
    }
    submit(task | 1);
  }
};

// A forked worker: processes/pool's worker loop. Only shared memory, futexes, clock reads and
// _exit(), all safe in the copy of a multi-threaded parent.
[[noreturn]] void run_pool_process(process_pool_shared& s, pid_t parent) noexcept {
  die_with_parent(parent);
  s.started.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(s.started, 1);
  for (;;) {
    std::uint64_t task = 0;
    if (s.try_pop(task)) {
      s.wake_another();
      s.run(task);
      continue;
    }
    if (s.shutdown.load(std::memory_order_acquire) != 0) ::_exit(0);
    if (s.spin_for_work()) continue;
    s.sleep_until_work(parent);
  }
}

// A task that submits a task that submits the next, on a pool of two worker processes: the
// hand-off of a unit woken through the shared queue, as processes/pool does it.
std::int64_t process_pool_handoff_round_trip(std::uint64_t n, std::vector<std::uint32_t>* each) {
  const std::size_t header = (sizeof(process_pool_shared) + 63) / 64 * 64;
  const shared_region region(header + (each != nullptr ? n * sizeof(std::uint32_t) : 0));
  process_pool_shared& s = *new (region.data()) process_pool_shared{};
  for (std::uint64_t i = 0; i < pool_ring_size; ++i) s.cells[i].sequence.store(i, std::memory_order_relaxed);
  s.idle_spin = pool_processes <= usable_cpu_count() ? idle_spin_rounds : 0;
  s.rounds = n;
  if (each != nullptr) s.each = region.at<std::uint32_t>(header);
  const pid_t parent = ::getpid();
  child_process workers[pool_processes];  // after the region: reaped before it is unmapped
  for (auto& worker : workers) {
    const pid_t pid = ::fork();
    if (pid < 0) fail("fork");
    if (pid == 0) run_pool_process(s, parent);
    worker.adopt(pid);
  }
  const auto workers_alive = [&workers] {
    for (auto& worker : workers) {
      if (worker.ended()) throw std::runtime_error("process pool hand-off: a worker process ended");
    }
  };
  // Wait for both workers to exist, so neither one's start is in the volley.
  for (std::uint32_t started; (started = s.started.load(std::memory_order_acquire)) < pool_processes;) {
    if (futex_wait(s.started, started, &liveness_period) == ETIMEDOUT) workers_alive();
  }
  s.submit(0);
  while (s.done.load(std::memory_order_acquire) == 0) {
    if (futex_wait(s.done, 0, &liveness_period) == ETIMEDOUT) workers_alive();
  }
  s.shutdown.store(1, std::memory_order_seq_cst);
  s.work_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(s.work_seq, INT_MAX);
  for (auto& worker : workers) {
    if (!worker.exited_cleanly()) throw std::runtime_error("process pool hand-off: a worker process failed");
  }
  if (each != nullptr) each->insert(each->end(), s.each, s.each + n);
  return s.last_ns - s.first_ns;
}

// Handlers posted to one io_context on one thread, 1000 queued at a time: the cost of one post.
std::int64_t asio_post(std::uint64_t n, std::vector<std::uint32_t>*) {
  asio::io_context io(1);
  std::uint64_t ran = 0;
  const auto start = clock::now();
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t batch = std::min<std::uint64_t>(1000, n - done);
    for (std::uint64_t i = 0; i < batch; ++i) asio::post(io, [&ran] { ++ran; });
    io.run();
    io.restart();
    done += batch;
  }
  const std::int64_t ns = since(start);
  if (ran != n) throw std::runtime_error("asio_post: lost handlers");
  return ns;
}

// Two parties on one io_context and one thread, each posting the other when it runs: a round trip
// is two dependent posts, the least a single-threaded event loop needs for a hand-off there and back.
struct post_volley {
  asio::io_context& io;
  std::uint64_t remaining_halves;
  void operator()() {
    if (--remaining_halves > 0) asio::post(io, *this);
  }
};

std::int64_t asio_post_round_trip(std::uint64_t n, std::vector<std::uint32_t>*) {
  asio::io_context io(1);
  const auto start = clock::now();
  asio::post(io, post_volley{io, 2 * n});
  io.run();
  return since(start);
}

asio::awaitable<void> empty_coroutine(std::uint64_t& ran) {
  ++ran;
  co_return;
}

std::int64_t asio_co_spawn(std::uint64_t n, std::vector<std::uint32_t>*) {
  asio::io_context io(1);
  std::uint64_t ran = 0;
  const auto start = clock::now();
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t batch = std::min<std::uint64_t>(1000, n - done);
    for (std::uint64_t i = 0; i < batch; ++i) asio::co_spawn(io, empty_coroutine(ran), asio::detached);
    io.run();
    io.restart();
    done += batch;
  }
  const std::int64_t ns = since(start);
  if (ran != n) throw std::runtime_error("asio_co_spawn: lost coroutines");
  return ns;
}

// A coroutine that suspends and is resumed n times, each time by co_await asio::post: one post
// plus one resumption of an awaitable frame, the least a coroutine hand-off can cost in Asio.
asio::awaitable<void> yield_n(std::uint64_t n, std::uint64_t& resumed) {
  const auto executor = co_await asio::this_coro::executor;
  for (std::uint64_t i = 0; i < n; ++i) {
    co_await asio::post(executor, asio::use_awaitable);
    ++resumed;
  }
}

std::int64_t asio_coroutine_yield(std::uint64_t n, std::vector<std::uint32_t>*) {
  asio::io_context io(1);
  std::uint64_t resumed = 0;
  std::exception_ptr failure;
  const auto start = clock::now();
  asio::co_spawn(io, yield_n(n, resumed), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  const std::int64_t ns = since(start);
  if (failure) std::rethrow_exception(failure);
  if (resumed != n) throw std::runtime_error("asio_coroutine_yield: lost resumptions");
  return ns;
}

// Two coroutines on one io_context thread handing a number there and back through two Asio
// experimental channels of capacity 1, written the plain way (co_await async_send / async_receive):
// what one hand-off costs in Asio's own channel and awaitable machinery.
using number_channel = asio::experimental::channel<void(asio::error_code, std::uint64_t)>;

asio::awaitable<void> serve(number_channel& there, number_channel& back, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t v = co_await there.async_receive(asio::use_awaitable);
    co_await back.async_send(asio::error_code{}, v + 1, asio::use_awaitable);
  }
}

asio::awaitable<void> volley(number_channel& there, number_channel& back, std::uint64_t n, std::uint64_t& sum) {
  for (std::uint64_t i = 0; i < n; ++i) {
    co_await there.async_send(asio::error_code{}, i, asio::use_awaitable);
    sum += co_await back.async_receive(asio::use_awaitable);
  }
}

std::int64_t asio_channel_round_trip(std::uint64_t n, std::vector<std::uint32_t>*) {
  asio::io_context io(1);
  number_channel there(io, 1), back(io, 1);
  std::uint64_t sum = 0;
  std::exception_ptr failure;
  auto keep = [&failure](std::exception_ptr e) {
    if (e && !failure) failure = e;
  };
  const auto start = clock::now();
  asio::co_spawn(io, serve(there, back, n), keep);
  asio::co_spawn(io, volley(there, back, n, sum), keep);
  io.run();
  const std::int64_t ns = since(start);
  if (failure) std::rethrow_exception(failure);
  if (sum != n * (n + 1) / 2) throw std::runtime_error("asio_channel_round_trip: lost messages");
  return ns;
}

// An io_context run by a thread of its own, kept running by a work guard until destruction.
struct loop_thread {
  explicit loop_thread(int on_cpu = -1) : cpu(on_cpu) {}
  int cpu;  // -1: unpinned
  asio::io_context io{1};  // one thread runs it, as coroutines/asio-mt's loops
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] {
    pinned on(cpu);
    io.run();
  }};

  ~loop_thread() {
    guard.reset();
    thread.join();
  }
};

struct loop_volley {
  asio::io_context* a;
  asio::io_context* b;
  round_trip_clock clock;
  completion done;
};

struct loop_pong {
  loop_volley* v;
  std::uint64_t i;
  void operator()() const;
};

// Ping i, on loop A, posts pong i to loop B; pong i posts ping i + 1 back to A.
struct loop_ping {
  loop_volley* v;
  std::uint64_t i;
  void operator()() const {
    if (v->clock.ping(i)) {
      v->done.signal();
      return;
    }
    asio::post(*v->b, loop_pong{v, i});
  }
};

void loop_pong::operator()() const { asio::post(*v->a, loop_ping{v, i + 1}); }

// A handler on one event loop posting to another loop's thread and back: the hand-off between
// units on different loops of coroutines/asio-mt. Like the other round trips, its two loop
// threads may also be pinned to one CPU or to two.
std::int64_t asio_cross_loop_round_trip_on(placement where, std::uint64_t n, std::vector<std::uint32_t>* each) {
  const auto [cpu_a, cpu_b] = cpus_for(where);
  loop_thread a(cpu_a), b(cpu_b);
  {
    // Both loops running before the volley starts.
    std::latch running(2);
    asio::post(a.io, [&running] { running.count_down(); });
    asio::post(b.io, [&running] { running.count_down(); });
    running.wait();
  }
  loop_volley v{&a.io, &b.io, round_trip_clock(n, each), {}};
  asio::post(a.io, loop_ping{&v, 0});
  v.done.wait();
  return v.clock.total();
}

// One arena for the process, like threads/tbb's: its workers stay alive between calls.
std::int64_t tbb_task(std::uint64_t n, std::vector<std::uint32_t>*) {
  static tbb::task_arena arena(static_cast<int>(usable_cpu_count()));
  arena.initialize();
  std::atomic<std::uint64_t> ran{0};
  const auto start = clock::now();
  arena.execute([&] {
    tbb::task_group group;
    for (std::uint64_t i = 0; i < n; ++i) group.run([&] { ran.fetch_add(1, std::memory_order_relaxed); });
    group.wait();
  });
  const std::int64_t ns = since(start);
  if (ran.load() != n) throw std::runtime_error("tbb_task: lost tasks");
  return ns;
}

// oneTBB's own hand-off: group.run() from inside a task spawns into the running thread's local
// deque, which it takes from (LIFO) once its task returns, unless an idle thread steals it first.
struct tbb_volley {
  tbb::task_group* group;
  round_trip_clock clock;
};

struct tbb_pong {
  tbb_volley* v;
  std::uint64_t i;
  void operator()() const;
};

// Ping i runs pong i and returns; pong i runs ping i + 1 and returns.
struct tbb_ping {
  tbb_volley* v;
  std::uint64_t i;
  void operator()() const {
    if (!v->clock.ping(i)) v->group->run(tbb_pong{v, i});
  }
};

void tbb_pong::operator()() const { v->group->run(tbb_ping{v, i + 1}); }

// A task that runs a task that runs the next, in an arena of two threads (the caller, waiting in
// group.wait(), is one): what threads/tbb's hand-off costs at the least. One arena for the
// process, like tbb_task's.
std::int64_t tbb_handoff_round_trip(std::uint64_t n, std::vector<std::uint32_t>* each) {
  static tbb::task_arena arena(2);
  arena.initialize();
  return arena.execute([&] {
    tbb::task_group group;
    tbb_volley v{&group, round_trip_clock(n, each)};
    group.run(tbb_ping{&v, 0});
    group.wait();
    return v.clock.total();
  });
}

// Processes first: fork before this process has any helper threads (TBB's stay alive). The
// probes models register (CMBENCH_REGISTER_PROBE) come after these, so they must leave no thread
// behind either.
constexpr probe builtin_probes[] = {
    {"fork_exit_wait", "fork() a child that _exit()s at once, waitpid() it", "process", fork_exit_wait},
    {"pipe_round_trip", "a byte written to another process through a pipe and written back", "round trip",
     placed<pipe_round_trip_on, placement::any>, true},
    {"pipe_round_trip_same_cpu", "the same with both processes pinned to one CPU", "round trip",
     placed<pipe_round_trip_on, placement::same_cpu>, true},
    {"pipe_round_trip_cross_cpu", "the same with the processes pinned to two different CPUs", "round trip",
     placed<pipe_round_trip_on, placement::cross_cpu>, true},
    {"futex_round_trip",
     "a turn handed to another process through a futex word in shared memory and handed back", "round trip",
     placed<futex_round_trip_on, placement::any>, true},
    {"futex_round_trip_same_cpu", "the same with both processes pinned to one CPU", "round trip",
     placed<futex_round_trip_on, placement::same_cpu>, true},
    {"futex_round_trip_cross_cpu", "the same with the processes pinned to two different CPUs", "round trip",
     placed<futex_round_trip_on, placement::cross_cpu>, true},
    {"process_pool_handoff_round_trip",
     "on a pool of 2 processes sharing a futex-woken ring in shared memory, a task submits a task that submits "
     "the next",
     "round trip", process_pool_handoff_round_trip, true},
    {"tcp_round_trip",
     "8 bytes over loopback TCP (TCP_NODELAY) to a blocking echo server and back; the server is a forked process, "
     "as a remote node is",
     "round trip", placed<tcp::blocking_round_trip_on, placement::any>, true},
    {"tcp_round_trip_same_cpu", "the same with client and server pinned to one CPU", "round trip",
     placed<tcp::blocking_round_trip_on, placement::same_cpu>, true},
    {"tcp_round_trip_cross_cpu", "the same with client and server pinned to two different CPUs", "round trip",
     placed<tcp::blocking_round_trip_on, placement::cross_cpu>, true},
    {"asio_tcp_round_trip",
     "the same between Asio coroutines (async_write, async_read), one io_context thread in each process",
     "round trip", tcp::asio_round_trip_default, true},
    {"thread_create_join", "create a std::thread that does nothing, join it", "thread", thread_create_join},
    {"condvar_round_trip", "a turn handed to another thread by mutex + condition_variable and handed back",
     "round trip", placed<condvar_round_trip_on, placement::any>, true},
    {"condvar_round_trip_same_cpu", "the same with both threads pinned to one CPU", "round trip",
     placed<condvar_round_trip_on, placement::same_cpu>, true},
    {"condvar_round_trip_cross_cpu", "the same with the threads pinned to two different CPUs", "round trip",
     placed<condvar_round_trip_on, placement::cross_cpu>, true},
    {"pool_handoff_round_trip",
     "on a pool of 2 threads sharing a mutex-guarded FIFO, a task submits a task that submits the next",
     "round trip", pool_handoff_round_trip, true},
    {"asio_post", "asio::post of a handler to a one-thread io_context, 1000 queued at a time", "post",
     asio_post},
    {"asio_post_round_trip", "two handlers on one io_context thread posting each other: two dependent posts",
     "round trip", asio_post_round_trip},
    {"asio_coroutine_yield", "a coroutine suspended and resumed by co_await asio::post on a one-thread io_context",
     "resumption", asio_coroutine_yield},
    {"asio_channel_round_trip",
     "two coroutines on one io_context thread: a number there and back through two Asio channels of capacity 1",
     "round trip", asio_channel_round_trip},
    {"asio_cross_loop_round_trip",
     "a handler on one io_context thread posts to another io_context thread, whose handler posts back",
     "round trip", placed<asio_cross_loop_round_trip_on, placement::any>, true},
    {"asio_cross_loop_round_trip_same_cpu", "the same with both loop threads pinned to one CPU", "round trip",
     placed<asio_cross_loop_round_trip_on, placement::same_cpu>, true},
    {"asio_cross_loop_round_trip_cross_cpu", "the same with the loop threads pinned to two different CPUs",
     "round trip", placed<asio_cross_loop_round_trip_on, placement::cross_cpu>, true},
    {"asio_co_spawn", "co_spawn of an empty awaitable on a one-thread io_context, 1000 at a time", "coroutine",
     asio_co_spawn},
    {"tbb_task", "tbb::task_group::run of an empty task in an arena of every CPU", "task", tbb_task},
    {"tbb_handoff_round_trip",
     "in an arena of 2 threads, a task_group task runs a task that runs the next (spawned to its own deque)",
     "round trip", tbb_handoff_round_trip, true},
};

// Every probe: the built-in ones, then those registered from the models' own sources, in the
// order their registrations ran. They register during static initialisation, before anything
// reads the list (and so before any thread exists), so the list takes no lock.
std::vector<probe>& registry() {
  static std::vector<probe> all(std::begin(builtin_probes), std::end(builtin_probes));
  return all;
}

}  // namespace

std::span<const probe> all_probes() { return registry(); }

const probe* find_probe(std::string_view name) {
  for (const auto& p : registry()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool register_probe(const probe& p) {
  if (p.name.empty() || p.what.empty() || p.per.empty() || p.run == nullptr) {
    throw std::logic_error("floor probe registered without a name, a description, a unit or a function: " +
                           std::string(p.name));
  }
  if (find_probe(p.name) != nullptr) throw std::logic_error("floor probe registered twice: " + std::string(p.name));
  registry().push_back(p);
  return true;
}

measurement measure(const probe& p, std::chrono::nanoseconds min_time, int samples) {
  if (samples < 1) throw std::invalid_argument("floors: samples must be at least 1");
  // Grow n until one sample is long enough; the growth runs double as warm-up.
  std::uint64_t n = 1;
  std::int64_t took = p.run(n, nullptr);
  while (took < min_time.count() && n < (std::uint64_t{1} << 40)) {
    const double scale = took > 0 ? 1.4 * static_cast<double>(min_time.count()) / static_cast<double>(took) : 10;
    n = std::max(n + 1, static_cast<std::uint64_t>(static_cast<double>(n) * std::min(scale, 10.0)));
    took = p.run(n, nullptr);
  }
  measurement m;
  m.ops_per_sample = n;
  std::vector<std::uint32_t> each;
  if (p.timed_each) each.reserve(n * static_cast<std::uint64_t>(samples));
  for (int s = 0; s < samples; ++s) {
    m.samples_ns.push_back(static_cast<double>(p.run(n, p.timed_each ? &each : nullptr)) / static_cast<double>(n));
  }
  m.ns_per_op = median(m.samples_ns);
  if (!each.empty()) m.p50_ns = median(std::move(each));
  return m;
}

}  // namespace cmbench::floors
