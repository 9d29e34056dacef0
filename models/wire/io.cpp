#include "models/wire/io.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "models/wire/token.hpp"

namespace cmbench::wire {

namespace {

// Milliseconds left until `until`, rounded up (so a wait never ends before the deadline); 0 when past.
int remaining_ms(deadline until) {
  const auto left = until - clock::now();
  if (left <= clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

// Waits for `events` on fd until `until`: ok, timeout or failed.
io_result wait_for(int fd, short events, deadline until, std::size_t done) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = remaining_ms(until);
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return {io_status::ok, 0, done};  // ready, or an error/hangup the next call reports
    if (n == 0) {
      if (ms == 0 || clock::now() >= until) return {io_status::timeout, 0, done};
      continue;
    }
    if (errno == EINTR) continue;
    return {io_status::failed, errno, done};
  }
}

std::string address_text(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

struct addrinfo_list {
  addrinfo* head = nullptr;
  ~addrinfo_list() { if (head) ::freeaddrinfo(head); }
};

void resolve(const std::string& host, std::uint16_t port, bool passive, addrinfo_list& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &out.head);
  if (rc != 0)
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "cannot resolve " + address_text(host, port) + ": " + ::gai_strerror(rc));
}

}  // namespace

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void unique_fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string io_result::describe() const {
  const std::string after = " after " + std::to_string(transferred) + " bytes";
  switch (status) {
    case io_status::ok: return "ok (" + std::to_string(transferred) + " bytes)";
    case io_status::timeout: return "timed out" + after;
    case io_status::closed:
      return "connection closed by peer" + after + (err != 0 ? std::string(" (") + std::strerror(err) + ")" : "");
    case io_status::failed: return std::string("socket error: ") + std::strerror(err) + after;
  }
  return "unknown";
}

io_result read_exact(int fd, std::span<std::uint8_t> buf, deadline until) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::recv(fd, buf.data() + done, buf.size() - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return {io_status::closed, 0, done};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (io_result w = wait_for(fd, POLLIN, until, done); !w) return w;
      continue;
    }
    if (errno == ECONNRESET) return {io_status::closed, errno, done};
    return {io_status::failed, errno, done};
  }
  return {io_status::ok, 0, done};
}

io_result write_all(int fd, byte_view buf, deadline until) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (io_result w = wait_for(fd, POLLOUT, until, done); !w) return w;
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET) return {io_status::closed, errno, done};
    return {io_status::failed, errno, done};
  }
  return {io_status::ok, 0, done};
}

std::string frame_read::describe() const {
  // A frame error first: a peer that closed part-way through a frame sent a truncated one.
  if (error != frame_error::none) return detail.empty() ? std::string(frame_error_name(error)) : detail;
  if (io.status != io_status::ok) return "reading a frame: " + io.describe();
  return "ok " + std::string(frame_type_name(type_of(msg)));
}

frame_read read_frame(int fd, deadline until, std::uint32_t limit) {
  frame_read r;
  std::array<std::uint8_t, header_size> head{};
  r.io = read_exact(fd, head, until);
  if (!r.io) {
    // A peer that closes part-way through a header sent a truncated one.
    if (r.io.status == io_status::closed && r.io.transferred > 0) {
      r.error = frame_error::truncated_header;
      r.detail = "truncated header: " + std::to_string(r.io.transferred) + " of " + std::to_string(header_size) +
                 " bytes, then the connection closed";
    }
    return r;
  }
  header h;
  r.error = decode_header(head, h, limit);
  if (r.error != frame_error::none) {
    r.detail = std::string(frame_error_name(r.error));
    if (r.error == frame_error::oversized) {
      std::uint32_t len = 0;
      for (int i = 0; i < 4; ++i) len |= std::uint32_t{head[8 + i]} << (8 * i);
      r.detail += ": " + std::to_string(len) + " bytes announced, limit " + std::to_string(std::min(limit, max_payload));
    } else if (r.error == frame_error::unsupported_version) {
      r.detail += ": " + std::to_string(head[4] | (head[5] << 8)) + " (this side speaks " +
                  std::to_string(protocol_version) + ")";
    } else if (r.error == frame_error::unknown_type) {
      r.detail += ": " + std::to_string(head[6]);
    }
    return r;
  }
  bytes payload(h.length);  // h.length <= limit: checked above, before this allocation
  r.io = read_exact(fd, payload, until);
  r.io.transferred += header_size;
  if (!r.io) {
    if (r.io.status == io_status::closed) {
      r.error = frame_error::truncated_payload;
      r.detail = "truncated payload: " + std::to_string(r.io.transferred - header_size) + " of " +
                 std::to_string(h.length) + " bytes, then the connection closed";
    }
    return r;
  }
  decoded d = decode_payload(h.type, payload);
  r.error = d.error;
  r.detail = std::move(d.detail);
  r.msg = std::move(d.msg);
  return r;
}

io_result write_frame(int fd, const message& m, deadline until) {
  const bytes frame = encode_frame(m);
  return write_all(fd, frame, until);
}

listener listen_tcp(const std::string& host, std::uint16_t port, int backlog) {
  addrinfo_list list;
  resolve(host, port, true, list);
  int last = 0;
  for (addrinfo* ai = list.head; ai != nullptr; ai = ai->ai_next) {
    unique_fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) { last = errno; continue; }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), backlog) != 0) {
      last = errno;
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) { last = errno; continue; }
    listener l;
    l.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    l.fd = std::move(fd);
    return l;
  }
  throw std::system_error(last, std::generic_category(), "cannot listen on " + address_text(host, port));
}

