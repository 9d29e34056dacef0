// The --link flag's syntax and meaning (harness/link.hpp): every key, unit and subset it takes,
// and a clear error for anything else.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "harness/link.hpp"

namespace cmbench {
namespace {

using std::chrono::nanoseconds;

TEST(link_conditions, parses_every_key_and_unit) {
  const link_conditions all = parse_link("delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_EQ(all.given, "delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_TRUE(all.active());
  EXPECT_EQ(all.delay, nanoseconds{5'000'000});
  EXPECT_EQ(all.jitter, nanoseconds{1'000'000});
  EXPECT_DOUBLE_EQ(all.rate_bits_per_second, 100e6);

  EXPECT_EQ(parse_link("delay=250us").delay, nanoseconds{250'000});
  EXPECT_EQ(parse_link("delay=1.5s").delay, nanoseconds{1'500'000'000});
  EXPECT_EQ(parse_link("delay=0.5ms").delay, nanoseconds{500'000});
  EXPECT_EQ(parse_link("delay=0ms").delay, nanoseconds{0});
  EXPECT_EQ(parse_link("delay=2MS").delay, nanoseconds{2'000'000});  // units are case-insensitive
  // SI, as netem: kbit is 1000 bit per second.
  EXPECT_DOUBLE_EQ(parse_link("rate=9600bit").rate_bits_per_second, 9600);
  EXPECT_DOUBLE_EQ(parse_link("rate=64kbit").rate_bits_per_second, 64e3);
  EXPECT_DOUBLE_EQ(parse_link("rate=1.5Mbit").rate_bits_per_second, 1.5e6);
  EXPECT_DOUBLE_EQ(parse_link("rate=10gbit").rate_bits_per_second, 10e9);
}

TEST(link_conditions, takes_any_subset_in_any_order) {
  const link_conditions rate_only = parse_link("rate=1mbit");
  EXPECT_EQ(rate_only.delay, nanoseconds{0});
  EXPECT_EQ(rate_only.jitter, nanoseconds{0});
  EXPECT_DOUBLE_EQ(rate_only.rate_bits_per_second, 1e6);
  const link_conditions delay_only = parse_link("delay=3ms");
  EXPECT_EQ(delay_only.delay, nanoseconds{3'000'000});
  EXPECT_DOUBLE_EQ(delay_only.rate_bits_per_second, 0);  // no limit
  const link_conditions reordered = parse_link("rate=2mbit,jitter=1ms,delay=4ms");
  EXPECT_EQ(reordered.delay, nanoseconds{4'000'000});
  EXPECT_EQ(reordered.jitter, nanoseconds{1'000'000});
  EXPECT_EQ(parse_link("delay=2ms,jitter=2ms").jitter, nanoseconds{2'000'000});  // jitter may equal delay
}

TEST(link_conditions, none_is_inactive_and_has_no_record) {
  const link_conditions none;
  EXPECT_FALSE(none.active());
  EXPECT_TRUE(link_json(none).is_null());
}

TEST(link_conditions, record_holds_the_text_and_the_numbers) {
  const auto j = link_json(parse_link("delay=5ms,jitter=1ms,rate=100mbit"));
  EXPECT_EQ(j.at("given"), "delay=5ms,jitter=1ms,rate=100mbit");
  EXPECT_EQ(j.at("delay_ns"), 5'000'000);
  EXPECT_EQ(j.at("jitter_ns"), 1'000'000);
  EXPECT_DOUBLE_EQ(j.at("rate_bits_per_second").get<double>(), 100e6);
  EXPECT_TRUE(link_json(parse_link("delay=1ms")).at("rate_bits_per_second").is_null());
}

TEST(link_conditions, serialisation_time_is_bits_over_rate) {
  EXPECT_DOUBLE_EQ(parse_link("rate=8kbit").serialisation_seconds(1000), 1.0);
  EXPECT_DOUBLE_EQ(parse_link("delay=1ms").serialisation_seconds(1000), 0.0);
}

TEST(link_conditions, refuses_bad_input_naming_the_part) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty text"},
      {"delay=5ms,", "empty item"},
      {",delay=5ms", "empty item"},
      {"delay", "not KEY=VALUE"},
      {"delay=", "no value"},
      {"latency=5ms", "unknown key 'latency'"},
      {"Delay=5ms", "unknown key"},
      {"delay=5ms,delay=6ms", "given twice"},
      {"delay=5", "unit '' is not us, ms or s"},
      {"delay=5ns", "unit 'ns'"},
      {"delay=5 ms", "unit ' ms'"},
      {"delay=-5ms", "non-negative decimal"},
      {"delay=ms", "non-negative decimal"},
      {"delay=1e3ms", "unit 'e3ms'"},
      {"delay=1.2.3ms", "non-negative decimal"},
      {"delay=4000s", "over 3600 s"},
      {"jitter=1ms", "jitter is more than delay"},
      {"delay=1ms,jitter=2ms", "jitter is more than delay"},
      {"rate=0mbit", "above 0"},
      {"rate=0.0bit", "above 0"},
      {"rate=100", "unit '' is not bit"},
      {"rate=100mbps", "unit 'mbps'"},
      {"rate=100MB", "unit 'mb'"},
      {"rate=20000gbit", "over 10000gbit"},
      {"rate=fast", "non-negative decimal"},
  };
  for (const auto& [text, why] : cases) {
    try {
      parse_link(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("--link ", 0), 0u) << message;
      EXPECT_NE(message.find(why), std::string::npos) << "'" << text << "': " << message;
    }
  }
}

}  // namespace
}  // namespace cmbench
