// An anonymous MAP_SHARED mapping: memory every process a model forks shares with its parent.
// Workloads build a graph job's context in one, so the same context works under every model.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

namespace cmbench {

// An anonymous MAP_SHARED mapping: the parent maps it before fork() and every child writes into
// the same pages. Pages are zero until touched, and untouched pages cost nothing.
class shared_region {
 public:
  shared_region() = default;

  // `reserve` = false adds MAP_NORESERVE: address space for an arena most of which stays untouched.
  explicit shared_region(std::size_t bytes, bool reserve = true) : size_(bytes) {
    const int flags = MAP_SHARED | MAP_ANONYMOUS | (reserve ? 0 : MAP_NORESERVE);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(),
                              "mmap of " + std::to_string(bytes) + " shared bytes");
    }
    data_ = p;
  }

  shared_region(shared_region&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  shared_region& operator=(shared_region&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  ~shared_region() { release(); }

  void* data() const { return data_; }
  std::size_t size() const { return size_; }

  // The object of type T placed `offset` bytes into the region.
  template <class T>
  T* at(std::size_t offset = 0) const {
    return static_cast<T*>(static_cast<void*>(static_cast<char*>(data_) + offset));
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
  }

  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cmbench
