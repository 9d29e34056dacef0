// The harness's CPU accounting of another process group (harness/system.hpp), as a node reads its
// serving process: every thread's CPU counts, not only the main thread's.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "harness/system.hpp"

namespace {

std::int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

TEST(system_accounting, a_multi_threaded_process_of_the_group_counts_every_thread) {
  int go[2], done[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setpgid(0, 0);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(1);
    // Three threads each burn 150 ms of their own CPU, then stay alive (as a pool's idle workers
    // are when the node reads its serving process); the main thread only waits.
    std::atomic<int> finished{0};
    for (int i = 0; i < 3; ++i) {
      std::thread([&finished] {
        const std::int64_t start = thread_cpu_ns();
        volatile std::uint64_t x = 0;
        while (thread_cpu_ns() - start < 150'000'000) x = x + 1;
        finished.fetch_add(1);
        for (;;) ::pause();
      }).detach();
    }
    while (finished.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (void)!::write(done[1], "d", 1);
    for (;;) ::pause();
  }
  ::setpgid(child, child);
  // Wait until the child runs in its own group (it set it too), then read the group.
  for (int i = 0; i < 1000 && ::getpgid(child) != child; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cmbench::system::trial_counters before = cmbench::system::read_counters_before(child);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  char byte = 0;
  ASSERT_EQ(::read(done[0], &byte, 1), 1);
  cmbench::system::trial_counters after = cmbench::system::read_counters_after(child, before);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  before.own = after.own = {};  // this process is not of the group
  const cmbench::system::usage used = cmbench::system::usage_between(before, after);
  EXPECT_GE(used.user_ns + used.sys_ns, 430'000'000) << "the group's threads burned 450 ms of CPU: " << used.user_ns + used.sys_ns;
  EXPECT_LT(used.user_ns + used.sys_ns, 2'000'000'000);
}

}  // namespace
