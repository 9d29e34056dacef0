// processes/pool's job area: the shared memory a tree or graph job needs, in a size only the job
// knows (a tree's per-node state, a graph's units, channels and mutexes). A memfd created before
// the workers are forked, so every worker holds it. For each such job the caller sizes the file
// to what the job needs, and a worker that pops the job's first task maps it, unless it already
// maps that much from an earlier job. After the job the caller truncates the file to zero: its
// pages go back, and the next job starts from zero pages, which is its initial state. So the
// pool maps what the job needs, not a fixed reservation.
//
// Each worker maps the area at its own address, so everything in it is addressed by offsets,
// and futexes in it are keyed by the file's pages, which all processes share. The caller never
// maps it.
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <system_error>

#include "models/model.hpp"
#include "models/system_limits.hpp"

namespace cmbench::detail {

// The area's file, made by the caller before the fork.
class job_area_file {
 public:
  job_area_file() : fd_(::memfd_create("cmbench-pool-job-area", MFD_CLOEXEC)) {
    if (fd_ >= 0) return;
    const int error = errno;
    if (error == EMFILE || error == ENFILE) {
      throw limit_error(std::string("processes/pool: cannot open the shared job area (memfd_create: ") +
                        std::strerror(error) + "; " + describe_descriptor_limit(error) + ")");
    }
    throw std::system_error(error, std::generic_category(), "processes/pool: memfd_create");
  }
  ~job_area_file() { ::close(fd_); }
  job_area_file(const job_area_file&) = delete;
  job_area_file& operator=(const job_area_file&) = delete;

  int fd() const { return fd_; }

 private:
  int fd_;
};

// A worker's mapping of the area (a copy per process: each maps it itself). Async-signal-safe.
class job_area_mapping {
 public:
  explicit job_area_mapping(int fd) noexcept : fd_(fd) {}

  // Maps the area as far as `bytes`, unless an earlier job's mapping already covers it. False
  // (errno set) if the mapping failed.
  bool cover(std::size_t bytes) noexcept {
    if (bytes <= mapped_) return true;
    if (base_ != nullptr) ::munmap(base_, mapped_);
    base_ = nullptr;
    mapped_ = 0;
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (at == MAP_FAILED) return false;
    base_ = static_cast<std::byte*>(at);
    mapped_ = bytes;
    return true;
  }

  std::byte* base() const noexcept { return base_; }

 private:
  int fd_;
  std::byte* base_ = nullptr;
  std::size_t mapped_ = 0;
};

}  // namespace cmbench::detail
