// The floors of each model's primitives, measured with Google Benchmark on this machine: what one
// unit costs at the very least (create+join a thread, fork+wait a process, post to an event loop,
// run a TBB task). A backend far above its floor in `cmbench run` has overhead to explain.
//
//   build/release/models/cmbench_floors --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

namespace {

void thread_create_join(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] { benchmark::ClobberMemory(); });
    t.join();
  }
}
BENCHMARK(thread_create_join)->UseRealTime();

void fork_exit_wait(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
  }
}
BENCHMARK(fork_exit_wait)->UseRealTime();

// A hand-off between two threads through a mutex and condition variable, there and back.
void condvar_round_trip(benchmark::State& state) {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: main's, 1: the partner's, -1: stop
  std::thread partner([&] {
    std::unique_lock lock(m);
    while (true) {
      cv.wait(lock, [&] { return turn != 0; });
      if (turn < 0) return;
      turn = 0;
      cv.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock lock(m);
    turn = 1;
    cv.notify_one();
    cv.wait(lock, [&] { return turn == 0; });
  }
  {
    std::lock_guard lock(m);
    turn = -1;
  }
  cv.notify_one();
  partner.join();
}
BENCHMARK(condvar_round_trip)->UseRealTime();

// A byte through a pipe to another process and back.
void pipe_round_trip(benchmark::State& state) {
  int there[2], back[2];
  if (pipe(there) != 0 || pipe(back) != 0) {
    state.SkipWithError("pipe failed");
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(there[1]);  // or the read below never sees end-of-file
    close(back[0]);
    char c;
    while (read(there[0], &c, 1) == 1) {
      if (write(back[1], &c, 1) != 1) break;
    }
    _exit(0);
  }
  char c = 'x';
  for (auto _ : state) {
    if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) state.SkipWithError("pipe i/o failed");
  }
  close(there[1]);
  waitpid(pid, nullptr, 0);
  close(there[0]);
  close(back[0]);
  close(back[1]);
}
BENCHMARK(pipe_round_trip)->UseRealTime();

void asio_post(benchmark::State& state) {
  asio::io_context io(1);
  std::uint64_t ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) asio::post(io, [&] { ++ran; });
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ran));
}
BENCHMARK(asio_post);

asio::awaitable<void> empty_coroutine(std::uint64_t& ran) {
  ++ran;
  co_return;
}

void asio_co_spawn(benchmark::State& state) {
  asio::io_context io(1);
  std::uint64_t ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) asio::co_spawn(io, empty_coroutine(ran), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ran));
}
BENCHMARK(asio_co_spawn);

void tbb_task_group_run(benchmark::State& state) {
  tbb::task_arena arena(static_cast<int>(std::thread::hardware_concurrency()));
  std::atomic<std::uint64_t> ran{0};
  for (auto _ : state) {
    arena.execute([&] {
      tbb::task_group group;
      for (int i = 0; i < 1000; ++i) group.run([&] { ran.fetch_add(1, std::memory_order_relaxed); });
      group.wait();
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ran.load()));
}
BENCHMARK(tbb_task_group_run)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
