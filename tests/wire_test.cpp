// The wire protocol (models/wire/): frames round-trip, every hostile input is refused with its
// reason, the token is compared in constant time, and the socket helpers and handshake behave
// over real loopback sockets (127.0.0.1, ports the OS picks).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "models/wire/frame.hpp"
#include "models/wire/io.hpp"
#include "models/wire/token.hpp"

#include "tests/largest_allocation.hpp"

namespace {

using namespace cmbench::wire;
using namespace std::chrono_literals;

const std::string k_token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::vector<message> every_message() {
  return {
      hello{protocol_version, role::coordinator, k_token},
      hello{protocol_version, role::node, std::string("\0\xff binary", 9)},
      welcome{protocol_version, role::node},
      refuse{refuse_reason::bad_token, "wrong token"},
      refuse{refuse_reason::timeout, ""},
      task_request{42, 500, 10, bytes{1, 2, 3, 0, 255}},
      task_request{0xffffffffffffffffull, 0xffffffffu, 0, {}},
      task_result{42, 0x0123456789abcdefull},
      error{7, "node out of memory"},
      error{0, ""},
      bye{},
      control{R"({"op":"serve"})"},
  };
}

TEST(WireFrame, EveryTypeRoundTrips) {
  std::set<frame_type> seen;
  for (const message& m : every_message()) {
    const bytes f = encode_frame(m);
    const decoded d = decode_frame(f);
    ASSERT_TRUE(d) << frame_type_name(type_of(m)) << ": " << d.detail;
    EXPECT_EQ(d.msg, m) << frame_type_name(type_of(m));
    EXPECT_EQ(d.consumed, f.size());
    seen.insert(type_of(m));
  }
  EXPECT_EQ(seen.size(), std::size_t{last_frame_type - first_frame_type + 1});
}

TEST(WireFrame, ExtraBytesAfterAFrameAreLeftAlone) {
  bytes two = encode_frame(task_result{1, 2});
  const std::size_t first = two.size();
  const bytes second = encode_frame(bye{});
  two.insert(two.end(), second.begin(), second.end());
  const decoded d = decode_frame(two);
  ASSERT_TRUE(d);
  EXPECT_EQ(d.consumed, first);
  EXPECT_EQ(d.msg, (message{task_result{1, 2}}));
}

TEST(WireFrame, HeaderLayoutIsLittleEndianAsDocumented) {
  const bytes f = encode_frame(task_result{0x0102030405060708ull, 9});
  ASSERT_EQ(f.size(), header_size + 16);
  const bytes head(f.begin(), f.begin() + header_size);
  EXPECT_EQ(head, (bytes{'C', 'M', 'B', 'W', 1, 0, 5, 0, 16, 0, 0, 0}));
  // The id, little-endian, right after the header.
  EXPECT_EQ(bytes(f.begin() + 12, f.begin() + 20), (bytes{8, 7, 6, 5, 4, 3, 2, 1}));
}

TEST(WireFrame, EveryShortHeaderIsTruncated) {
  const bytes f = encode_frame(bye{});
  for (std::size_t n = 0; n < header_size; ++n) {
    const decoded d = decode_frame(byte_view(f.data(), n));
    EXPECT_EQ(d.error, frame_error::truncated_header) << n;
  }
}

TEST(WireFrame, EveryShortPayloadIsTruncated) {
  const bytes f = encode_frame(task_request{1, 2, 3, bytes(100, 7)});
  for (std::size_t n = header_size; n < f.size(); ++n) {
    const decoded d = decode_frame(byte_view(f.data(), n));
    EXPECT_EQ(d.error, frame_error::truncated_payload) << n;
  }
}

TEST(WireFrame, BadMagicVersionFlagsAndType) {
  const bytes good = encode_frame(bye{});
  auto with = [&](std::size_t at, std::uint8_t v) {
    bytes b = good;
    b[at] = v;
    return decode_frame(b).error;
  };
  EXPECT_EQ(with(0, 'X'), frame_error::bad_magic);
  EXPECT_EQ(with(3, 'X'), frame_error::bad_magic);
  EXPECT_EQ(with(4, 2), frame_error::unsupported_version);
  EXPECT_EQ(with(5, 1), frame_error::unsupported_version);  // version 257
  EXPECT_EQ(with(4, 0), frame_error::unsupported_version);
  EXPECT_EQ(with(7, 1), frame_error::bad_flags);
  EXPECT_EQ(with(6, 0), frame_error::unknown_type);
  EXPECT_EQ(with(6, last_frame_type + 1), frame_error::unknown_type);
  EXPECT_EQ(with(6, 255), frame_error::unknown_type);
}

TEST(WireFrame, OversizedLengthIsRefusedFromTheHeaderAlone) {
  for (std::uint32_t len : {max_payload + 1, 0xffffffffu}) {
    const auto h = encode_header({protocol_version, frame_type::task_request, 0, len});
    const decoded d = decode_frame(h);  // no payload bytes at all: oversized, not truncated
    EXPECT_EQ(d.error, frame_error::oversized) << len;
  }
  const auto at_limit = encode_header({protocol_version, frame_type::task_request, 0, max_payload});
  EXPECT_EQ(decode_frame(at_limit).error, frame_error::truncated_payload);
  // A caller's smaller limit.
  const bytes f = encode_frame(error{1, std::string(100, 'x')});
  EXPECT_EQ(decode_frame(f, 50).error, frame_error::oversized);
  EXPECT_TRUE(decode_frame(f, 200));
}

TEST(WireFrame, MalformedPayloads) {
  auto frame_of = [](frame_type t, const bytes& payload) {
    const auto h = encode_header({protocol_version, t, 0, static_cast<std::uint32_t>(payload.size())});
    bytes f(header_size + payload.size());
    std::copy(h.begin(), h.end(), f.begin());
    std::copy(payload.begin(), payload.end(), f.begin() + header_size);
    return f;
  };
  // Trailing bytes after a bye, a task_result one byte short, a string longer than what is left.
  EXPECT_EQ(decode_frame(frame_of(frame_type::bye, {0})).error, frame_error::malformed_payload);
  EXPECT_EQ(decode_frame(frame_of(frame_type::task_result, bytes(15, 0))).error, frame_error::malformed_payload);
  EXPECT_EQ(decode_frame(frame_of(frame_type::error, {1, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 'a'})).error,
            frame_error::malformed_payload);
  // A string length near 4 GiB: refused, never allocated.
  EXPECT_EQ(decode_frame(frame_of(frame_type::error, {1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255})).error,
            frame_error::malformed_payload);
  // An unknown role, and a token over max_token_size.
  EXPECT_EQ(decode_frame(frame_of(frame_type::hello, {1, 0, 9, 0, 0, 0, 0})).error, frame_error::malformed_payload);
  bytes big_token = {1, 0, 1};
  const std::uint32_t n = max_token_size + 1;
  for (int i = 0; i < 4; ++i) big_token.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  big_token.resize(big_token.size() + n, 'a');
  const decoded d = decode_frame(frame_of(frame_type::hello, big_token));
  EXPECT_EQ(d.error, frame_error::malformed_payload);
  EXPECT_NE(d.detail.find("token"), std::string::npos) << d.detail;
}

TEST(WireFrame, EncodingRefusesWhatCannotBeDecoded) {
  EXPECT_THROW(encode_frame(hello{protocol_version, role::node, std::string(max_token_size + 1, 'a')}),
               std::length_error);
  EXPECT_NO_THROW(encode_frame(hello{protocol_version, role::node, std::string(max_token_size, 'a')}));
}

TEST(WireToken, ConstantTimeEqualIsCorrect) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal(k_token, k_token));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  // Same length, differing at the first, a middle and the last byte.
  for (std::size_t i : {std::size_t{0}, k_token.size() / 2, k_token.size() - 1}) {
    std::string other = k_token;
    other[i] ^= 1;
    EXPECT_FALSE(constant_time_equal(k_token, other)) << i;
    EXPECT_FALSE(constant_time_equal(other, k_token)) << i;
  }
  // Different lengths: prefixes, extensions, a repetition (the cycled comparison must not
  // accept it), and empty against non-empty either way.
  EXPECT_FALSE(constant_time_equal(k_token, k_token.substr(0, 63)));
  EXPECT_FALSE(constant_time_equal(k_token, k_token + "0"));
  EXPECT_FALSE(constant_time_equal("abab", "ab"));
  EXPECT_FALSE(constant_time_equal("ab", "abab"));
  EXPECT_FALSE(constant_time_equal(k_token, ""));
  EXPECT_FALSE(constant_time_equal("", k_token));
  EXPECT_FALSE(constant_time_equal(std::string(1, '\0'), ""));
}

