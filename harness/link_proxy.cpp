#include "harness/link_proxy.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "models/median.hpp"

namespace cmbench {
namespace {

using ns = std::int64_t;  // nanoseconds on the steady clock

ns now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What a queued chunk costs besides its bytes (its vector and the deque's slot), counted against
// the limit too, so a sender of tiny chunks is bounded as well.
constexpr std::size_t chunk_overhead = 64;
// The most bytes one read takes: one chunk. Under a rate, a chunk occupies the link about a
// millisecond at most (never less than a packet's 1500 bytes), so bytes flow as packets would,
// not in bursts of a large read.
constexpr std::size_t max_chunk = std::size_t{64} << 10;
// The jitter's fixed seed: two runs with the same conditions draw the same samples in order.
constexpr std::uint64_t jitter_seed = 0x636d62656e63686cULL;  // "cmbenchl"

std::size_t chunk_bytes_of(const link_conditions& c) {
  if (c.rate_bits_per_second <= 0) return max_chunk;
  const double per_ms = c.rate_bits_per_second / 8.0 / 1000.0;
  return static_cast<std::size_t>(std::clamp(per_ms, 1500.0, static_cast<double>(max_chunk)));
}

void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// ---- the proxy process ----

// One target's link: its conditions and, per direction (0 towards the target, 1 from it), when it
// is next free to carry a chunk.
struct link_state {
  link_conditions conditions;
  std::array<ns, 2> free_at{0, 0};
  std::size_t chunk_bytes = max_chunk;
};

struct chunk {
  ns due = 0;
  std::vector<std::uint8_t> bytes;
  std::size_t sent = 0;
};

// One direction of a proxied connection: from fd[d] to fd[1 - d].
struct stream {
  std::deque<chunk> queue;
  std::size_t queued = 0;  // bytes and overhead of the chunks queued
  ns last_due = 0;         // the last chunk's delivery time: none is delivered before it
  ns scheduled = -1;       // the due time of this stream's entry in the timer heap; -1: none
  bool eof = false;        // nothing more is read from its source (ended, reset, or its destination gone)
  bool shut = false;       // done: its destination was shut for writing after the last byte, or is gone
  bool blocked = false;    // its due front waits for the destination to take more (EPOLLOUT)
};

struct connection {
  std::uint64_t id = 0;
  std::array<int, 2> fd{-1, -1};  // [0] the client (accepted), [1] the connection to the target
  link_state* link = nullptr;
  bool connecting = true;          // the connection to the target is not established yet
  std::array<stream, 2> s;         // [0] client -> target, [1] target -> client
  std::array<std::uint32_t, 2> registered{0, 0};  // each fd's epoll events; 0: not registered
};

struct route_listener {
  wire::unique_fd fd;
  sockaddr_storage target{};
  socklen_t target_len = 0;
  link_state* link = nullptr;
};

enum class kind : std::uint64_t { control = 0, timer = 1, listener = 2, client = 3, target = 4 };
std::uint64_t tag_of(kind k, std::uint64_t id) { return id << 3 | static_cast<std::uint64_t>(k); }

struct due_entry {
  ns due;
  std::uint64_t connection;
  int direction;
  bool operator>(const due_entry& o) const { return due > o.due; }
};

class proxy_loop {
 public:
  proxy_loop(int control, std::string listen_host)
      : control_(control), listen_host_(std::move(listen_host)), rng_(jitter_seed) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!epoll_ || !timer_) throw std::system_error(errno, std::generic_category(), "epoll or timerfd");
    watch(control_, EPOLLIN, tag_of(kind::control, 0));
    watch(timer_.get(), EPOLLIN, tag_of(kind::timer, 0));
  }

