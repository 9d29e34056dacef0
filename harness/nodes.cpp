#include "harness/nodes.hpp"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness/system.hpp"
#include "models/model.hpp"
#include "models/shared_region.hpp"
#include "models/wire/blocking.hpp"
#include "workloads/node_control.hpp"

namespace cmbench {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a daemon has to answer an order (start or stop a serving process).
constexpr auto answer_time = 10s;
// How long a serving process has to end once told to, before its group is killed.
constexpr auto stop_time = 5s;

void send_control(int fd, const nlohmann::json& j, wire::deadline until, const std::string& who) {
  if (wire::io_result w = wire::write_frame(fd, wire::control{j.dump()}, until); !w) {
    throw std::runtime_error(who + ": sending " + j.value("op", std::string("?")) + ": " + w.describe());
  }
}

nlohmann::json read_control(int fd, wire::deadline until, const std::string& who) {
  const wire::frame_read r = wire::read_frame(fd, until);
  if (!r.ok()) throw std::runtime_error(who + ": " + r.describe());
  const auto* c = std::get_if<wire::control>(&r.msg);
  if (c == nullptr) {
    throw std::runtime_error(who + ": expected a control frame, got " +
                             std::string(wire::frame_type_name(wire::type_of(r.msg))));
  }
  nlohmann::json j = nlohmann::json::parse(c->json, nullptr, false);
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) {
    throw std::runtime_error(who + ": a control message that is not a JSON object with an op");
  }
  return j;
}

// The daemon's answer to order `seq`: an answer to an earlier order (one that came after its
// deadline) is skipped, so one late answer never stands for the next. An `error` answer throws.
nlohmann::json read_answer(int fd, std::uint64_t seq, wire::deadline until, const std::string& who) {
  for (;;) {
    nlohmann::json j = read_control(fd, until, who);
    if (!j.contains("seq") || !j["seq"].is_number_unsigned() || j["seq"].get<std::uint64_t>() < seq) continue;
    if (j["seq"].get<std::uint64_t>() != seq) throw std::runtime_error(who + ": an answer to an order not given");
    if (j["op"] == "error") throw std::runtime_error(who + ": " + j.value("message", std::string("failed")));
    return j;
  }
}

std::string local_address_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "127.0.0.1";
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, text, sizeof text);
  }
  return text;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

// ---- the daemon's side ----

// A test hook: CMBENCH_NODE_FAULT=RANK:KIND:SERVING:AFTER makes the node of rank RANK misbehave in
// its SERVING-th serving process (1-based) once it has answered AFTER requests: `die` (the
// serving process exits at once), `hang` (it stops answering, and does not stop when told), or
// `unreachable` (it closes its listening socket before serving anyone; AFTER is ignored).
struct node_fault {
  enum class kind { none, die, hang, unreachable } what = kind::none;
  std::uint64_t after = 0;
};

node_fault fault_for(long rank, std::uint64_t serving_index) {
  const char* text = std::getenv("CMBENCH_NODE_FAULT");
  if (text == nullptr) return {};
  long r = 0;
  char kind[16] = {};
  unsigned long long index = 0, after = 0;
  if (std::sscanf(text, "%ld:%15[a-z]:%llu:%llu", &r, kind, &index, &after) != 4 || r != rank ||
      index != serving_index) {
    return {};
  }
  const std::string k = kind;
  node_fault f;
  f.after = after;
  f.what = k == "die" ? node_fault::kind::die : k == "hang" ? node_fault::kind::hang
         : k == "unreachable" ? node_fault::kind::unreachable : node_fault::kind::none;
  return f;
}

