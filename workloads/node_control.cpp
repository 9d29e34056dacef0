#include "workloads/node_control.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "models/wire/blocking.hpp"
#include "models/wire/io.hpp"

namespace cmbench {
namespace {

using clock = std::chrono::steady_clock;

// How long either end waits for the other's small frames outside the work itself.
constexpr std::chrono::seconds exchange_time{10};

std::string node_text(std::size_t i, const node_address& a) {
  return "node " + std::to_string(i + 1) + " (control port " + a.text() + ")";
}

// The next control frame's JSON object, or why there is none.
nlohmann::json read_object(int fd, wire::deadline until, std::string& why) {
  const wire::frame_read r = wire::read_frame(fd, until);
  if (!r.ok()) {
    why = r.describe();
    return {};
  }
  const auto* c = std::get_if<wire::control>(&r.msg);
  if (c == nullptr) {
    why = "expected a control frame, got " + std::string(wire::frame_type_name(wire::type_of(r.msg)));
    return {};
  }
  nlohmann::json j = nlohmann::json::parse(c->json, nullptr, false);
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) {
    why = "a control message that is not a JSON object with an op";
    return {};
  }
  return j;
}

node_address parse_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) throw std::invalid_argument("a peer address without a port: " + text);
  const unsigned long port = std::stoul(text.substr(colon + 1));
  if (port == 0 || port > 65535) throw std::invalid_argument("a peer port out of range: " + text);
  return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// One control connection, welcomed: reads the go, runs the work, answers. True once the work ran.
bool take_go(int fd, const std::string& token, std::size_t index, node_work& work, model_instance& worker,
             const std::string& peer, void (*log)(const void*, std::string_view), const void* log_context) {
  auto say = [&](const std::string& line) {
    if (log != nullptr) log(log_context, "control connection from " + peer + ": " + line);
  };
  std::string why;
  const nlohmann::json go = read_object(fd, wire::deadline_in(exchange_time), why);
  if (go.is_null()) {
    say(why);
    return false;
  }
  node_done done;
  node_go order;
  try {
    if (go.at("op") != "go") throw std::invalid_argument("expected go, got " + go.at("op").get<std::string>());
    order.index = go.at("index").get<std::size_t>();
    if (order.index != index) {
      throw std::invalid_argument("told to go as node " + std::to_string(order.index + 1) + ", but this is node " +
                                  std::to_string(index + 1));
    }
    for (const auto& p : go.at("peers")) order.peers.push_back(parse_address(p.get<std::string>()));
    if (index >= order.peers.size()) throw std::invalid_argument("this node is not among the peers");
    order.token = token;
    order.deadline = clock::now() + std::chrono::milliseconds(go.at("remaining_ms").get<std::int64_t>());
  } catch (const std::exception& e) {
    say(std::string("a bad go: ") + e.what());
    (void)wire::write_frame(fd, wire::control{nlohmann::json{{"op", "done"}, {"checksum", 0}, {"figures", nlohmann::json::object()}, {"error", e.what()}}.dump()},
                            wire::deadline_in(exchange_time));
    return false;
  }
  try {
    done = work.run(worker, order);
  } catch (const std::exception& e) {
    done.error = e.what();
  }
  const nlohmann::json answer = {
      {"op", "done"}, {"checksum", done.checksum}, {"figures", done.figures}, {"error", done.error}};
  if (const wire::io_result w = wire::write_frame(fd, wire::control{answer.dump()}, wire::deadline_in(exchange_time));
      !w) {
    say("answering done: " + w.describe());
  }
  return true;
}

}  // namespace

void serve_node_control(int listen_fd, int stop_fd, const std::string& token, std::size_t index, node_work& work,
                        model_instance& worker, void (*log)(const void*, std::string_view), const void* log_context) {
  bool ran = false;
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll of the control port");
    }
    if (p[1].revents != 0) return;
    if (p[0].revents == 0) continue;
    wire::unique_fd fd = wire::accept_until(listen_fd, wire::deadline_in(std::chrono::milliseconds(0)));
    if (!fd) continue;
    const std::string peer = wire::peer_name(fd.get());
    const wire::handshake_result h = wire::serve_handshake(fd.get(), token, wire::role::coordinator);
    if (!h) {
      if (log != nullptr) {
        log(log_context, "refused control connection from " + peer + ": " +
                             std::string(wire::refuse_reason_name(h.reason)) + ": " + h.detail);
      }
      continue;
    }
    if (ran) {  // one run per serving process: its state is spent
      (void)wire::write_frame(fd.get(), wire::control{R"({"op":"done","checksum":0,"figures":{},"error":"this serving process has run already"})"},
                              wire::deadline_in(exchange_time));
      continue;
    }
    ran = take_go(fd.get(), token, index, work, worker, peer, log, log_context);
  }
}