unique_fd accept_until(int listen_fd, deadline until) {
  for (;;) {
    if (io_result w = wait_for(listen_fd, POLLIN, until, 0); !w) {
      if (w.status == io_status::timeout) return {};
      throw std::system_error(w.err, std::generic_category(), "waiting to accept");
    }
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return unique_fd(fd);
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) continue;
    throw std::system_error(errno, std::generic_category(), "accept");
  }
}

unique_fd connect_tcp(const std::string& host, std::uint16_t port, deadline until) {
  addrinfo_list list;
  resolve(host, port, false, list);
  int last = 0;
  for (addrinfo* ai = list.head; ai != nullptr; ai = ai->ai_next) {
    unique_fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) { last = errno; continue; }
    const int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    // EINTR on a non-blocking connect: it goes on in the background, as with EINPROGRESS.
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) { last = errno; continue; }
    if (rc != 0) {
      io_result w = wait_for(fd.get(), POLLOUT, until, 0);
      if (!w) { last = w.status == io_status::timeout ? ETIMEDOUT : w.err; continue; }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
      if (soerr != 0) { last = soerr; continue; }
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  throw std::system_error(last, std::generic_category(), "cannot connect to " + address_text(host, port));
}

handshake_result serve_handshake(int fd, std::string_view token, role expected_role,
                                 std::chrono::milliseconds timeout) {
  handshake_result out;
  auto refuse_with = [&](refuse_reason reason, std::string detail) {
    out.accepted = false;
    out.reason = reason;
    out.detail = std::move(detail);
    // Best effort: the peer may be gone or not reading; never wait long for it.
    (void)write_frame(fd, refuse{reason, out.detail}, deadline_in(std::chrono::milliseconds(200)));
    return out;
  };
  frame_read r = read_frame(fd, deadline_in(timeout), max_token_size + 16);
  if (r.io.status == io_status::timeout)
    return refuse_with(refuse_reason::timeout,
                       "no hello within " + std::to_string(timeout.count()) + " ms (" + r.io.describe() + ")");
  if (r.error == frame_error::unsupported_version) return refuse_with(refuse_reason::bad_version, r.describe());
  if (!r.ok()) return refuse_with(refuse_reason::bad_frame, r.describe());
  const auto* h = std::get_if<hello>(&r.msg);
  if (h == nullptr)
    return refuse_with(refuse_reason::unexpected,
                       "expected hello, got " + std::string(frame_type_name(type_of(r.msg))));
  out.peer_hello = *h;
  if (h->version != protocol_version)
    return refuse_with(refuse_reason::bad_version, "hello speaks version " + std::to_string(h->version) +
                                                       ", this side " + std::to_string(protocol_version));
  // The token before the role: a peer without the token learns nothing else.
  if (!constant_time_equal(token, h->token)) return refuse_with(refuse_reason::bad_token, "wrong token");
  if (h->sender != expected_role)
    return refuse_with(refuse_reason::unexpected, "hello from a " + std::string(role_name(h->sender)) +
                                                      ", expected a " + std::string(role_name(expected_role)));
  const role me = expected_role == role::coordinator ? role::node : role::coordinator;
  if (io_result w = write_frame(fd, welcome{protocol_version, me}, deadline_in(timeout)); !w) {
    out.accepted = false;
    out.reason = refuse_reason::timeout;
    out.detail = "sending welcome: " + w.describe();
    return out;
  }
  out.accepted = true;
  out.detail = "welcomed a " + std::string(role_name(h->sender));
  return out;
}

handshake_result client_handshake(int fd, std::string_view token, role my_role, deadline until) {
  handshake_result out;
  if (io_result w = write_frame(fd, hello{protocol_version, my_role, std::string(token)}, until); !w) {
    out.reason = w.status == io_status::timeout ? refuse_reason::timeout : refuse_reason::unexpected;
    out.detail = "sending hello: " + w.describe();
    return out;
  }
  frame_read r = read_frame(fd, until);
  if (!r.ok()) {
    out.reason = r.io.status == io_status::timeout ? refuse_reason::timeout
                 : r.error == frame_error::unsupported_version ? refuse_reason::bad_version
                                                                : refuse_reason::bad_frame;
    out.detail = "waiting for welcome: " + r.describe();
    return out;
  }
  if (const auto* ref = std::get_if<refuse>(&r.msg)) {
    out.reason = ref->reason;
    out.detail = "refused (" + std::string(refuse_reason_name(ref->reason)) + "): " + ref->message;
    return out;
  }
  const auto* wel = std::get_if<welcome>(&r.msg);
  if (wel == nullptr) {
    out.reason = refuse_reason::unexpected;
    out.detail = "expected welcome, got " + std::string(frame_type_name(type_of(r.msg)));
    return out;
  }
  if (wel->version != protocol_version) {
    out.reason = refuse_reason::bad_version;
    out.detail = "welcome speaks version " + std::to_string(wel->version);
    return out;
  }
  out.accepted = true;
  out.detail = "welcomed by a " + std::string(role_name(wel->sender));
  return out;
}

}  // namespace cmbench::wire
