// The wire protocol between a coordinator and its nodes: frames and their payloads.
//
// A frame is a fixed 12-byte header followed by `length` payload bytes:
//
//   offset size field
//        0    4 magic     "CMBW"
//        4    2 version   protocol_version, little-endian u16
//        6    1 type      frame_type
//        7    1 flags     reserved: 0 in version 1 (anything else is refused)
//        8    4 length    payload bytes, little-endian u32, at most max_payload
//
// Every integer in a payload is little-endian and fixed-width; a byte string is a u32 length
// followed by that many bytes. A payload must be consumed exactly (trailing bytes are an error).
// Decoding never reads past the buffer it is given, and the header is checked (magic, version,
// flags, type, length <= max_payload) before anything is allocated for the payload.
//
// This header depends on nothing but the standard library: the models' own sockets use it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cmbench::wire {

using bytes = std::vector<std::uint8_t>;
using byte_view = std::span<const std::uint8_t>;

inline constexpr std::array<std::uint8_t, 4> magic = {'C', 'M', 'B', 'W'};
inline constexpr std::uint16_t protocol_version = 1;
inline constexpr std::size_t header_size = 12;
// The largest payload a frame may carry (16 MiB); a header announcing more is refused before any
// allocation.
inline constexpr std::uint32_t max_payload = 16u << 20;
// The largest token a hello may carry.
inline constexpr std::uint32_t max_token_size = 1024;

enum class frame_type : std::uint8_t {
  hello = 1,         // client -> server: version, role, token
  welcome = 2,       // server -> client: handshake accepted
  refuse = 3,        // server -> client: handshake refused (reason, message); the server closes
  task_request = 4,  // coordinator -> node: id, compute_us, wait_ms, payload
  task_result = 5,   // node -> coordinator: id, value
  error = 6,         // either way: a task (or the connection, id 0) failed, with a message
  bye = 7,           // either way: orderly end of the connection
  control = 8,       // harness <-> node daemon: one JSON object (serve, serving, stop, stopped, exit)
};
inline constexpr std::uint8_t first_frame_type = 1;
inline constexpr std::uint8_t last_frame_type = 8;
std::string_view frame_type_name(frame_type t);

enum class role : std::uint8_t { coordinator = 1, node = 2 };
std::string_view role_name(role r);

enum class refuse_reason : std::uint16_t {
  bad_token = 1,        // the hello's token is not the shared one
  bad_version = 2,      // a protocol version this side does not speak
  bad_frame = 3,        // bad magic, flags, type, truncated, oversized or malformed
  timeout = 4,          // nothing (or not a whole hello) within the handshake time
  unexpected = 5,       // a well-formed frame that is not a hello, or a wrong role
  busy = 6,             // the server cannot take another connection
};
std::string_view refuse_reason_name(refuse_reason r);

// The messages, one per frame type.
struct hello {
  std::uint16_t version = protocol_version;
  role sender = role::coordinator;
  std::string token;
  friend bool operator==(const hello&, const hello&) = default;
};
struct welcome {
  std::uint16_t version = protocol_version;
  role sender = role::node;
  friend bool operator==(const welcome&, const welcome&) = default;
};
struct refuse {
  refuse_reason reason = refuse_reason::bad_frame;
  std::string message;
  friend bool operator==(const refuse&, const refuse&) = default;
};
struct task_request {
  std::uint64_t id = 0;
  std::uint32_t compute_us = 0;
  std::uint32_t wait_ms = 0;
  bytes payload;
  friend bool operator==(const task_request&, const task_request&) = default;
};
struct task_result {
  std::uint64_t id = 0;
  std::uint64_t value = 0;
  friend bool operator==(const task_result&, const task_result&) = default;
};
struct error {
  std::uint64_t id = 0;  // the task that failed, 0 for the connection
  std::string message;
  friend bool operator==(const error&, const error&) = default;
};
struct bye {
  friend bool operator==(const bye&, const bye&) = default;
};
// The node daemon's orders and answers, on its control connection to the harness (never on a
// serving connection): a JSON object as text, so the harness can add fields without a new frame.
struct control {
  std::string json;
  friend bool operator==(const control&, const control&) = default;
};

using message = std::variant<hello, welcome, refuse, task_request, task_result, error, bye, control>;
frame_type type_of(const message& m);

// Why a frame was rejected.
enum class frame_error : std::uint8_t {
  none = 0,
  truncated_header,     // fewer than header_size bytes
  bad_magic,            // not "CMBW"
  unsupported_version,  // header version != protocol_version
  bad_flags,            // reserved flag bits set
  unknown_type,         // type outside hello..bye
  oversized,            // length > max_payload
  truncated_payload,    // fewer payload bytes than the header's length
  malformed_payload,    // the payload does not decode as its type (short field, trailing bytes,
                        // a string longer than the payload, a token over max_token_size, ...)
};
std::string_view frame_error_name(frame_error e);

struct header {
  std::uint16_t version = protocol_version;
  frame_type type = frame_type::bye;
  std::uint8_t flags = 0;
  std::uint32_t length = 0;
};

// The 12 header bytes for a frame of `type` carrying `length` payload bytes.
std::array<std::uint8_t, header_size> encode_header(const header& h);

// Checks the first header_size bytes of `buffer`. On success fills `out` and returns none; the
// payload length is then known to be <= limit (max_payload unless a smaller limit is given).
frame_error decode_header(byte_view buffer, header& out, std::uint32_t limit = max_payload);

// The payload bytes of `m` alone, and the whole frame (header + payload). Throws
// std::length_error if the payload would exceed max_payload (or a token max_token_size).
bytes encode_payload(const message& m);
bytes encode_frame(const message& m);

struct decoded {
  frame_error error = frame_error::none;
  std::string detail;       // what exactly was wrong, for a log line
  message msg;              // valid when error == none
  std::size_t consumed = 0; // bytes of the buffer the frame took (header + payload), when none
  explicit operator bool() const { return error == frame_error::none; }
};

// Decodes the payload of a frame whose header said `type`.
decoded decode_payload(frame_type type, byte_view payload);

// Decodes one whole frame from the start of `buffer` (extra bytes after it are left alone and
// not counted in `consumed`).
decoded decode_frame(byte_view buffer, std::uint32_t limit = max_payload);

}  // namespace cmbench::wire