  // Until the control socket closes.
  void run() {
    std::array<epoll_event, 128> events{};
    while (!control_closed_) {
      run_due();
      if (draining_ && (drained() || now_ns() >= drain_deadline_)) finish_drain();
      arm_timer();
      const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "epoll_wait");
      }
      for (int i = 0; i < n; ++i) dispatch(events[static_cast<std::size_t>(i)]);
    }
  }

 private:
  void watch(int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0) {
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
  }

  void dispatch(const epoll_event& e) {
    const auto k = static_cast<kind>(e.data.u64 & 7);
    const std::uint64_t id = e.data.u64 >> 3;
    switch (k) {
      case kind::control: on_control(); return;
      case kind::timer: {
        std::uint64_t expirations = 0;
        (void)!::read(timer_.get(), &expirations, sizeof expirations);
        return;  // the loop's run_due() delivers what is due
      }
      case kind::listener: on_accept(id); return;
      case kind::client:
      case kind::target: {
        const auto it = connections_.find(id);
        if (it == connections_.end()) return;  // closed earlier in this batch
        on_socket(id, it->second, k == kind::client ? 0 : 1, e.events);
        return;
      }
    }
  }

  // ---- the control socket: one JSON order a line, one JSON answer a line ----

  void on_control() {
    char buffer[4096];
    const ssize_t n = ::read(control_, buffer, sizeof buffer);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      control_closed_ = true;
      return;
    }
    if (n < 0) return;
    control_in_.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t end; (end = control_in_.find('\n')) != std::string::npos;) {
      const std::string line = control_in_.substr(0, end);
      control_in_.erase(0, end + 1);
      nlohmann::json order;
      try {
        order = nlohmann::json::parse(line);
        const std::string op = order.at("op").get<std::string>();
        if (op == "route") answer(route(order));
        else if (op == "clear") start_drain(order.at("drain_ms").get<std::int64_t>());
        else answer({{"ok", false}, {"error", "unknown order " + op}});
      } catch (const std::exception& e) {
        answer({{"ok", false}, {"error", e.what()}});
      }
    }
  }

  void answer(const nlohmann::json& reply) {
    const std::string text = reply.dump() + "\n";
    // The suite waits for this answer: a blocking write of a short line.
    if (!wire::write_all(control_, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
                         wire::deadline_in(std::chrono::seconds{10}))) {
      control_closed_ = true;
    }
  }

  nlohmann::json route(const nlohmann::json& order) {
    link_conditions c;
    c.given = order.at("given").get<std::string>();
    c.delay = std::chrono::nanoseconds{order.at("delay_ns").get<std::int64_t>()};
    c.jitter = std::chrono::nanoseconds{order.at("jitter_ns").get<std::int64_t>()};
    c.rate_bits_per_second = order.at("rate_bits_per_second").get<double>();
    std::vector<std::uint64_t> made;
    nlohmann::json ports = nlohmann::json::array();
    try {
      for (const auto& t : order.at("targets")) {
        const std::string host = t.at("host").get<std::string>();
        const auto port = t.at("port").get<std::uint16_t>();
        const std::string text = host + ":" + std::to_string(port);
        auto& link = links_[text];
        if (!link) {
          link = std::make_unique<link_state>();
          link->conditions = c;
          link->chunk_bytes = chunk_bytes_of(c);
        } else if (link->conditions.delay != c.delay || link->conditions.jitter != c.jitter ||
                   link->conditions.rate_bits_per_second != c.rate_bits_per_second) {
          throw std::runtime_error(text + " is already routed with other conditions (" + link->conditions.given + ")");
        }
        route_listener l;
        l.link = link.get();
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* found = nullptr;
        if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
          throw std::runtime_error("cannot resolve " + text + ": " + ::gai_strerror(rc));
        }
        std::memcpy(&l.target, found->ai_addr, found->ai_addrlen);
        l.target_len = found->ai_addrlen;
        ::freeaddrinfo(found);
        wire::listener bound = wire::listen_tcp(listen_host_, 0, 1024);
        ::fcntl(bound.fd.get(), F_SETFL, ::fcntl(bound.fd.get(), F_GETFL) | O_NONBLOCK);
        l.fd = std::move(bound.fd);
        const std::uint64_t id = next_id_++;
        watch(l.fd.get(), EPOLLIN, tag_of(kind::listener, id));
        listeners_.emplace(id, std::move(l));
        made.push_back(id);
        ports.push_back(bound.port);
      }
    } catch (...) {
      for (const std::uint64_t id : made) listeners_.erase(id);  // closing an fd leaves its epoll set too
      throw;
    }
    return {{"ok", true}, {"ports", ports}};
  }

  // A clear: no new connections; the open ones get until the deadline to deliver what their
  // clients sent (and its end) to their targets. The answer goes once they have, or at the deadline.
  void start_drain(std::int64_t drain_ms) {
    // A connection the kernel completed but the loop has not accepted yet is a client's too.
    for (auto& [id, l] : listeners_) on_accept(id);
    listeners_.clear();
    draining_ = true;
    drain_deadline_ = now_ns() + std::max<std::int64_t>(0, drain_ms) * 1'000'000;
  }

  bool drained() const {
    for (const auto& [id, c] : connections_) {
      if (!c.s[0].shut) return false;
    }
    return true;
  }

  void finish_drain() {
    for (const auto& [id, c] : connections_) totals_.undrained += c.s[0].shut ? 0 : 1;
    while (!connections_.empty()) close_connection(connections_.begin()->first);
    links_.clear();
    draining_ = false;
    answer({{"ok", true},
            {"connections", totals_.connections},
            {"failed_connects", totals_.failed_connects},
            {"bytes_to_targets", totals_.bytes_to_targets},
            {"bytes_from_targets", totals_.bytes_from_targets},
            {"dropped_bytes", totals_.dropped_bytes},
            {"undrained", totals_.undrained}});
    totals_ = {};
  }

  // ---- connections ----

  void on_accept(std::uint64_t listener_id) {
    const auto it = listeners_.find(listener_id);
    if (it == listeners_.end()) return;
    route_listener& l = it->second;
    for (;;) {
      const int client = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN: none left; anything else (EMFILE): the client waits in the backlog
      }
      ++totals_.connections;
      set_nodelay(client);
      const int upstream = ::socket(l.target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (upstream < 0) {
        ::close(client);
        ++totals_.failed_connects;
        continue;
      }
      set_nodelay(upstream);
      const int rc = ::connect(upstream, reinterpret_cast<const sockaddr*>(&l.target), l.target_len);
      if (rc != 0 && errno != EINPROGRESS) {
        ::close(client);
        ::close(upstream);
        ++totals_.failed_connects;
        continue;
      }
      const std::uint64_t id = next_id_++;
      connection& c = connections_[id];
      c.id = id;
      c.fd = {client, upstream};
      c.link = l.link;
      c.connecting = rc != 0;
      update(id, c);
    }
  }

  void on_socket(std::uint64_t id, connection& c, int side, std::uint32_t events) {
    if (side == 1 && c.connecting) {
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    } else {
      if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && reading(c, side)) on_readable(c, side);
      // The destination of the other direction: it can take more, or it failed (the send says).
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c.s[1 - side].blocked) flush(c, 1 - side);
    }
    update(id, c);
  }

  void on_connected(connection& c) {
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(c.fd[1], SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    if (error != 0) {
      // The target could not be reached: the client's connection ends (reset), as it would.
      ++totals_.failed_connects;
      destination_gone(c, 0);
      c.s[1].eof = c.s[1].shut = true;
      return;  // update() closes it
    }
    c.connecting = false;
    flush(c, 0);
  }

  bool reading(const connection& c, int d) const {
    const stream& s = c.s[d];
    return !s.eof && s.queued < link_queue_limit && !(d == 1 && c.connecting);
  }

  // Reads one chunk from fd[d] and queues it with its delivery time.
  void on_readable(connection& c, int d) {
    stream& s = c.s[d];
    const ssize_t n = ::recv(c.fd[d], buffer_.data(), std::min(buffer_.size(), c.link->chunk_bytes), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      // Ended (0) or reset (< 0): what is queued still goes, then the destination is shut.
      s.eof = true;
      if (n < 0) destination_gone(c, 1 - d);  // fd[d] is the other direction's destination
      if (s.queue.empty()) finish(c, d);
      return;
    }
    const ns arrival = now_ns();
    const link_conditions& lc = c.link->conditions;
    ns crossed = arrival;
    if (lc.rate_bits_per_second > 0) {
      ns& free_at = c.link->free_at[static_cast<std::size_t>(d)];
      const ns start = std::max(arrival, free_at);
      crossed = start + std::llround(lc.serialisation_seconds(static_cast<std::size_t>(n)) * 1e9);
      free_at = crossed;
    }
    ns due = crossed + lc.delay.count();
    if (lc.jitter.count() > 0) due += std::uniform_int_distribution<ns>(-lc.jitter.count(), lc.jitter.count())(rng_);
    due = std::max(due, s.last_due);
    s.last_due = due;
    chunk k;
    k.due = due;
    k.bytes.assign(buffer_.data(), buffer_.data() + n);
    s.queue.push_back(std::move(k));
    s.queued += static_cast<std::size_t>(n) + chunk_overhead;
    (d == 0 ? totals_.bytes_to_targets : totals_.bytes_from_targets) += static_cast<std::uint64_t>(n);
    if (s.queue.size() == 1) flush(c, d);
  }

  // Writes what of stream d is due to its destination; schedules the rest.
  void flush(connection& c, int d) {
    stream& s = c.s[d];
    const int to = c.fd[static_cast<std::size_t>(1 - d)];
    s.blocked = false;
    if (s.shut) return;
    const ns t = now_ns();
    if (d == 0 && c.connecting) {
      s.blocked = !s.queue.empty() && s.queue.front().due <= t;  // waits for the connection (EPOLLOUT)
      if (!s.queue.empty() && !s.blocked) schedule(c, d);
      return;
    }
    while (!s.queue.empty() && s.queue.front().due <= t) {
      chunk& f = s.queue.front();
      const ssize_t n = ::send(to, f.bytes.data() + f.sent, f.bytes.size() - f.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        f.sent += static_cast<std::size_t>(n);
        if (f.sent == f.bytes.size()) {
          s.queued -= f.bytes.size() + chunk_overhead;
          s.queue.pop_front();
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        s.blocked = true;
        return;
      }
      destination_gone(c, d);
      return;
    }
    if (!s.queue.empty()) schedule(c, d);
    else if (s.eof) finish(c, d);
  }

  void schedule(connection& c, int d) {
    stream& s = c.s[d];
    const ns due = s.queue.front().due;
    if (s.scheduled == due) return;
    s.scheduled = due;
    due_.push({due, c.id, d});
  }

  // Stream d's destination is gone (reset or closed): what is queued for it is dropped, and its
  // source is no longer read (nothing read could be delivered).
  void destination_gone(connection& c, int d) {
    stream& s = c.s[d];
    for (const chunk& k : s.queue) totals_.dropped_bytes += k.bytes.size() - k.sent;
    s.queue.clear();
    s.queued = 0;
    s.eof = s.shut = true;
    s.blocked = false;
  }

  // Stream d delivered its last byte after its source ended: its destination sees the end too.
  void finish(connection& c, int d) {
    stream& s = c.s[d];
    if (s.shut || (d == 0 && c.connecting)) return;
    ::shutdown(c.fd[static_cast<std::size_t>(1 - d)], SHUT_WR);
    s.shut = true;
  }

  // The epoll events each fd needs now; closes the connection once both directions are done.
  void update(std::uint64_t id, connection& c) {
    if (c.s[0].shut && c.s[1].shut) {
      close_connection(id);
      return;
    }
    for (int k = 0; k < 2; ++k) {
      std::uint32_t want = 0;
      if (reading(c, k)) want |= EPOLLIN;
      if (c.s[1 - k].blocked || (k == 1 && c.connecting)) want |= EPOLLOUT;
      std::uint32_t& have = c.registered[static_cast<std::size_t>(k)];
      if (want == have) continue;
      epoll_event e{};
      e.events = want;
      e.data.u64 = tag_of(k == 0 ? kind::client : kind::target, id);
      // Nothing wanted: out of the set, or a hung-up socket would wake the loop for nothing, forever.
      const int op = want == 0 ? EPOLL_CTL_DEL : have == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      ::epoll_ctl(epoll_.get(), op, c.fd[static_cast<std::size_t>(k)], &e);
      have = want;
    }
  }

  void close_connection(std::uint64_t id) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return;
    for (const stream& s : it->second.s) {
      for (const chunk& q : s.queue) totals_.dropped_bytes += q.bytes.size() - q.sent;
    }
    for (const int fd : it->second.fd) ::close(fd);  // leaves the epoll set with it
    connections_.erase(it);
  }

  // ---- time ----

  void run_due() {
    while (!due_.empty()) {
      const ns t = now_ns();
      const due_entry top = due_.top();
      if (top.due > t) return;
      due_.pop();
      const auto it = connections_.find(top.connection);
      if (it == connections_.end()) continue;
      stream& s = it->second.s[static_cast<std::size_t>(top.direction)];
      if (s.scheduled != top.due) continue;  // stale: delivered or rescheduled since
      s.scheduled = -1;
      flush(it->second, top.direction);
      update(top.connection, it->second);
    }
  }

  void arm_timer() {
    ns next = due_.empty() ? 0 : due_.top().due;
    if (draining_) next = next == 0 ? drain_deadline_ : std::min(next, drain_deadline_);
    if (next == armed_) return;
    armed_ = next;
    itimerspec spec{};
    if (next > 0) {
      // CLOCK_MONOTONIC is the steady clock's: an absolute time on it.
      spec.it_value.tv_sec = next / 1'000'000'000;
      spec.it_value.tv_nsec = next % 1'000'000'000;
    }
    ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  int control_;
  std::string listen_host_;
  wire::unique_fd epoll_, timer_;
  bool control_closed_ = false;
  std::string control_in_;
  std::mt19937_64 rng_;
  std::map<std::string, std::unique_ptr<link_state>> links_;  // by target "host:port"
  std::unordered_map<std::uint64_t, route_listener> listeners_;
  std::unordered_map<std::uint64_t, connection> connections_;
  std::priority_queue<due_entry, std::vector<due_entry>, std::greater<>> due_;
  std::uint64_t next_id_ = 1;
  ns armed_ = 0;
  bool draining_ = false;
  ns drain_deadline_ = 0;
  proxy_totals totals_;
  std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(max_chunk);
};

// The forked child: its own process group, dies with its parent, holds nothing of the suite's
// (its lock, journal, node connections) but the control socket and stderr.
[[noreturn]] void proxy_main(int control, const std::string& listen_host, pid_t parent) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (control != 3) {
    ::dup2(control, 3);
    control = 3;
  }
  ::close_range(4, ~0U, 0);
  try {
    proxy_loop(control, listen_host).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cmbench link proxy: %s\n", e.what());
    ::_exit(1);
  }
  ::_exit(0);
}

}  // namespace

