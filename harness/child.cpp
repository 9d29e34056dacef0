#include "harness/child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "harness/interrupts.hpp"

namespace cmbench {

child_output run_in_child_group(const std::function<std::string()>& work, std::chrono::milliseconds timeout) {
  child_output out;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    out.error = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::fflush(nullptr);
  interrupts::install();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    out.error = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return out;
  }
  if (pid == 0) {
    close(fds[0]);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    std::string text;
    try {
      text = work();
    } catch (const std::exception&) {
      _exit(1);
    }
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0 && errno != EINTR) _exit(1);
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  out.started = true;
  setpgid(pid, pid);
  interrupts::set_group(pid);
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;  // the deadline is checked above; a read now would block past it
    char buffer[4096];
    const ssize_t n = read(fds[0], buffer, sizeof(buffer));
    if (n == 0) break;
    if (n > 0) out.text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  kill(-pid, SIGKILL);
  waitpid(pid, &out.status, 0);
  interrupts::set_group(0);
  return out;
}

}  // namespace cmbench
