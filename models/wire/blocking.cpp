#include "models/wire/blocking.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace cmbench::wire {
namespace {

void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void log_line(const serve_job& job, const std::string& line) {
  if (job.log != nullptr) job.log(job.context, line);
}

// The size of the frames a handshake moves, as encode_frame makes them.
std::size_t hello_bytes(const std::string& token) {
  return encode_frame(hello{protocol_version, role::coordinator, token}).size();
}
std::size_t welcome_bytes() { return encode_frame(welcome{}).size(); }

}  // namespace

void encode_request(const scatter_job& job, std::uint64_t task, std::vector<std::uint8_t>& frame) {
  // task_request payload: id u64, compute_us u32, wait_ms u32, payload (u32 length + bytes).
  const std::uint32_t bytes = job.payload_size_of != nullptr ? job.payload_size_of(job.context, task) : job.payload_bytes;
  if (bytes > max_payload - 20) {
    throw std::length_error("task " + std::to_string(task) + "'s payload of " + std::to_string(bytes) +
                            " bytes exceeds a frame's " + std::to_string(max_payload - 20));
  }
  const std::uint32_t length = 8 + 4 + 4 + 4 + bytes;
  frame.resize(header_size + length);
  const auto head = encode_header(header{protocol_version, frame_type::task_request, 0, length});
  std::memcpy(frame.data(), head.data(), header_size);
  std::uint8_t* p = frame.data() + header_size;
  put_u64(p, task);
  put_u32(p + 8, job.compute_us);
  put_u32(p + 12, job.wait_ms);
  put_u32(p + 16, bytes);
  if (bytes > 0) job.payload_of(job.context, task, p + 20, bytes);
}

std::uint64_t result_value(const scatter_job& job, std::size_t node, std::uint64_t task, const frame_read& r) {
  if (r.io.status == io_status::timeout) {
    throw std::runtime_error(node_name(job, node) + " did not answer task " + std::to_string(task) +
                             " before the trial's deadline");
  }
  if (!r.ok()) {
    throw std::runtime_error(node_name(job, node) + " failed task " + std::to_string(task) + ": " + r.describe());
  }
  if (const auto* e = std::get_if<error>(&r.msg)) {
    throw std::runtime_error(node_name(job, node) + " answered task " + std::to_string(task) +
                             " with an error: " + e->message);
  }
  const auto* result = std::get_if<task_result>(&r.msg);
  if (result == nullptr) {
    throw std::runtime_error(node_name(job, node) + " answered task " + std::to_string(task) + " with a " +
                             std::string(frame_type_name(type_of(r.msg))) + " frame");
  }
  if (result->id != task) {
    throw std::runtime_error(node_name(job, node) + " answered task " + std::to_string(result->id) +
                             " when task " + std::to_string(task) + " was asked");
  }
  return result->value;
}

call_connection::call_connection(const scatter_job& job, std::size_t node) : node_(node) {
  const node_address& address = job.nodes.at(node);
  try {
    fd_ = connect_tcp(address.host, address.port, job.deadline);
  } catch (const std::system_error& e) {
    // Running out of descriptors stays a system_error: the trial names it as a limit.
    if (e.code().value() == EMFILE || e.code().value() == ENFILE) throw;
    throw std::runtime_error(node_name(job, node) + " is unreachable: " + e.what());
  }
  job.counters->add_connection();
  const handshake_result h = client_handshake(fd_.get(), job.token, role::coordinator, job.deadline);
  job.counters->add_sent(hello_bytes(job.token));
  if (!h) throw std::runtime_error(node_name(job, node) + " refused the connection: " + h.detail);
  job.counters->add_received(welcome_bytes());
}

std::uint64_t call_connection::call(const scatter_job& job, std::uint64_t task) {
  encode_request(job, task, frame_);
  job.call_started(job.context, task);
  if (io_result w = write_all(fd_.get(), frame_, job.deadline); !w) {
    throw std::runtime_error(node_name(job, node_) + ": sending task " + std::to_string(task) + ": " + w.describe());
  }
  job.counters->add_sent(frame_.size());
  const frame_read r = read_frame(fd_.get(), job.deadline);
  job.counters->add_received(r.io.transferred);
  const std::uint64_t value = result_value(job, node_, task, r);
  job.call_finished(job.context, task, value);
  return value;
}

std::string peer_name(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown peer";
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    std::string name = text;
    name += ':';
    name += std::to_string(ntohs(in->sin_port));
    return name;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  std::string name = "[";
  name += text;
  name += "]:";
  name += std::to_string(ntohs(in6->sin6_port));
  return name;
}

