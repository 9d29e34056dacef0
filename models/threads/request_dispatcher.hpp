// A node's dispatcher for the models that serve requests on their own threads (threads/pool's
// workers, threads/tbb's arena): one thread accepts and polls every connection, reads each
// request and hands it to the model, which serves it on any of its threads (the wait slept there,
// the value computed, the reply written) and hands the connection back.
//
// One poll() covers the stop fd, the listening socket, a wake-up eventfd and every connection
// that is idle: a connection whose request is being served is not polled (so not read) again
// until its reply is written, so each connection carries one request at a time, in order, and
// only the thread serving it touches its socket meanwhile (no write lock needed). A connection's
// handshake is read only once its hello has started to arrive, so a client that says nothing
// holds nobody up; it is refused after the handshake timeout. Connections are shared_ptr-owned:
// the dispatcher never drops a busy one, and a served request lets go of its connection before
// it reports back, so a descriptor is never closed (and reused) under the thread serving it.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "models/remote.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench::detail {

class request_dispatcher {
  struct connection_state {
    wire::unique_fd fd;
    std::string peer;
    bool welcomed = false;
    wire::deadline hello_by;
    // Set by the dispatcher when it hands out a request, cleared by the thread that served it
    // (after writing `broken`: the reply could not be written, the connection ends).
    std::atomic<bool> busy{false};
    bool broken = false;
  };

 public:
  // One request handed to the model: serve(std::move(it)) exactly once, on any thread.
  class request {
   public:
    // Sleeps the wait, computes, replies; then gives the connection back to the dispatcher.
    static void serve(std::unique_ptr<request> r) noexcept {
      request_dispatcher& owner = *r->owner_;
      bool ok = false;
      try {
        ok = wire::answer(*owner.job_, r->connection_->fd.get(), r->task_, [](std::uint32_t ms) {
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        });
      } catch (...) {  // allocation in the reply: the connection ends, the node goes on
      }
      r->connection_->broken = !ok;
      r->connection_->busy.store(false, std::memory_order_release);
      r.reset();  // lets go of the connection (and the request's payload) before reporting back
      owner.served();
    }

   private:
    friend class request_dispatcher;
    request_dispatcher* owner_ = nullptr;
    std::shared_ptr<connection_state> connection_;
    wire::task_request task_;
  };

  explicit request_dispatcher(const serve_job& job) : job_(&job) {
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  request_dispatcher(const request_dispatcher&) = delete;
  request_dispatcher& operator=(const request_dispatcher&) = delete;

  // Serves until the job's stop_fd is readable, handing every request to
  // submit(std::unique_ptr<request>), which queues it for request::serve or throws having dropped
  // it; then waits until every request handed out has been served, and closes every connection.
  template <class Submit>
  void run(Submit&& submit) {
    std::vector<std::shared_ptr<connection_state>> connections;
    std::vector<pollfd> fds;
    std::vector<std::size_t> polled;  // fds[i + 3] is connections[polled[i]]
    for (;;) {
      // Drop the connections that have ended: refused, closed, a bad frame, a reply not written.
      std::erase_if(connections, [](const std::shared_ptr<connection_state>& c) {
        return !c->busy.load(std::memory_order_acquire) && c->broken;
      });
      fds.assign({{job_->stop_fd, POLLIN, 0}, {job_->listen_fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}});
      polled.clear();
      auto wake = wire::clock::time_point::max();
      for (std::size_t i = 0; i < connections.size(); ++i) {
        const connection_state& c = *connections[i];
        if (c.busy.load(std::memory_order_acquire)) continue;
        fds.push_back({c.fd.get(), POLLIN, 0});
        polled.push_back(i);
        if (!c.welcomed) wake = std::min(wake, c.hello_by);
      }
      int timeout_ms = -1;
      if (wake != wire::clock::time_point::max()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake - wire::clock::now()).count();
        timeout_ms = static_cast<int>(std::max<long long>(0, left) + 1);
      }
      if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        const int error = errno;
        drain();
        throw std::system_error(error, std::generic_category(), "request dispatcher: poll");
      }
      if (fds[0].revents != 0) break;
      if (fds[2].revents != 0) {
        std::uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
      }
      for (std::size_t i = 0; i < polled.size(); ++i) {
        connection_state& c = *connections[polled[i]];
        if (fds[i + 3].revents == 0) {
          if (!c.welcomed && wire::clock::now() >= c.hello_by) {
            c.broken = !wire::accept_handshake(*job_, c.fd.get(), c.peer, std::chrono::milliseconds(0));  // refused at once, logged
          }
          continue;
        }
        if (!c.welcomed) {
          c.welcomed = wire::accept_handshake(*job_, c.fd.get(), c.peer, wire::poll_loop_frame_time);
          c.broken = !c.welcomed;
          continue;
        }
        auto task = wire::read_request(*job_, c.fd.get(), c.peer, wire::poll_loop_frame_time);
        if (!task) {
          c.broken = true;
          continue;
        }
        auto r = std::make_unique<request>();
        r->owner_ = this;
        r->task_ = std::move(*task);
        r->connection_ = connections[polled[i]];
        c.busy.store(true, std::memory_order_relaxed);
        {
          std::lock_guard lock(mutex_);
          ++outstanding_;
        }
        try {
          submit(std::move(r));
        } catch (...) {  // not handed out (no memory to queue it): the connection ends
          c.busy.store(false, std::memory_order_relaxed);
          c.broken = true;
          std::lock_guard lock(mutex_);
          --outstanding_;
        }
      }
      if (fds[1].revents != 0) {
        if (wire::unique_fd fd = wire::try_accept_connection(*job_)) {
          auto c = std::make_shared<connection_state>();
          c->peer = wire::peer_name(fd.get());
          c->fd = std::move(fd);
          c->hello_by = wire::deadline_in(wire::default_handshake_timeout);
          connections.push_back(std::move(c));
        }
      }
    }
    drain();
  }

 private:
  // A request has been served: count it off and wake the dispatcher. Under the lock, so the
  // dispatcher cannot return (and destroy this) before the serving thread is done with it.
  void served() noexcept {
    std::lock_guard lock(mutex_);
    --outstanding_;
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    if (outstanding_ == 0) drained_.notify_all();
  }

  // Waits until every request handed out has been served.
  void drain() {
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [&] { return outstanding_ == 0; });
  }

  const serve_job* job_;
  wire::unique_fd wake_;
  std::mutex mutex_;
  std::condition_variable drained_;
  std::size_t outstanding_ = 0;
};

}  // namespace cmbench::detail