TEST(WireToken, GeneratedTokensAre64HexCharactersAndDiffer) {
  const std::string a = generate_token(), b = generate_token();
  EXPECT_EQ(a.size(), 2 * generated_token_bytes);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

class WireTokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/cmbench-wire-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& content) {
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::filesystem::path dir;
};

TEST_F(WireTokenFile, TokenFileIsReadAndChecked) {
  EXPECT_EQ(read_token_file(write("t", "secret\n")), "secret");
  EXPECT_EQ(read_token_file(write("crlf", "secret\r\n")), "secret");
  EXPECT_THROW(read_token_file(write("empty", "\n")), std::runtime_error);
  EXPECT_THROW(read_token_file(write("big", std::string(max_token_size + 1, 'a'))), std::runtime_error);
  EXPECT_EQ(read_token_file(write("max", std::string(max_token_size, 'a'))).size(), max_token_size);
  try {
    read_token_file((dir / "missing").string());
    ADD_FAILURE() << "a missing token file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
}

TEST_F(WireTokenFile, TokenSourcesInOrder) {
  const std::string file = write("t", "from-file\n");
  resolved_token r = resolve_token(file, "from-env", true);
  EXPECT_EQ(r.token, "from-file");
  EXPECT_EQ(r.origin, token_origin::file);
  r = resolve_token(std::nullopt, "from-env", true);
  EXPECT_EQ(r.token, "from-env");
  EXPECT_EQ(r.origin, token_origin::environment);
  r = resolve_token(std::nullopt, std::nullopt, true);
  EXPECT_EQ(r.origin, token_origin::generated);
  EXPECT_EQ(r.token.size(), 64u);
  EXPECT_THROW(resolve_token(std::nullopt, std::nullopt, false), std::runtime_error);
  EXPECT_THROW(resolve_token(std::nullopt, std::string(), true), std::runtime_error);  // CMBENCH_TOKEN=""
}

// ---- Over real loopback sockets ----

struct connection {
  listener server;
  unique_fd client;
  unique_fd accepted;
};

connection connect_loopback() {
  connection c;
  c.server = listen_tcp("127.0.0.1", 0);
  EXPECT_NE(c.server.port, 0);
  c.client = connect_tcp("127.0.0.1", c.server.port, deadline_in(5s));
  c.accepted = accept_until(c.server.fd.get(), deadline_in(5s));
  EXPECT_TRUE(c.accepted);
  return c;
}

void send_raw(int fd, const bytes& b) { ASSERT_TRUE(write_all(fd, b, deadline_in(5s))); }

// What the client reads back after the server refused it: a refuse frame with the reason.
refuse_reason refusal_seen_by_client(int fd) {
  frame_read r = read_frame(fd, deadline_in(5s));
  EXPECT_TRUE(r.ok()) << r.describe();
  const auto* ref = std::get_if<refuse>(&r.msg);
  EXPECT_NE(ref, nullptr) << r.describe();
  return ref ? ref->reason : refuse_reason{0};
}

TEST(WireSocket, HandshakeThenTasksThenBye) {
  connection c = connect_loopback();
  auto node = std::async(std::launch::async, [&] {
    handshake_result h = serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s);
    if (!h) return h.detail;
    for (;;) {
      frame_read r = read_frame(c.accepted.get(), deadline_in(5s));
      if (!r.ok()) return r.describe();
      if (std::holds_alternative<bye>(r.msg)) return std::string("bye");
      const auto& t = std::get<task_request>(r.msg);
      if (!write_frame(c.accepted.get(), task_result{t.id, t.id * 3 + t.payload.size()}, deadline_in(5s)))
        return std::string("write failed");
    }
  });
  handshake_result h = client_handshake(c.client.get(), k_token, role::coordinator, deadline_in(5s));
  ASSERT_TRUE(h) << h.detail;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    // 1 MiB payloads: more than a socket buffer, so partial writes and reads are exercised.
    ASSERT_TRUE(write_frame(c.client.get(), task_request{id, 0, 0, bytes(1 << 20, 9)}, deadline_in(5s)));
    frame_read r = read_frame(c.client.get(), deadline_in(5s));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.msg, (message{task_result{id, id * 3 + (1 << 20)}}));
  }
  ASSERT_TRUE(write_frame(c.client.get(), bye{}, deadline_in(5s)));
  EXPECT_EQ(node.get(), "bye");
}