bool accept_handshake(const serve_job& job, int fd, const std::string& peer, std::chrono::milliseconds timeout) {
  const handshake_result h = serve_handshake(fd, job.token, role::coordinator, timeout);
  if (!h) {
    job.counters->refused.fetch_add(1, std::memory_order_relaxed);
    log_line(job, "refused " + peer + ": " + std::string(refuse_reason_name(h.reason)) + ": " + h.detail);
    return false;
  }
  job.counters->add_received(hello_bytes(job.token));
  job.counters->add_sent(welcome_bytes());
  return true;
}

std::optional<task_request> read_request(const serve_job& job, int fd, const std::string& peer,
                                         std::chrono::milliseconds timeout) {
  // The frame has started to arrive (the caller waited for the socket to be readable): the rest
  // of it must follow promptly, or the connection is dropped.
  const frame_read r = read_frame(fd, deadline_in(timeout));
  job.counters->add_received(r.io.transferred);
  if (r.io.status == io_status::closed && r.io.transferred == 0) return std::nullopt;  // a clean close
  if (!r.ok()) {
    log_line(job, "dropped " + peer + ": " + r.describe());
    if (r.io.status == io_status::ok) {  // a bad frame on a live connection: say why, best effort
      (void)write_frame(fd, error{0, r.describe()}, deadline_in(std::chrono::milliseconds(200)));
    }
    return std::nullopt;
  }
  if (std::holds_alternative<bye>(r.msg)) return std::nullopt;
  if (auto* request = std::get_if<task_request>(&r.msg)) return std::move(*request);
  const std::string what = "expected a task_request, got " + std::string(frame_type_name(type_of(r.msg)));
  log_line(job, "dropped " + peer + ": " + what);
  (void)write_frame(fd, error{0, what}, deadline_in(std::chrono::milliseconds(200)));
  return std::nullopt;
}

bool reply(const serve_job& job, int fd, const task_request& request) {
  const std::uint64_t value = job.task_value(job.context, request.id, request.compute_us, request.payload.data(),
                                             static_cast<std::uint32_t>(request.payload.size()));
  const bytes frame = encode_frame(task_result{request.id, value});
  const io_result w = write_all(fd, frame, deadline_in(default_handshake_timeout));
  if (w) job.counters->add_sent(frame.size());
  return static_cast<bool>(w);
}

bool wait_readable_or_stop(int fd, int stop_fd) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

bool stop_requested(int stop_fd) {
  pollfd p{stop_fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

unique_fd accept_connection(const serve_job& job) {
  if (!wait_readable_or_stop(job.listen_fd, job.stop_fd)) return {};
  return try_accept_connection(job);
}

unique_fd try_accept_connection(const serve_job& job) {
  for (;;) {
    const int fd = ::accept4(job.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      job.counters->add_connection();
      return unique_fd(fd);
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    if (errno == EMFILE || errno == ENFILE) {
      log_line(job, std::string("cannot accept a connection: ") + std::strerror(errno) +
                        " (RLIMIT_NOFILE); it waits in the backlog");
      ::poll(nullptr, 0, 10);  // the listening socket stays readable: not a busy loop
      return {};
    }
    log_line(job, std::string("accept failed: ") + std::strerror(errno));
    return {};
  }
}

void polled_connections::add(unique_fd fd) {
  std::string peer = peer_name(fd.get());
  connections_.push_back({std::move(fd), std::move(peer), false, deadline_in(default_handshake_timeout)});
}

int polled_connections::watch(std::vector<pollfd>& fds, clock::time_point wake) const {
  for (const connection& c : connections_) {
    fds.push_back({c.fd.get(), POLLIN, 0});
    if (!c.welcomed) wake = std::min(wake, c.hello_by);
  }
  if (wake == clock::time_point::max()) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake - clock::now()).count();
  return static_cast<int>(std::max<long long>(0, left) + 1);
}

void polled_connections::serve(const serve_job& job, const std::vector<pollfd>& fds, std::size_t first) {
  std::vector<bool> keep(connections_.size(), true);
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    connection& c = connections_[i];
    if (fds[first + i].revents == 0) {
      if (!c.welcomed && clock::now() >= c.hello_by) {
        keep[i] = accept_handshake(job, c.fd.get(), c.peer, std::chrono::milliseconds(0));  // refused at once
      }
      continue;
    }
    if (!c.welcomed) {
      keep[i] = c.welcomed = accept_handshake(job, c.fd.get(), c.peer, poll_loop_frame_time);
      continue;
    }
    const auto request = read_request(job, c.fd.get(), c.peer, poll_loop_frame_time);
    keep[i] = request && answer(job, c.fd.get(), *request, [](std::uint32_t ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    });
  }
  for (std::size_t i = connections_.size(); i-- > 0;) {
    if (!keep[i]) connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace cmbench::wire
