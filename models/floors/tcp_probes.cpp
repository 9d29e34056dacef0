// A standard header before any Asio header, as models/coroutines/asio_common.hpp explains: every
// translation unit must make Asio pick the same frame allocator.
#include <cstddef>

#include "models/floors/tcp_probes.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace cmbench::floors::tcp {
namespace {

// One request or reply: the round trip's number, echoed as it came.
using message = std::uint64_t;

[[noreturn]] void fail_with(int error, const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

// A descriptor closed however the scope is left.
class descriptor {
 public:
  explicit descriptor(int fd = -1) noexcept : fd_(fd) {}
  descriptor(descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  ~descriptor() { reset(); }

  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

void set_nodelay(int fd) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) fail("setsockopt TCP_NODELAY");
}

// A socket listening on 127.0.0.1:port (0: the OS picks the port) with a backlog of one; `bound`
// receives the address it got. Made before the server is forked, so the client knows the port
// and its connection waits in the backlog however late the server reaches accept().
descriptor listen_on_loopback(std::uint16_t port, sockaddr_in& bound) {
  descriptor listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    fail_with(errno, "bind 127.0.0.1:" + std::to_string(port));
  }
  if (::listen(listener.get(), 1) != 0) fail("listen");
  socklen_t size = sizeof(bound);
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &size) != 0) fail("getsockname");
  return listener;
}

// Moves all of `size` bytes; false on an error (errno says which) or, for receive_all, at
// end-of-file (errno 0).
bool send_all(int fd, const void* data, std::size_t size) noexcept {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t sent = ::send(fd, p, size, MSG_NOSIGNAL);  // a closed peer: EPIPE, not SIGPIPE
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    p += sent;
    size -= static_cast<std::size_t>(sent);
  }
  return true;
}

bool receive_all(int fd, void* data, std::size_t size) noexcept {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t got = ::recv(fd, p, size, MSG_WAITALL);  // one call, unless interrupted
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) errno = 0;
    if (got <= 0) return false;
    p += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

// The server process of either probe: forked with the listening socket, after which it must
// touch nothing of its parent's. The blocking one makes only system calls; the Asio one builds an
// io_context of its own, safe because the probes fork before the floors start any helper thread
// (their place in probes.cpp's table) and glibc's fork leaves malloc usable in the child anyway.
template <class Serve>
[[noreturn]] void run_server(const descriptor& listener, int cpu, pid_t parent, Serve serve) noexcept {
  die_with_parent(parent);
  try {
    const pinned server_pin(cpu);  // stays pinned until _exit
    ::_exit(serve(listener.get()) ? 0 : 1);
  } catch (...) {
    ::_exit(1);
  }
}

// The minimal blocking server: accept the one connection, then read 8 bytes and write them back
// until the client closes it (or, in tests, `answers` have been sent).
bool serve_blocking(int listener, std::uint64_t answers) {
  int accepted;
  do accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  while (accepted < 0 && errno == EINTR);
  if (accepted < 0) return false;
  const descriptor connection(accepted);
  ::close(listener);
  set_nodelay(connection.get());
  message m = 0;
  for (std::uint64_t i = 0; i < answers; ++i) {
    if (!receive_all(connection.get(), &m, sizeof(m))) return errno == 0;  // end-of-file: done
    if (!send_all(connection.get(), &m, sizeof(m))) return false;
  }
  return true;
}

// The client's side of one round trip: request i written, its echo read and checked.
void exchange(int fd, message i, const char* probe) {
  message reply = ~i;
  if (!send_all(fd, &i, sizeof(i))) fail_with(errno, std::string(probe) + ": send");
  if (!receive_all(fd, &reply, sizeof(reply))) {
    if (errno == 0) throw std::runtime_error(std::string(probe) + ": the server closed the connection");
    fail_with(errno, std::string(probe) + ": recv");
  }
  if (reply != i) throw std::runtime_error(std::string(probe) + ": the server echoed another message");
}

// What a volley holds before its server is forked: the client pinned, the listening socket and its
// address. Each probe declares it, then the server's child_process, then the client's socket, so
// however the probe leaves, the connection closes first (the server reads end-of-file), then the
// server is killed if it still runs and is reaped, then the caller's pinning is undone.
struct volley_setup {
  const std::pair<int, int> cpus;
  const pinned client_pin;
  sockaddr_in server{};
  descriptor listener;

  explicit volley_setup(const setup& s)
      : cpus(cpus_for(s.where)), client_pin(cpus.first), listener(listen_on_loopback(s.port, server)) {}
};

template <class Serve>
void fork_server(volley_setup& v, child_process& server, Serve serve) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) run_server(v.listener, v.cpus.second, parent, serve);
  server.adopt(pid);
  v.listener.reset();  // the server holds its own copy
}