TEST(WireSocket, WrongTokenIsRefused) {
  connection c = connect_loopback();
  auto node = std::async(std::launch::async,
                         [&] { return serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s); });
  std::string wrong = k_token;
  wrong.back() = 'X';
  handshake_result h = client_handshake(c.client.get(), wrong, role::coordinator, deadline_in(5s));
  EXPECT_FALSE(h);
  EXPECT_EQ(h.reason, refuse_reason::bad_token) << h.detail;
  handshake_result s = node.get();
  EXPECT_FALSE(s);
  EXPECT_EQ(s.reason, refuse_reason::bad_token);
}

TEST(WireSocket, ShorterTokenIsRefused) {
  connection c = connect_loopback();
  auto node = std::async(std::launch::async,
                         [&] { return serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s); });
  handshake_result h = client_handshake(c.client.get(), k_token.substr(0, 10), role::coordinator, deadline_in(5s));
  EXPECT_EQ(h.reason, refuse_reason::bad_token) << h.detail;
  EXPECT_EQ(node.get().reason, refuse_reason::bad_token);
}

TEST(WireSocket, WrongVersionInHeaderOrHelloIsRefused) {
  {
    connection c = connect_loopback();
    auto node = std::async(std::launch::async,
                           [&] { return serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s); });
    bytes f = encode_frame(hello{protocol_version, role::coordinator, k_token});
    f[4] = 2;  // a version-2 frame
    send_raw(c.client.get(), f);
    EXPECT_EQ(refusal_seen_by_client(c.client.get()), refuse_reason::bad_version);
    handshake_result s = node.get();
    EXPECT_EQ(s.reason, refuse_reason::bad_version);
    EXPECT_NE(s.detail.find("unsupported version: 2"), std::string::npos) << s.detail;
  }
  {
    connection c = connect_loopback();
    auto node = std::async(std::launch::async,
                           [&] { return serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s); });
    send_raw(c.client.get(), encode_frame(hello{2, role::coordinator, k_token}));
    EXPECT_EQ(refusal_seen_by_client(c.client.get()), refuse_reason::bad_version);
    EXPECT_EQ(node.get().reason, refuse_reason::bad_version);
  }
}