// One trial's serving process, as the daemon runs it.
class serving_process {
 public:
  serving_process(const std::string& workload_name, const std::string& model_name, const param_values& params,
                  std::size_t index, const std::string& listen_host, const std::string& token, long rank,
                  node_fault fault)
      : shared_(sizeof(shared_part)) {
    const model_entry* model = find_model(model_name);
    if (model == nullptr) throw std::runtime_error("no model " + model_name);
    const workload_entry* workload = find_workload(workload_name);
    if (workload == nullptr || (workload->node_value == nullptr && workload->node_prepare == nullptr)) {
      throw std::runtime_error("no distributed workload " + workload_name);
    }
    // Everything the serving process's units touch is in memory they share, made before the model
    // (a pool forks its workers when it is constructed).
    part_ = new (shared_.data()) shared_part{};
    counters_ = &part_->counters;
    part_->context = serving_context{workload, rank, fault, counters_};
    wire::listener l = wire::listen_tcp(listen_host, 0, 4096);
    ::fcntl(l.fd.get(), F_SETFL, ::fcntl(l.fd.get(), F_GETFL) | O_NONBLOCK);
    port_ = l.port;
    // A working node's control port (workloads/node_control.hpp), where the coordinator says go.
    wire::listener control;
    if (workload->node_prepare != nullptr) {
      control = wire::listen_tcp(listen_host, 0);
      ::fcntl(control.fd.get(), F_SETFL, ::fcntl(control.fd.get(), F_GETFL) | O_NONBLOCK);
      control_port_ = control.port;
    }
    int stop[2];
    if (::pipe2(stop, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    // A byte from the serving process once its model is constructed: its CPU is counted from
    // then to the trial's end, as the coordinator's is over the trial's run (setup and teardown
    // count for neither side).
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
      const int err = errno;
      ::close(stop[0]);
      ::close(stop[1]);
      throw std::system_error(err, std::generic_category(), "pipe");
    }
    const model_config config{static_cast<unsigned>(params.count("workers") ? params.at("workers") : 1),
                              static_cast<std::uint64_t>(params.count("in_flight") ? params.at("in_flight") : 0)};
    const pid_t daemon = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
      const int err = errno;
      for (const int fd : {stop[0], stop[1], ready[0], ready[1]}) ::close(fd);
      throw std::system_error(err, std::generic_category(), "fork of the serving process");
    }
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != daemon) ::_exit(1);
      ::close(stop[1]);
      ::close(ready[0]);
      int rc = 0;
      try {
        if (fault.what == node_fault::kind::unreachable) {  // nobody listens: connections are refused
          l.fd.reset();
          (void)!::write(ready[1], "r", 1);
          char byte = 0;
          (void)!::read(stop[0], &byte, 1);
          ::_exit(0);
        }
        // A working node's part first (its input and what its units share), then its two instances.
        std::unique_ptr<node_work> work;
        if (workload->node_prepare != nullptr) part_->context.work = (work = workload->node_prepare(params, index)).get();
        auto instance = model->make(config);
        std::unique_ptr<model_instance> worker;
        if (work) worker = model->make(config);
        (void)!::write(ready[1], "r", 1);
        ::close(ready[1]);
        serve_job job;
        job.listen_fd = l.fd.get();
        job.stop_fd = stop[0];
        job.token = token;
        job.counters = counters_;
        job.context = &part_->context;
        job.task_value = [](const void* c, std::uint64_t task, std::uint32_t compute_us, const std::uint8_t* payload,
                            std::uint32_t bytes) {
          const auto* context = static_cast<const serving_context*>(c);
          context->misbehave();
          return context->work != nullptr ? context->work->task_value(task, compute_us, payload, bytes)
                                          : context->workload->node_value(task, compute_us, payload, bytes);
        };
        job.log = [](const void* c, std::string_view line) {
          std::fprintf(stderr, "cmbench node %ld: %.*s\n", static_cast<const serving_context*>(c)->rank,
                       static_cast<int>(line.size()), line.data());
        };
        if (!work) {
          instance->serve(job);
        } else {
          // The serving instance serves the peers in a thread of its own while this one waits for
          // the coordinator's go and runs the node's part on the working instance.
          std::string serve_failure;
          std::thread serving([&] {
            try {
              instance->serve(job);
            } catch (const std::exception& e) {
              serve_failure = e.what();
            }
          });
          try {
            serve_node_control(control.fd.get(), stop[0], token, index, *work, *worker, job.log, job.context);
          } catch (...) {
            serving.join();
            throw;
          }
          serving.join();
          if (!serve_failure.empty()) throw std::runtime_error(serve_failure);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cmbench node %ld: serving on %s failed: %s\n", rank, model_name.c_str(), e.what());
        std::snprintf(part_->failure, sizeof part_->failure, "%s", e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    ::setpgid(pid_, pid_);
    ::close(stop[0]);
    ::close(ready[1]);
    stop_ = stop[1];
    wait_until_ready(ready[0]);
    ::close(ready[0]);
    counters_before_ = system::read_counters_before(pid_);
  }
  serving_process(const serving_process&) = delete;
  serving_process& operator=(const serving_process&) = delete;
  ~serving_process() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stop_ >= 0) ::close(stop_);
  }