// ---- the suite's handle ----

link_proxy::link_proxy(std::string listen_host) : listen_host_(std::move(listen_host)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(std::string("link proxy: socketpair: ") + std::strerror(errno));
  }
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(std::string("link proxy: fork: ") + std::strerror(err));
  }
  if (pid_ == 0) {
    ::close(fds[0]);
    proxy_main(fds[1], listen_host_, parent);
  }
  ::setpgid(pid_, pid_);  // both sides set it, as for a trial
  ::close(fds[1]);
  control_.reset(fds[0]);
}

link_proxy::link_proxy(link_proxy&& other) noexcept
    : listen_host_(std::move(other.listen_host_)), pid_(std::exchange(other.pid_, -1)),
      control_(std::move(other.control_)), pending_(std::move(other.pending_)) {}

link_proxy& link_proxy::operator=(link_proxy&& other) noexcept {
  if (this != &other) {
    shut_down();
    listen_host_ = std::move(other.listen_host_);
    pid_ = std::exchange(other.pid_, -1);
    control_ = std::move(other.control_);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

void link_proxy::shut_down() noexcept {
  if (pid_ < 0) return;
  control_.reset();  // the proxy sees the end of its control socket and exits
  using namespace std::chrono_literals;
  const auto until = std::chrono::steady_clock::now() + 2s;
  pid_t ended = 0;
  // Killed only while it is still our unreaped child: a trial's clean-up reaps every child, and
  // a pid reaped there may have been reused since.
  while ((ended = ::waitpid(pid_, nullptr, WNOHANG)) == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  if (ended == 0) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

nlohmann::json link_proxy::ask(const nlohmann::json& order, std::chrono::milliseconds timeout) {
  const std::string who = "link proxy (pid " + std::to_string(pid_) + ")";
  const wire::deadline until = wire::deadline_in(timeout);
  const std::string text = order.dump() + "\n";
  if (const wire::io_result w =
          wire::write_all(control_.get(), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, until);
      !w) {
    throw std::runtime_error(who + ": cannot send it an order: " + w.describe());
  }
  for (;;) {
    if (const auto end = pending_.find('\n'); end != std::string::npos) {
      nlohmann::json reply = nlohmann::json::parse(pending_.substr(0, end));
      pending_.erase(0, end + 1);
      if (!reply.value("ok", false)) throw std::runtime_error(who + ": " + reply.value("error", std::string("failed")));
      return reply;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - wire::clock::now()).count();
    if (left <= 0) throw std::runtime_error(who + ": no answer within " + std::to_string(timeout.count()) + " ms");
    pollfd p{control_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) throw std::runtime_error(who + ": poll: " + std::strerror(errno));
    if (ready <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(control_.get(), buffer, sizeof buffer);
    if (n == 0) throw std::runtime_error(who + " ended (its stderr says why)");
    if (n < 0 && errno != EINTR) throw std::runtime_error(who + ": read: " + std::strerror(errno));
    if (n > 0) pending_.append(buffer, static_cast<std::size_t>(n));
  }
}

std::vector<node_address> link_proxy::route(const std::vector<node_address>& targets,
                                            const link_conditions& conditions) {
  nlohmann::json list = nlohmann::json::array();
  for (const node_address& t : targets) list.push_back({{"host", t.host}, {"port", t.port}});
  const nlohmann::json reply = ask({{"op", "route"},
                                    {"targets", list},
                                    {"given", conditions.given},
                                    {"delay_ns", conditions.delay.count()},
                                    {"jitter_ns", conditions.jitter.count()},
                                    {"rate_bits_per_second", conditions.rate_bits_per_second}},
                                   std::chrono::seconds{10});
  std::vector<node_address> routed;
  for (const auto& port : reply.at("ports")) routed.push_back({listen_host_, port.get<std::uint16_t>()});
  return routed;
}

proxy_totals link_proxy::clear(std::chrono::milliseconds drain) {
  const nlohmann::json reply =
      ask({{"op", "clear"}, {"drain_ms", drain.count()}}, drain + std::chrono::seconds{10});
  proxy_totals t;
  t.connections = reply.at("connections").get<std::uint64_t>();
  t.failed_connects = reply.at("failed_connects").get<std::uint64_t>();
  t.bytes_to_targets = reply.at("bytes_to_targets").get<std::uint64_t>();
  t.bytes_from_targets = reply.at("bytes_from_targets").get<std::uint64_t>();
  t.dropped_bytes = reply.at("dropped_bytes").get<std::uint64_t>();
  t.undrained = reply.at("undrained").get<std::uint64_t>();
  return t;
}

// ---- the proxy's own cost ----

namespace {

constexpr std::size_t cost_message_bytes = 64;  // scatter's default payload
constexpr int cost_round_trips = 1000;          // per path, after a few discarded
constexpr int cost_warmup_round_trips = 50;
constexpr auto capacity_window = std::chrono::milliseconds{200};
constexpr auto cost_io_timeout = std::chrono::seconds{30};

// The far end of the measurements, on loopback in this process: every connection it accepts gets a
// thread that reads a mode byte, then 'e' echoes fixed-size messages until the end of stream, 's'
// counts what it reads until the end of stream and answers the count (8 bytes).
class cost_server {
 public:
  cost_server() : listener_(wire::listen_tcp("127.0.0.1", 0)) {
    acceptor_ = std::jthread([this](std::stop_token stop) { accept_all(stop); });
  }
  ~cost_server() {
    acceptor_.request_stop();
    acceptor_.join();
    handlers_.clear();  // each ends when its client closes, which the measurements did first
  }
  std::uint16_t port() const { return listener_.port; }

 private:
  void accept_all(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      wire::unique_fd fd = wire::accept_until(listener_.fd.get(), wire::deadline_in(std::chrono::milliseconds{50}));
      if (fd) handlers_.emplace_back([f = std::move(fd)] { serve(f.get()); });
    }
  }

  static void serve(int fd) {
    const wire::deadline until = wire::deadline_in(cost_io_timeout);
    std::uint8_t mode = 0;
    if (!wire::read_exact(fd, {&mode, 1}, until)) return;
    if (mode == 'e') {
      std::array<std::uint8_t, cost_message_bytes> message{};
      while (wire::read_exact(fd, message, until) && wire::write_all(fd, message, until)) {
      }
      return;
    }
    std::vector<std::uint8_t> buffer(max_chunk);
    std::uint64_t count = 0;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) < 0 && errno != EINTR) return;
      if (wire::clock::now() > until) return;
      const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n == 0) break;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
      if (n > 0) count += static_cast<std::uint64_t>(n);
    }
    std::array<std::uint8_t, 8> answer{};
    for (std::size_t i = 0; i < answer.size(); ++i) answer[i] = static_cast<std::uint8_t>(count >> (8 * i));
    (void)wire::write_all(fd, answer, until);
  }

  wire::listener listener_;
  std::vector<std::jthread> handlers_;  // only the acceptor adds to it; joined after it
  std::jthread acceptor_;
};

wire::unique_fd open_mode(const node_address& at, char mode) {
  wire::unique_fd fd = wire::connect_tcp(at.host, at.port, wire::deadline_in(cost_io_timeout));
  const auto byte = static_cast<std::uint8_t>(mode);
  if (const auto w = wire::write_all(fd.get(), {&byte, 1}, wire::deadline_in(cost_io_timeout)); !w) {
    throw std::runtime_error("link proxy cost: " + at.text() + ": " + w.describe());
  }
  return fd;
}

// One round trip of a message on an echo connection, in nanoseconds.
double round_trip_ns(int fd, std::span<std::uint8_t> message, const node_address& at) {
  const wire::deadline until = wire::deadline_in(cost_io_timeout);
  const ns start = now_ns();
  wire::io_result r = wire::write_all(fd, message, until);
  if (r) r = wire::read_exact(fd, message, until);
  if (!r) throw std::runtime_error("link proxy cost: round trip to " + at.text() + ": " + r.describe());
  return static_cast<double>(now_ns() - start);
}

// Bytes per second one connection carries to a counting end: sent for capacity_window, then the
// end of stream; counted from the first byte sent to the count's arrival.
double capacity(const node_address& at) {
  wire::unique_fd fd = open_mode(at, 's');
  const std::vector<std::uint8_t> block(max_chunk, 0x5a);
  const wire::deadline until = wire::deadline_in(cost_io_timeout);
  const ns start = now_ns();
  std::uint64_t sent = 0;
  while (now_ns() - start < std::chrono::nanoseconds(capacity_window).count()) {
    if (const auto w = wire::write_all(fd.get(), block, until); !w) {
      throw std::runtime_error("link proxy cost: sending to " + at.text() + ": " + w.describe());
    }
    sent += block.size();
  }
  ::shutdown(fd.get(), SHUT_WR);
  std::array<std::uint8_t, 8> answer{};
  if (const auto r = wire::read_exact(fd.get(), answer, until); !r) {
    throw std::runtime_error("link proxy cost: the count from " + at.text() + ": " + r.describe());
  }
  const ns elapsed = now_ns() - start;
  std::uint64_t counted = 0;
  for (std::size_t i = 0; i < answer.size(); ++i) counted |= static_cast<std::uint64_t>(answer[i]) << (8 * i);
  if (counted != sent) {
    throw std::runtime_error("link proxy cost: " + at.text() + " counted " + std::to_string(counted) + " of " +
                             std::to_string(sent) + " bytes sent");
  }
  return static_cast<double>(counted) / (static_cast<double>(elapsed) / 1e9);
}

}  // namespace