// Each hostile first frame, and the reason the server gives for it.
struct hostile_case {
  const char* name;
  bytes sent;
  bool close_after;  // shut the write side after sending (a truncated frame)
  refuse_reason reason;
  const char* detail;  // a piece of the server's reason
};

class WireHostile : public ::testing::TestWithParam<int> {};

std::vector<hostile_case> hostile_cases() {
  const bytes hello_frame = encode_frame(hello{protocol_version, role::coordinator, k_token});
  bytes bad_magic = hello_frame;
  bad_magic[0] = 'G';
  bytes unknown = hello_frame;
  unknown[6] = 99;
  bytes flags = hello_frame;
  flags[7] = 0x80;
  const auto huge = encode_header({protocol_version, frame_type::task_request, 0, 0xffffffffu});
  const auto big_hello = encode_header({protocol_version, frame_type::hello, 0, max_payload});
  bytes partial_payload(hello_frame.begin(), hello_frame.begin() + header_size + 5);
  return {
      {"bad magic", bad_magic, false, refuse_reason::bad_frame, "bad magic"},
      {"unknown type", unknown, false, refuse_reason::bad_frame, "unknown frame type: 99"},
      {"reserved flags", flags, false, refuse_reason::bad_frame, "flags"},
      {"oversized", bytes(huge.begin(), huge.end()), false, refuse_reason::bad_frame, "4294967295 bytes announced"},
      // Within max_payload, but over what a hello can be: refused before a token is read.
      {"oversized hello", bytes(big_hello.begin(), big_hello.end()), false, refuse_reason::bad_frame, "oversized"},
      {"truncated header", bytes(hello_frame.begin(), hello_frame.begin() + 5), true, refuse_reason::bad_frame,
       "truncated header: 5 of 12"},
      {"truncated payload", partial_payload, true, refuse_reason::bad_frame, "truncated payload: 5 of"},
      {"task before hello", encode_frame(task_request{1, 2, 3, {}}), false, refuse_reason::unexpected,
       "expected hello, got task_request"},
      {"wrong role", encode_frame(hello{protocol_version, role::node, k_token}), false, refuse_reason::unexpected,
       "expected a coordinator"},
  };
}