  std::uint16_t port() const { return port_; }
  std::uint16_t control_port() const { return control_port_; }  // 0: the workload's nodes only serve

  // Waits for the serving process's model to be constructed: its byte, or the pipe's end when it
  // failed (its reason in the shared part).
  void wait_until_ready(int fd) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(answer_time).count()));
    char byte = 0;
    if (n > 0 && ::read(fd, &byte, 1) == 1) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error(n == 0 ? "its model took longer than " + std::to_string(answer_time.count()) +
                                          " s to set up"
                                    : "serving failed: " + std::string(part_->failure));
  }

  void sample() {
    const system::group_memory m = system::process_group_memory(pid_);
    stats_.peak_rss_bytes = std::max(stats_.peak_rss_bytes, m.rss_bytes);
    stats_.peak_pss_bytes = std::max(stats_.peak_pss_bytes, m.pss_bytes);
    stats_.peak_processes = std::max(stats_.peak_processes, m.processes);
    stats_.peak_threads = std::max(stats_.peak_threads, m.threads);
  }

  // Tells it to stop, waits (sampling) up to stop_time, kills its group if it must; what it used.
  node_trial_stats stop() {
    sample();
    // The serving group's CPU from its model's construction to now (the trial has ended): the
    // daemon's own CPU (its sampling) is not the node's.
    system::trial_counters after = system::read_counters_after(pid_, counters_before_);
    system::trial_counters before = counters_before_;
    before.own = after.own = {};
    const system::usage window = system::usage_between(before, after);
    (void)!::write(stop_, "x", 1);
    ::close(stop_);
    stop_ = -1;
    int status = 0;
    const auto until = clock::now() + stop_time;
    bool killed = false;
    for (;;) {
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (done < 0 && errno != EINTR) {  // not ours to wait for (SIGCHLD ignored?): no figures
        stats_.failure = std::string("cannot wait for its serving process: ") + std::strerror(errno);
        break;
      }
      if (clock::now() > until && !killed) {
        ::kill(-pid_, SIGKILL);
        killed = true;
      }
      std::this_thread::sleep_for(2ms);
    }
    ::kill(-pid_, SIGKILL);  // whatever of its group outlived it
    pid_ = -1;
    stats_.cpu_seconds = static_cast<double>(window.user_ns + window.sys_ns) * 1e-9;
    stats_.connections = counters_->connections.load();
    stats_.bytes_sent = counters_->bytes_sent.load();
    stats_.bytes_received = counters_->bytes_received.load();
    stats_.requests = counters_->requests.load();
    stats_.refused = counters_->refused.load();
    stats_.peak_in_flight = counters_->peak_in_flight.load();
    if (killed) {
      stats_.failure = "its serving process did not stop within " + std::to_string(stop_time.count()) + " s: killed";
    } else if (WIFSIGNALED(status)) {
      stats_.failure = "its serving process was killed by signal " + std::to_string(WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
      stats_.failure = "its serving process failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
      if (part_->failure[0] != '\0') stats_.failure += ": " + std::string(part_->failure);
    }
    return stats_;
  }

 private:
  // What the serving process's callbacks need: the workload's answer to a task, and the rank for
  // log lines.
  struct serving_context {
    const workload_entry* workload;
    long rank;
    node_fault fault;
    const remote_counters* counters;
    node_work* work = nullptr;  // a working node's part, set in the serving process

    void misbehave() const {
      if (fault.what == node_fault::kind::none || counters->requests.load() < fault.after) return;
      if (fault.what == node_fault::kind::die) ::_exit(70);
      if (fault.what == node_fault::kind::hang) {
        ::signal(SIGTERM, SIG_IGN);
        for (;;) ::pause();
      }
    }
  };

  struct shared_part {
    remote_counters counters;
    serving_context context{};
    char failure[512] = {};  // why serving failed, written by the serving process
  };
  shared_region shared_;
  shared_part* part_ = nullptr;
  system::trial_counters counters_before_;
  remote_counters* counters_ = nullptr;
  std::uint16_t port_ = 0;
  std::uint16_t control_port_ = 0;
  pid_t pid_ = -1;
  int stop_ = -1;
  node_trial_stats stats_;
};

}  // namespace

