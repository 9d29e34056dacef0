// A slow link's conditions (`cmbench run --link delay=5ms,jitter=1ms,rate=100mbit`): what every
// connection between the coordinator and a node goes through when the suite emulates a link
// (harness/link_proxy.hpp applies them). One home for the flag's syntax and the numbers it means.
//
// Keys, any subset, comma separated, each at most once:
//   delay=TIME   added one way, to every chunk of bytes (TIME: a decimal number and us, ms or s)
//   jitter=TIME  each chunk's delay varies uniformly in [delay - jitter, delay + jitter]; at most delay
//   rate=RATE    the link's capacity per direction, shared by every connection to one node
//                (RATE: a decimal number and bit, kbit, mbit or gbit per second; SI: kbit = 1000 bit)
// as netem spells them. Units are case-insensitive ("100Mbit").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cmbench {

struct link_conditions {
  std::string given;                 // the flag's text as given; empty: no link (nothing added)
  std::chrono::nanoseconds delay{0};
  std::chrono::nanoseconds jitter{0};
  double rate_bits_per_second = 0;   // 0: no limit

  bool active() const { return !given.empty(); }
  // Seconds one direction of the link is busy carrying `bytes` (0 with no rate limit).
  double serialisation_seconds(std::size_t bytes) const {
    return rate_bits_per_second > 0 ? static_cast<double>(bytes) * 8.0 / rate_bits_per_second : 0.0;
  }
};

// The longest delay or jitter accepted: longer would only make every trial time out.
inline constexpr std::chrono::seconds max_link_delay{3600};
// The highest rate accepted (10 Tbit/s): past any link, and the arithmetic stays exact enough.
inline constexpr double max_link_rate_bits_per_second = 1e13;

// Parses the flag's text. Throws std::invalid_argument naming the bad part: an unknown or repeated
// key, a missing '=' or value, a number that is not a finite non-negative decimal, a missing or
// unknown unit, jitter above delay, a zero rate, or an empty text.
link_conditions parse_link(std::string_view text);

// The report's record of the conditions: {"given", "delay_ns", "jitter_ns", "rate_bps" (bits per
// second; null: no limit)}, the names the scripts read (scripts/cmbench_scripts/link.py); null when
// no link.
nlohmann::ordered_json link_json(const link_conditions& link);

}  // namespace cmbench