TEST_P(WireHostile, IsRefusedWithItsReasonAndTheServerServesTheNextClient) {
  const hostile_case hc = hostile_cases()[static_cast<std::size_t>(GetParam())];
  SCOPED_TRACE(hc.name);
  connection c = connect_loopback();
  largest_allocation::start();
  auto node = std::async(std::launch::async,
                         [&] { return serve_handshake(c.accepted.get(), k_token, role::coordinator, 5s); });
  const auto start = clock::now();
  send_raw(c.client.get(), hc.sent);
  if (hc.close_after) ::shutdown(c.client.get(), SHUT_WR);
  handshake_result s = node.get();
  const std::size_t largest = largest_allocation::stop();
  EXPECT_FALSE(s);
  EXPECT_EQ(s.reason, hc.reason) << s.detail;
  EXPECT_NE(s.detail.find(hc.detail), std::string::npos) << s.detail;
  // Refused as soon as the bytes say so, never by waiting out the handshake time.
  EXPECT_LT(clock::now() - start, 3s);
  // Nothing near the announced length was allocated.
  EXPECT_LT(largest, std::size_t{64 * 1024}) << "largest allocation " << largest;
  EXPECT_EQ(refusal_seen_by_client(c.client.get()), hc.reason);

  // The same listener serves a good client next.
  unique_fd good = connect_tcp("127.0.0.1", c.server.port, deadline_in(5s));
  unique_fd good_accepted = accept_until(c.server.fd.get(), deadline_in(5s));
  ASSERT_TRUE(good_accepted);
  auto next = std::async(std::launch::async,
                         [&] { return serve_handshake(good_accepted.get(), k_token, role::coordinator, 5s); });
  EXPECT_TRUE(client_handshake(good.get(), k_token, role::coordinator, deadline_in(5s)));
  EXPECT_TRUE(next.get());
}

INSTANTIATE_TEST_SUITE_P(EveryHostileInput, WireHostile,
                         ::testing::Range(0, static_cast<int>(hostile_cases().size())),
                         [](const ::testing::TestParamInfo<int>& param) {
                           std::string n = hostile_cases()[static_cast<std::size_t>(param.param)].name;
                           for (char& ch : n)
                             if (ch == ' ') ch = '_';
                           return n;
                         });

TEST(WireSocket, SilentClientIsRefusedAfterTheHandshakeTime) {
  connection c = connect_loopback();
  const auto start = clock::now();
  handshake_result s = serve_handshake(c.accepted.get(), k_token, role::coordinator, 300ms);
  const auto took = clock::now() - start;
  EXPECT_FALSE(s);
  EXPECT_EQ(s.reason, refuse_reason::timeout) << s.detail;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(refusal_seen_by_client(c.client.get()), refuse_reason::timeout);
}

TEST(WireSocket, ClientThatSendsHalfAHelloAndStallsIsRefusedAfterTheHandshakeTime) {
  connection c = connect_loopback();
  const bytes f = encode_frame(hello{protocol_version, role::coordinator, k_token});
  send_raw(c.client.get(), bytes(f.begin(), f.begin() + 20));
  handshake_result s = serve_handshake(c.accepted.get(), k_token, role::coordinator, 300ms);
  EXPECT_EQ(s.reason, refuse_reason::timeout) << s.detail;
}

TEST(WireSocket, ReadTimesOutAndReportsWhatArrived) {
  connection c = connect_loopback();
  send_raw(c.client.get(), bytes{1, 2, 3});
  bytes buf(10);
  const auto start = clock::now();
  io_result r = read_exact(c.accepted.get(), buf, deadline_in(200ms));
  EXPECT_EQ(r.status, io_status::timeout);
  EXPECT_EQ(r.transferred, 3u);
  EXPECT_GE(clock::now() - start, 200ms);
  EXPECT_NE(r.describe().find("timed out after 3 bytes"), std::string::npos) << r.describe();
}

TEST(WireSocket, PeerClosingIsClosedNotASignal) {
  connection c = connect_loopback();
  c.client.reset();
  bytes buf(4);
  EXPECT_EQ(read_exact(c.accepted.get(), buf, deadline_in(2s)).status, io_status::closed);
  // Writing to a closed peer: EPIPE/ECONNRESET as `closed`, no SIGPIPE (which would end the test).
  io_result w;
  const bytes chunk(64 * 1024, 1);
  for (int i = 0; i < 100 && w.status == io_status::ok; ++i) w = write_all(c.accepted.get(), chunk, deadline_in(2s));
  EXPECT_EQ(w.status, io_status::closed) << w.describe();
}

TEST(WireSocket, ConnectToAClosedPortFailsWithTheAddress) {
  std::uint16_t port;
  {
    listener l = listen_tcp("127.0.0.1", 0);
    port = l.port;
  }  // closed: nothing listens there now
  try {
    connect_tcp("127.0.0.1", port, deadline_in(2s));
    ADD_FAILURE() << "connected to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST(WireSocket, AcceptTimesOutEmpty) {
  listener l = listen_tcp("127.0.0.1", 0);
  EXPECT_FALSE(accept_until(l.fd.get(), deadline_in(100ms)));
}

}  // namespace