working_nodes::working_nodes(std::vector<node_address> controls, std::vector<node_address> peers, std::string token,
                             clock::time_point deadline)
    : controls_(std::move(controls)), peers_(std::move(peers)), deadline_(deadline) {
  if (controls_.size() != peers_.size()) {
    throw std::runtime_error(std::to_string(peers_.size()) + " nodes serve but " + std::to_string(controls_.size()) +
                             " have a control port");
  }
  for (std::size_t i = 0; i < controls_.size(); ++i) {
    wire::unique_fd fd;
    try {
      fd = wire::connect_tcp(controls_[i].host, controls_[i].port, deadline_);
    } catch (const std::exception& e) {
      throw std::runtime_error(node_text(i, controls_[i]) + " is unreachable: " + e.what());
    }
    if (const wire::handshake_result h = wire::client_handshake(fd.get(), token, wire::role::coordinator, deadline_);
        !h) {
      throw std::runtime_error(node_text(i, controls_[i]) + " refused the coordinator: " + h.detail);
    }
    fds_.push_back(std::move(fd));
  }
}

std::vector<node_done> working_nodes::run() {
  nlohmann::json peer_list = nlohmann::json::array();
  for (const node_address& p : peers_) peer_list.push_back(p.text());
  // Every node is told before any answer is read: they start together. Their deadline comes a
  // little before the coordinator's, so a node that waited in vain for another says for which.
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now()).count();
    const auto remaining = left - std::min<std::int64_t>(1000, left / 10);
    const nlohmann::json go = {
        {"op", "go"}, {"index", i}, {"peers", peer_list}, {"remaining_ms", std::max<std::int64_t>(1, remaining)}};
    if (const wire::io_result w = wire::write_frame(fds_[i].get(), wire::control{go.dump()}, deadline_); !w) {
      throw std::runtime_error(node_text(i, controls_[i]) + ": sending go: " + w.describe());
    }
  }
  // Answers are taken as they come: a node that failed is named at once, not after the others
  // gave up waiting for it.
  std::vector<node_done> all(fds_.size());
  std::vector<bool> answered(fds_.size(), false);
  for (std::size_t left = fds_.size(); left > 0;) {
    std::vector<pollfd> p;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
      if (answered[i]) continue;
      p.push_back({fds_[i].get(), POLLIN, 0});
      which.push_back(i);
    }
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now()).count();
    const int n = wait_ms <= 0 ? 0 : ::poll(p.data(), p.size(), static_cast<int>(std::min<std::int64_t>(wait_ms, 1000)));
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll of the control ports");
    if (n <= 0) {
      if (clock::now() < deadline_) continue;
      throw std::runtime_error(node_text(which.front(), controls_[which.front()]) +
                               " did not answer before the trial's deadline");
    }
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (p[k].revents == 0) continue;
      const std::size_t i = which[k];
      std::string why;
      const nlohmann::json done = read_object(fds_[i].get(), deadline_, why);
      if (done.is_null()) throw std::runtime_error(node_text(i, controls_[i]) + ": " + why);
      try {
        if (done.at("op") != "done") {
          throw std::invalid_argument("expected done, got " + done.at("op").get<std::string>());
        }
        all[i].checksum = done.at("checksum").get<std::uint64_t>();
        all[i].figures = done.at("figures").get<std::map<std::string, double>>();
        all[i].error = done.at("error").get<std::string>();
      } catch (const std::exception& e) {
        throw std::runtime_error(node_text(i, controls_[i]) + ": a bad answer: " + e.what());
      }
      if (!all[i].error.empty()) {
        throw std::runtime_error("node " + std::to_string(i + 1) + " (" + peers_[i].text() + "): " + all[i].error);
      }
      answered[i] = true;
      --left;
    }
  }
  return all;
}

}  // namespace cmbench
