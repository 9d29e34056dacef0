#include "harness/link.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace cmbench {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void bad(std::string_view whole, const std::string& why) {
  throw std::invalid_argument("--link " + std::string(whole) + ": " + why +
                              " (expected delay=TIME,jitter=TIME,rate=RATE, any of them, e.g. "
                              "delay=5ms,jitter=1ms,rate=100mbit; TIME in us, ms or s, RATE in bit, kbit, mbit or "
                              "gbit per second)");
}

// "5ms" -> (5, "ms"): a plain decimal number (digits, at most one point) then its unit.
std::pair<double, std::string> number_and_unit(std::string_view key, std::string_view value, std::string_view whole) {
  std::size_t end = 0;
  while (end < value.size() && (std::isdigit(static_cast<unsigned char>(value[end])) || value[end] == '.')) ++end;
  const std::string_view digits = value.substr(0, end);
  double number = 0;
  const auto [stop, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number,
                                             std::chars_format::fixed);
  if (digits.empty() || error != std::errc{} || stop != digits.data() + digits.size() || !std::isfinite(number)) {
    bad(whole, std::string(key) + "=" + std::string(value) + " does not start with a non-negative decimal number");
  }
  return {number, lower(value.substr(end))};
}

std::chrono::nanoseconds parse_time(std::string_view key, std::string_view value, std::string_view whole) {
  const auto [number, unit] = number_and_unit(key, value, whole);
  double per_unit = 0;
  if (unit == "us") per_unit = 1e3;
  else if (unit == "ms") per_unit = 1e6;
  else if (unit == "s") per_unit = 1e9;
  else bad(whole, std::string(key) + "=" + std::string(value) + ": unit '" + unit + "' is not us, ms or s");
  const double ns = number * per_unit;
  if (ns > static_cast<double>(std::chrono::nanoseconds(max_link_delay).count())) {
    bad(whole,
        std::string(key) + "=" + std::string(value) + " is over " + std::to_string(max_link_delay.count()) + " s");
  }
  return std::chrono::nanoseconds{std::llround(ns)};
}

double parse_rate(std::string_view value, std::string_view whole) {
  const auto [number, unit] = number_and_unit("rate", value, whole);
  double per_unit = 0;
  if (unit == "bit") per_unit = 1;
  else if (unit == "kbit") per_unit = 1e3;
  else if (unit == "mbit") per_unit = 1e6;
  else if (unit == "gbit") per_unit = 1e9;
  else bad(whole, "rate=" + std::string(value) + ": unit '" + unit + "' is not bit, kbit, mbit or gbit (per second)");
  const double rate = number * per_unit;
  if (!(rate > 0)) bad(whole, "rate=" + std::string(value) + ": a link carries something (rate must be above 0)");
  if (rate > max_link_rate_bits_per_second) bad(whole, "rate=" + std::string(value) + " is over 10000gbit");
  return rate;
}

}  // namespace

link_conditions parse_link(std::string_view text) {
  if (text.empty()) {
    throw std::invalid_argument("--link needs conditions, e.g. delay=5ms,jitter=1ms,rate=100mbit (got an empty text)");
  }
  link_conditions link;
  link.given = std::string(text);
  std::vector<std::string> seen;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view part = text.substr(start, comma - start);
    start = comma + 1;
    const auto eq = part.find('=');
    if (part.empty()) bad(text, "an empty item");
    if (eq == std::string_view::npos) bad(text, "'" + std::string(part) + "' is not KEY=VALUE");
    const std::string key(part.substr(0, eq));
    const std::string_view value = part.substr(eq + 1);
    if (value.empty()) bad(text, key + " has no value");
    for (const auto& s : seen) {
      if (s == key) bad(text, key + " is given twice");
    }
    seen.push_back(key);
    if (key == "delay") link.delay = parse_time(key, value, text);
    else if (key == "jitter") link.jitter = parse_time(key, value, text);
    else if (key == "rate") link.rate_bits_per_second = parse_rate(value, text);
    else bad(text, "unknown key '" + key + "'");
  }
  // A chunk is never delivered before it was sent: its delay less its jitter stays at least 0.
  if (link.jitter > link.delay) bad(text, "jitter is more than delay (each chunk's delay is delay +- jitter)");
  return link;
}

nlohmann::ordered_json link_json(const link_conditions& link) {
  if (!link.active()) return nullptr;
  return {{"given", link.given},
          {"delay_ns", link.delay.count()},
          {"jitter_ns", link.jitter.count()},
          {"rate_bps", link.rate_bits_per_second > 0 ? nlohmann::ordered_json(link.rate_bits_per_second)
                                                                 : nlohmann::ordered_json(nullptr)}};
}

}  // namespace cmbench