void expect_clean_exit(child_process& server, const char* probe) {
  if (!server.exited_cleanly()) throw std::runtime_error(std::string(probe) + ": the server process failed");
}

// The Asio side: coroutines typed on the io_context executor, as the coroutine models' are.
using executor = asio::io_context::executor_type;
template <class T>
using task = asio::awaitable<T, executor>;
constexpr asio::use_awaitable_t<executor> use_task{};
using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, executor>;
using tcp_acceptor = asio::basic_socket_acceptor<asio::ip::tcp, executor>;

// The minimal Asio server: one coroutine accepting the one connection, then async_read of 8 bytes
// and async_write of them back, until end-of-file (or `answers`).
task<void> echo(tcp_acceptor& acceptor, std::uint64_t answers) {
  tcp_socket connection = co_await acceptor.async_accept(use_task);
  acceptor.close();
  connection.set_option(asio::ip::tcp::no_delay(true));
  message m = 0;
  for (std::uint64_t i = 0; i < answers; ++i) {
    try {
      co_await asio::async_read(connection, asio::buffer(&m, sizeof(m)), use_task);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::eof) co_return;
      throw;
    }
    co_await asio::async_write(connection, asio::buffer(&m, sizeof(m)), use_task);
  }
}

bool serve_asio(int listener, std::uint64_t answers) {
  asio::io_context io(1);
  tcp_acceptor acceptor(io, asio::ip::tcp::v4(), listener);
  bool ok = false;
  asio::co_spawn(io, echo(acceptor, answers), [&ok](std::exception_ptr e) { ok = !e; });
  io.run();
  return ok;
}

// The client's volley, as the blocking client's: async_write of request i, async_read of its echo;
// exchange 0 is untimed.
task<void> ask(tcp_socket& socket, std::uint64_t n, std::vector<std::uint32_t>* each, std::int64_t& ns) {
  message request = 0, reply = 0;
  auto start = clock::now();
  auto last = start;
  for (message i = 0; i <= n; ++i) {
    request = i;
    reply = ~i;
    co_await asio::async_write(socket, asio::buffer(&request, sizeof(request)), use_task);
    co_await asio::async_read(socket, asio::buffer(&reply, sizeof(reply)), use_task);
    if (reply != request) throw std::runtime_error("the server echoed another message");
    if (i == 0) {
      start = last = clock::now();
    } else if (each != nullptr) {
      last = record(each, last);
    }
  }
  ns = since(start);
}

}  // namespace

std::int64_t blocking_round_trip(const setup& s, std::uint64_t n, std::vector<std::uint32_t>* each) {
  static constexpr const char* probe = "tcp round trip";
  volley_setup v(s);
  child_process server;
  fork_server(v, server, [answers = s.answers](int listener) { return serve_blocking(listener, answers); });
  descriptor client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0) fail("socket");
  if (::connect(client.get(), reinterpret_cast<const sockaddr*>(&v.server), sizeof(v.server)) != 0) {
    fail("connect to 127.0.0.1");
  }
  set_nodelay(client.get());
  exchange(client.get(), 0, probe);
  const auto start = clock::now();
  auto last = start;
  for (message i = 1; i <= n; ++i) {
    exchange(client.get(), i, probe);
    if (each != nullptr) last = record(each, last);
  }
  const std::int64_t ns = since(start);
  client.reset();  // the server reads end-of-file and exits
  expect_clean_exit(server, probe);
  return ns;
}

std::int64_t asio_round_trip(const setup& s, std::uint64_t n, std::vector<std::uint32_t>* each) {
  static constexpr const char* probe = "asio tcp round trip";
  volley_setup v(s);
  child_process server;
  fork_server(v, server, [answers = s.answers](int listener) { return serve_asio(listener, answers); });
  std::int64_t ns = 0;
  std::exception_ptr failure;
  {
    // After the fork: the server shares no io_context (nor its epoll descriptor) with the client.
    asio::io_context io(1);
    tcp_socket socket(io);
    try {
      socket.connect({asio::ip::address_v4::loopback(), ntohs(v.server.sin_port)});
      socket.set_option(asio::ip::tcp::no_delay(true));
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(probe) + ": connect to 127.0.0.1: " + e.what());
    }
    asio::co_spawn(io, ask(socket, n, each, ns), [&failure](std::exception_ptr e) { failure = e; });
    io.run();
  }  // the socket closes: the server reads end-of-file and exits
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::eof) throw std::runtime_error(std::string(probe) + ": the server closed the connection");
      throw std::runtime_error(std::string(probe) + ": " + e.what());
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(probe) + ": " + e.what());
    }
  }
  expect_clean_exit(server, probe);
  return ns;
}

}  // namespace cmbench::floors::tcp
