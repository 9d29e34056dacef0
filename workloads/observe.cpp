#include "workloads/observe.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace cmbench::observe {
namespace {

trial_page* attached_page = nullptr;
int request_pipe = -1;
int reply_pipe = -1;

thread_local std::uint32_t cached_place = 0;

void forget_place_in_child() { cached_place = 0; }
// Registered at start-up, not on first use: a first use may be in a forked child, where a lock
// another thread held at the fork would never be released.
[[maybe_unused]] const bool forget_registered = ::pthread_atfork(nullptr, nullptr, &forget_place_in_child) == 0;

trial_page* map_page(int fd) {
  const int flags = fd < 0 ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED;
  void* at = ::mmap(nullptr, sizeof(trial_page), PROT_READ | PROT_WRITE, flags, fd, 0);
  if (at == MAP_FAILED) throw std::runtime_error(std::string("cannot map the trial's shared page: ") + std::strerror(errno));
  return fd < 0 ? new (at) trial_page{} : static_cast<trial_page*>(at);  // the harness built its own
}

}  // namespace

void attach(int page_fd, int request_fd, int reply_fd) {
  attached_page = map_page(page_fd);
  request_pipe = request_fd;
  reply_pipe = reply_fd;
}

trial_page& page() {
  if (attached_page == nullptr) attached_page = map_page(-1);
  return *attached_page;
}

bool sample_memory_now() noexcept {
  if (request_pipe < 0 || reply_pipe < 0) return false;
  const char request = 's';
  ssize_t n;
  do n = ::write(request_pipe, &request, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) return false;
  char reply = 0;
  do n = ::read(reply_pipe, &reply, 1);
  while (n < 0 && errno == EINTR);
  return n == 1;
}

std::uint32_t current_place() noexcept {
  if (cached_place == 0) {
    cached_place = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  }
  return cached_place;
}

}  // namespace cmbench::observe