link_cost measure_link_cost(link_proxy& proxy) {
  link_cost cost;
  cost.round_trips = cost_round_trips;
  cost.message_bytes = cost_message_bytes;
  cost_server server;
  const node_address direct{"127.0.0.1", server.port()};
  const node_address proxied = proxy.route({direct}, link_conditions{}).front();
  {
    // Interleaved, so a drift of the machine touches both paths alike.
    const wire::unique_fd a = open_mode(direct, 'e'), b = open_mode(proxied, 'e');
    std::array<std::uint8_t, cost_message_bytes> message{};
    std::vector<double> direct_ns, proxied_ns;
    for (int i = 0; i < cost_warmup_round_trips + cost_round_trips; ++i) {
      message.fill(static_cast<std::uint8_t>(i));
      const double d = round_trip_ns(a.get(), message, direct);
      const double p = round_trip_ns(b.get(), message, proxied);
      if (message[cost_message_bytes - 1] != static_cast<std::uint8_t>(i)) {
        throw std::runtime_error("link proxy cost: the echo through the proxy changed the message");
      }
      if (i < cost_warmup_round_trips) continue;
      direct_ns.push_back(d);
      proxied_ns.push_back(p);
    }
    cost.direct_round_trip_ns = median(direct_ns);
    cost.proxied_round_trip_ns = median(proxied_ns);
    cost.proxy_added_round_trip_ns = cost.proxied_round_trip_ns - cost.direct_round_trip_ns;
  }
  cost.direct_capacity_bytes_per_second = capacity(direct);
  cost.proxy_capacity_bytes_per_second = capacity(proxied);
  const proxy_totals totals = proxy.clear(std::chrono::seconds{5});
  if (totals.dropped_bytes != 0 || totals.failed_connects != 0) {
    throw std::runtime_error("link proxy cost: the proxy dropped " + std::to_string(totals.dropped_bytes) +
                             " bytes and failed " + std::to_string(totals.failed_connects) + " connections");
  }
  return cost;
}