int run_node(const node_options& options) {
  const std::string who = "cmbench node " + std::to_string(options.rank);
  // Ranks start at once: the coordinator may not be listening yet.
  wire::unique_fd control;
  const auto until = clock::now() + options.connect_timeout;
  std::string last_error;
  while (!control) {
    try {
      control = wire::connect_tcp(options.coordinator.host, options.coordinator.port, until);
    } catch (const std::exception& e) {
      last_error = e.what();
      if (clock::now() >= until) {
        std::fprintf(stderr, "%s: cannot reach the coordinator at %s: %s\n", who.c_str(),
                     options.coordinator.text().c_str(), last_error.c_str());
        return 1;
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  const wire::handshake_result h = wire::client_handshake(control.get(), options.token, wire::role::node, until);
  if (!h) {
    std::fprintf(stderr, "%s: the coordinator at %s refused this node: %s\n", who.c_str(),
                 options.coordinator.text().c_str(), h.detail.c_str());
    return 1;
  }
  // Where serving processes listen, and the address the coordinator reaches them on.
  const std::string listen_host = options.listen_host.empty() ? "127.0.0.1" : options.listen_host;
  const std::string advertised =
      listen_host == "0.0.0.0" || listen_host == "::" ? local_address_of(control.get()) : listen_host;
  try {
    send_control(control.get(),
                 {{"op", "hello"}, {"host", advertised}, {"hostname", host_name()}, {"cpus", system::usable_cpus()},
                  {"pid", static_cast<long>(::getpid())}, {"rank", options.rank}},
                 wire::deadline_in(answer_time), who);
    std::optional<serving_process> serving;
    std::uint64_t servings = 0;
    for (;;) {
      // While a serving process runs, sample its memory between orders.
      pollfd p{control.get(), POLLIN, 0};
      const int n = ::poll(&p, 1, serving ? 20 : -1);
      if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
      if (n <= 0) {
        if (serving) serving->sample();
        continue;
      }
      const wire::frame_read r = wire::read_frame(control.get(), wire::deadline_in(answer_time));
      if (r.io.status == wire::io_status::closed) return 0;  // the coordinator is gone: so are we
      if (!r.ok()) throw std::runtime_error("reading an order: " + r.describe());
      const auto* c = std::get_if<wire::control>(&r.msg);
      const nlohmann::json order = c == nullptr ? nlohmann::json() : nlohmann::json::parse(c->json, nullptr, false);
      const std::string op = order.is_object() ? order.value("op", std::string()) : std::string();
      if (op == "exit") return 0;
      // Every answer carries its order's number.
      const std::uint64_t seq = order.is_object() && order.contains("seq") && order["seq"].is_number_unsigned()
                                    ? order["seq"].get<std::uint64_t>()
                                    : 0;
      auto answer = [&](nlohmann::json j) {
        j["seq"] = seq;
        send_control(control.get(), j, wire::deadline_in(answer_time), who);
      };
      if (op == "serve") {
        try {
          serving.reset();
          serving.emplace(order.at("workload").get<std::string>(), order.at("model").get<std::string>(),
                          order.at("params").get<param_values>(), order.value("index", std::size_t{0}), listen_host,
                          options.token, options.rank, fault_for(options.rank, ++servings));
          answer({{"op", "serving"}, {"port", serving->port()}, {"control_port", serving->control_port()}});
        } catch (const std::exception& e) {
          serving.reset();
          answer({{"op", "error"}, {"message", e.what()}});
        }
      } else if (op == "stop") {
        if (!serving) {
          answer({{"op", "error"}, {"message", "no serving process to stop"}});
          continue;
        }
        const node_trial_stats s = serving->stop();
        serving.reset();
        answer({{"op", "stopped"},
                {"cpu_seconds", s.cpu_seconds},
                {"peak_rss_bytes", s.peak_rss_bytes},
                {"peak_pss_bytes", s.peak_pss_bytes},
                {"peak_processes", s.peak_processes},
                {"peak_threads", s.peak_threads},
                {"connections", s.connections},
                {"bytes_sent", s.bytes_sent},
                {"bytes_received", s.bytes_received},
                {"requests", s.requests},
                {"refused", s.refused},
                {"peak_in_flight", s.peak_in_flight},
                {"failure", s.failure}});
      } else {
        answer({{"op", "error"}, {"message", "unknown order"}});
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", who.c_str(), e.what());
    return 1;
  }
}

// ---- the coordinator's side ----

node_pool node_pool::embedded(std::size_t count, const std::string& self_exe, const std::string& token) {
  node_pool pool;
  pool.token_ = token;
  pool.listener_ = wire::listen_tcp("127.0.0.1", 0);
  const std::string coordinator = "127.0.0.1:" + std::to_string(pool.listener_.port);
  const pid_t parent = ::getpid();
  for (std::size_t i = 0; i < count; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork of an embedded node");
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::dup2(STDERR_FILENO, STDOUT_FILENO);
      ::setenv("CMBENCH_TOKEN", token.c_str(), 1);
      const std::string rank = std::to_string(i + 1);
      ::execl(self_exe.c_str(), self_exe.c_str(), "node", "--coordinator", coordinator.c_str(), "--rank",
              rank.c_str(), static_cast<char*>(nullptr));
      std::fprintf(stderr, "cmbench: cannot exec %s: %s\n", self_exe.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    pool.pids_.push_back(pid);
  }
  pool.accept_nodes(count, 30s);
  return pool;
}

node_pool node_pool::launched(const endpoint& listen_on, std::size_t count, const std::string& token,
                              std::chrono::milliseconds timeout) {
  node_pool pool;
  pool.token_ = token;
  pool.listener_ = wire::listen_tcp(listen_on.host, listen_on.port);
  pool.accept_nodes(count, timeout);
  return pool;
}

void node_pool::accept_nodes(std::size_t count, std::chrono::milliseconds timeout) {
  const auto until = clock::now() + timeout;
  std::vector<std::pair<long, std::size_t>> by_rank;
  while (nodes_.size() < count) {
    wire::unique_fd fd = wire::accept_until(listener_.fd.get(), until);
    if (!fd) {
      throw std::runtime_error("only " + std::to_string(nodes_.size()) + " of " + std::to_string(count) +
                               " nodes connected to the coordinator on port " + std::to_string(listener_.port) +
                               " within " + std::to_string(timeout.count() / 1000) + " s");
    }
    const std::string peer = wire::peer_name(fd.get());
    const wire::handshake_result h = wire::serve_handshake(fd.get(), token_, wire::role::node);
    if (!h) {
      std::fprintf(stderr, "cmbench: refused a node from %s: %s: %s\n", peer.c_str(),
                   std::string(wire::refuse_reason_name(h.reason)).c_str(), h.detail.c_str());
      continue;
    }
    try {
      const nlohmann::json hello = read_control(fd.get(), wire::deadline_in(answer_time), "node at " + peer);
      node_info n;
      n.host = hello.at("host").get<std::string>();
      n.hostname = hello.at("hostname").get<std::string>();
      n.cpus = hello.at("cpus").get<unsigned>();
      n.pid = hello.at("pid").get<long>();
      n.rank = hello.at("rank").get<long>();
      nodes_.push_back(n);
      control_.push_back(std::move(fd));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cmbench: dropped a node from %s: %s\n", peer.c_str(), e.what());
    }
  }
  // In rank order, so node i is the same process in every trial and every report.
  std::vector<std::size_t> order(nodes_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nodes_[a].rank < nodes_[b].rank; });
  std::vector<node_info> nodes;
  std::vector<wire::unique_fd> control;
  for (std::size_t i : order) {
    nodes.push_back(nodes_[i]);
    control.push_back(std::move(control_[i]));
  }
  nodes_ = std::move(nodes);
  control_ = std::move(control);
}

node_pool::node_pool(node_pool&& o) noexcept
    : listener_(std::move(o.listener_)),
      token_(std::move(o.token_)),
      nodes_(std::move(o.nodes_)),
      control_(std::move(o.control_)),
      pids_(std::move(o.pids_)),
      serving_(o.serving_),
      control_ports_(std::move(o.control_ports_)),
      orders_(o.orders_) {
  o.pids_.clear();
  o.control_.clear();
}

node_pool& node_pool::operator=(node_pool&& o) noexcept {
  if (this != &o) {
    shut_down();
    listener_ = std::move(o.listener_);
    token_ = std::move(o.token_);
    nodes_ = std::move(o.nodes_);
    control_ = std::move(o.control_);
    pids_ = std::move(o.pids_);
    serving_ = o.serving_;
    control_ports_ = std::move(o.control_ports_);
    orders_ = o.orders_;
    o.pids_.clear();
    o.control_.clear();
  }
  return *this;
}

node_pool::~node_pool() { shut_down(); }

void node_pool::shut_down() noexcept {
  for (auto& fd : control_) {
    if (fd) (void)wire::write_frame(fd.get(), wire::control{R"({"op":"exit"})"}, wire::deadline_in(200ms));
  }
  control_.clear();
  const auto until = clock::now() + 5s;
  for (const pid_t pid : pids_) {
    // Killed only while it is still our unreaped child: a daemon that died may have been reaped
    // already (a trial's clean-up reaps every child), and its pid, and group, reused since.
    pid_t ended = 0;
    while ((ended = ::waitpid(pid, nullptr, WNOHANG)) == 0 && clock::now() < until) std::this_thread::sleep_for(2ms);
    if (ended == 0) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  pids_.clear();
}

unsigned node_pool::cpus_of_first(std::size_t count) const {
  std::map<std::string, unsigned> machines;
  for (std::size_t i = 0; i < std::min(count, nodes_.size()); ++i) machines[nodes_[i].hostname] = nodes_[i].cpus;
  unsigned cpus = 0;
  for (const auto& [name, n] : machines) cpus += n;
  return cpus;
}

std::vector<node_address> node_pool::start_serving(std::size_t count, const std::string& workload,
                                                   const std::string& model, const param_values& params) {
  if (count > nodes_.size()) {
    throw std::runtime_error("the run needs " + std::to_string(count) + " nodes; " + std::to_string(nodes_.size()) +
                             " are connected");
  }
  // Every node is ordered first, then every answer read: the nodes set up in parallel.
  const std::uint64_t seq = ++orders_;
  serving_ = 0;
  for (std::size_t i = 0; i < count; ++i) {
    send_control(control_[i].get(),
                 {{"op", "serve"}, {"seq", seq}, {"workload", workload}, {"model", model}, {"params", params},
                  {"index", i}},
                 wire::deadline_in(answer_time), who(i));
    ++serving_;
  }
  std::vector<node_address> addresses;
  control_ports_.clear();
  const auto until = wire::deadline_in(answer_time);
  for (std::size_t i = 0; i < count; ++i) {
    const nlohmann::json answer = read_answer(control_[i].get(), seq, until, who(i));
    if (answer.value("op", std::string()) != "serving") throw std::runtime_error(who(i) + ": unexpected answer");
    addresses.push_back({nodes_[i].host, answer.at("port").get<std::uint16_t>()});
    if (const auto port = answer.value("control_port", std::uint16_t{0}); port != 0) {
      control_ports_.push_back({nodes_[i].host, port});
    }
  }
  return addresses;
}

std::string node_pool::who(std::size_t i) const {
  return "node " + std::to_string(i + 1) + " (rank " + std::to_string(nodes_[i].rank) + ", " + nodes_[i].host + ")";
}

std::vector<node_trial_stats> node_pool::stop_serving() {
  // Every node is told first, then every answer read: W hung nodes take one stop's time, not W.
  const std::uint64_t seq = ++orders_;
  std::vector<node_trial_stats> all(serving_);
  std::vector<bool> told(serving_, false);
  for (std::size_t i = 0; i < serving_; ++i) {
    try {
      send_control(control_[i].get(), {{"op", "stop"}, {"seq", seq}}, wire::deadline_in(answer_time), who(i));
      told[i] = true;
    } catch (const std::exception& e) {
      all[i].failure = e.what();
    }
  }
  const auto until = wire::deadline_in(answer_time + stop_time);
  for (std::size_t i = 0; i < serving_; ++i) {
    if (!told[i]) continue;
    node_trial_stats& s = all[i];
    try {
      const nlohmann::json j = read_answer(control_[i].get(), seq, until, who(i));
      s.cpu_seconds = j.at("cpu_seconds").get<double>();
      s.peak_rss_bytes = j.at("peak_rss_bytes").get<std::int64_t>();
      s.peak_pss_bytes = j.at("peak_pss_bytes").get<std::int64_t>();
      s.peak_processes = j.at("peak_processes").get<std::int64_t>();
      s.peak_threads = j.at("peak_threads").get<std::int64_t>();
      s.connections = j.at("connections").get<std::uint64_t>();
      s.bytes_sent = j.at("bytes_sent").get<std::uint64_t>();
      s.bytes_received = j.at("bytes_received").get<std::uint64_t>();
      s.requests = j.at("requests").get<std::uint64_t>();
      s.refused = j.at("refused").get<std::uint64_t>();
      s.peak_in_flight = j.at("peak_in_flight").get<std::uint64_t>();
      s.failure = j.at("failure").get<std::string>();
      if (!s.failure.empty()) s.failure = who(i) + ": " + s.failure;
    } catch (const std::exception& e) {
      s.failure = e.what();
    }
  }
  serving_ = 0;
  return all;
}

std::map<std::string, double> node_figures(const std::vector<node_trial_stats>& stats, unsigned node_cpus) {
  std::map<std::string, double> m;
  m["node_cpus"] = node_cpus;
  double cpu = 0, rss = 0, pss = 0, processes = 0, threads = 0, connections = 0, sent = 0, received = 0, requests = 0,
         refused = 0, peak_in_flight = 0;
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const node_trial_stats& s = stats[i];
    const std::string prefix = "node" + std::to_string(i + 1) + "_";
    m[prefix + "cpu_seconds"] = s.cpu_seconds;
    m[prefix + "peak_pss_bytes"] = static_cast<double>(s.peak_pss_bytes);
    m[prefix + "requests"] = static_cast<double>(s.requests);
    cpu += s.cpu_seconds;
    rss += static_cast<double>(s.peak_rss_bytes);
    pss += static_cast<double>(s.peak_pss_bytes);
    processes += static_cast<double>(s.peak_processes);
    threads += static_cast<double>(s.peak_threads);
    connections += static_cast<double>(s.connections);
    sent += static_cast<double>(s.bytes_sent);
    received += static_cast<double>(s.bytes_received);
    requests += static_cast<double>(s.requests);
    refused += static_cast<double>(s.refused);
    peak_in_flight = std::max(peak_in_flight, static_cast<double>(s.peak_in_flight));
  }
  m["nodes_cpu_seconds"] = cpu;
  m["nodes_peak_rss_bytes"] = rss;
  m["nodes_peak_pss_bytes"] = pss;
  m["nodes_peak_processes"] = processes;
  m["nodes_peak_threads"] = threads;
  m["nodes_connections"] = connections;
  m["nodes_bytes_sent"] = sent;
  m["nodes_bytes_received"] = received;
  m["nodes_requests"] = requests;
  m["nodes_refused"] = refused;
  m["node_requests_in_flight_peak"] = peak_in_flight;
  return m;
}

}  // namespace cmbench