nlohmann::ordered_json link_context(const link_conditions& conditions, const link_cost& cost,
                                    const std::string& listen_host) {
  nlohmann::ordered_json j = link_json(conditions);
  char seed[24];
  std::snprintf(seed, sizeof seed, "0x%016llx", static_cast<unsigned long long>(jitter_seed));
  j["seed"] = seed;  // the jitter's
  j["proxy_listen_host"] = listen_host;
  j["measured"] = "before the trials, through the proxy with no conditions, against a loopback echo server of the "
                  "suite: medians of " + std::to_string(cost.round_trips) + " round trips of " +
                  std::to_string(cost.message_bytes) + " bytes directly and through the proxy, interleaved; bytes "
                  "per second one connection carries for " + std::to_string(capacity_window.count()) + " ms";
  j["round_trips"] = cost.round_trips;
  j["direct_round_trip_ns"] = cost.direct_round_trip_ns;
  j["proxied_round_trip_ns"] = cost.proxied_round_trip_ns;
  j["proxy_added_round_trip_ns"] = cost.proxy_added_round_trip_ns;
  j["proxy_capacity_bytes_per_second"] = cost.proxy_capacity_bytes_per_second;
  j["direct_capacity_bytes_per_second"] = cost.direct_capacity_bytes_per_second;
  return j;
}

}  // namespace cmbench
