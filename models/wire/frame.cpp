#include "models/wire/frame.hpp"

#include <algorithm>
#include <stdexcept>

namespace cmbench::wire {

namespace {

class writer {
 public:
  explicit writer(bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void string(std::string_view s) {
    if (s.size() > max_payload) throw std::length_error("wire: string longer than max_payload");
    u32(static_cast<std::uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void blob(byte_view b) {
    if (b.size() > max_payload) throw std::length_error("wire: bytes longer than max_payload");
    u32(static_cast<std::uint32_t>(b.size()));
    out_.insert(out_.end(), b.begin(), b.end());
  }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  bytes& out_;
};

// Reads fields from a span, never past its end: a short read sets `bad` and yields zeros.
class reader {
 public:
  explicit reader(byte_view in) : in_(in) {}
  bool bad = false;
  std::string what;

  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1, "u8")); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2, "u16")); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4, "u32")); }
  std::uint64_t u64() { return le(8, "u64"); }
  // A u32 length then that many bytes; `limit` bounds the length before it is trusted.
  byte_view raw(std::uint32_t limit, const char* field) {
    const std::uint32_t n = u32();
    if (bad) return {};
    if (n > limit) return fail(field, "length " + std::to_string(n) + " over its limit " + std::to_string(limit)), byte_view{};
    if (n > remaining()) {
      fail(field, "length " + std::to_string(n) + " but only " + std::to_string(remaining()) + " bytes left");
      return {};
    }
    byte_view v = in_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  std::string string(std::uint32_t limit, const char* field) {
    byte_view v = raw(limit, field);
    return std::string(v.begin(), v.end());
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  void expect_end() {
    if (!bad && remaining() != 0) fail("payload", std::to_string(remaining()) + " trailing bytes");
  }
  void fail(const char* field, std::string why) {
    if (!bad) {
      bad = true;
      what = std::string(field) + ": " + why;
    }
  }

 private:
  std::uint64_t le(std::size_t n, const char* field) {
    if (bad) return 0;
    if (remaining() < n) {
      fail(field, "needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left");
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{in_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  byte_view in_;
  std::size_t pos_ = 0;
};

bool valid_role(std::uint8_t r) { return r == 1 || r == 2; }

}  // namespace

std::string_view frame_type_name(frame_type t) {
  switch (t) {
    case frame_type::hello: return "hello";
    case frame_type::welcome: return "welcome";
    case frame_type::refuse: return "refuse";
    case frame_type::task_request: return "task_request";
    case frame_type::task_result: return "task_result";
    case frame_type::error: return "error";
    case frame_type::bye: return "bye";
    case frame_type::control: return "control";
  }
  return "unknown";
}

std::string_view role_name(role r) {
  switch (r) {
    case role::coordinator: return "coordinator";
    case role::node: return "node";
  }
  return "unknown";
}

std::string_view refuse_reason_name(refuse_reason r) {
  switch (r) {
    case refuse_reason::bad_token: return "bad_token";
    case refuse_reason::bad_version: return "bad_version";
    case refuse_reason::bad_frame: return "bad_frame";
    case refuse_reason::timeout: return "timeout";
    case refuse_reason::unexpected: return "unexpected";
    case refuse_reason::busy: return "busy";
  }
  return "unknown";
}

std::string_view frame_error_name(frame_error e) {
  switch (e) {
    case frame_error::none: return "none";
    case frame_error::truncated_header: return "truncated header";
    case frame_error::bad_magic: return "bad magic";
    case frame_error::unsupported_version: return "unsupported version";
    case frame_error::bad_flags: return "reserved flags set";
    case frame_error::unknown_type: return "unknown frame type";
    case frame_error::oversized: return "oversized frame";
    case frame_error::truncated_payload: return "truncated payload";
    case frame_error::malformed_payload: return "malformed payload";
  }
  return "unknown";
}

frame_type type_of(const message& m) {
  return static_cast<frame_type>(m.index() + first_frame_type);
}

std::array<std::uint8_t, header_size> encode_header(const header& h) {
  std::array<std::uint8_t, header_size> out{};
  std::copy(magic.begin(), magic.end(), out.begin());
  out[4] = static_cast<std::uint8_t>(h.version);
  out[5] = static_cast<std::uint8_t>(h.version >> 8);
  out[6] = static_cast<std::uint8_t>(h.type);
  out[7] = h.flags;
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<std::uint8_t>(h.length >> (8 * i));
  return out;
}

frame_error decode_header(byte_view buffer, header& out, std::uint32_t limit) {
  if (buffer.size() < header_size) return frame_error::truncated_header;
  if (!std::equal(magic.begin(), magic.end(), buffer.begin())) return frame_error::bad_magic;
  header h;
  h.version = static_cast<std::uint16_t>(buffer[4] | (buffer[5] << 8));
  if (h.version != protocol_version) return frame_error::unsupported_version;
  h.flags = buffer[7];
  if (h.flags != 0) return frame_error::bad_flags;
  if (buffer[6] < first_frame_type || buffer[6] > last_frame_type) return frame_error::unknown_type;
  h.type = static_cast<frame_type>(buffer[6]);
  h.length = 0;
  for (int i = 0; i < 4; ++i) h.length |= std::uint32_t{buffer[8 + i]} << (8 * i);
  if (h.length > std::min(limit, max_payload)) return frame_error::oversized;
  out = h;
  return frame_error::none;
}

bytes encode_payload(const message& m) {
  bytes out;
  writer w(out);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, hello>) {
          if (v.token.size() > max_token_size) throw std::length_error("wire: token longer than max_token_size");
          w.u16(v.version);
          w.u8(static_cast<std::uint8_t>(v.sender));
          w.string(v.token);
        } else if constexpr (std::is_same_v<T, welcome>) {
          w.u16(v.version);
          w.u8(static_cast<std::uint8_t>(v.sender));
        } else if constexpr (std::is_same_v<T, refuse>) {
          w.u16(static_cast<std::uint16_t>(v.reason));
          w.string(v.message);
        } else if constexpr (std::is_same_v<T, task_request>) {
          w.u64(v.id);
          w.u32(v.compute_us);
          w.u32(v.wait_ms);
          w.blob(v.payload);
        } else if constexpr (std::is_same_v<T, task_result>) {
          w.u64(v.id);
          w.u64(v.value);
        } else if constexpr (std::is_same_v<T, error>) {
          w.u64(v.id);
          w.string(v.message);
        } else if constexpr (std::is_same_v<T, control>) {
          w.string(v.json);
        } else {
          static_assert(std::is_same_v<T, bye>);
        }
      },
      m);
  if (out.size() > max_payload) throw std::length_error("wire: payload longer than max_payload");
  return out;
}

bytes encode_frame(const message& m) {
  bytes payload = encode_payload(m);
  const auto h = encode_header({protocol_version, type_of(m), 0, static_cast<std::uint32_t>(payload.size())});
  bytes out(header_size + payload.size());
  std::copy(h.begin(), h.end(), out.begin());
  std::copy(payload.begin(), payload.end(), out.begin() + header_size);
  return out;
}

decoded decode_payload(frame_type type, byte_view payload) {
  decoded d;
  reader r(payload);
  switch (type) {
    case frame_type::hello: {
      hello v;
      v.version = r.u16();
      const std::uint8_t sender = r.u8();
      if (!r.bad && !valid_role(sender)) r.fail("role", "unknown role " + std::to_string(sender));
      v.sender = static_cast<role>(sender);
      v.token = r.string(max_token_size, "token");
      d.msg = std::move(v);
      break;
    }
    case frame_type::welcome: {
      welcome v;
      v.version = r.u16();
      const std::uint8_t sender = r.u8();
      if (!r.bad && !valid_role(sender)) r.fail("role", "unknown role " + std::to_string(sender));
      v.sender = static_cast<role>(sender);
      d.msg = v;
      break;
    }
    case frame_type::refuse: {
      refuse v;
      v.reason = static_cast<refuse_reason>(r.u16());  // an unknown reason is kept: newer peers may add some
      v.message = r.string(max_payload, "message");
      d.msg = std::move(v);
      break;
    }
    case frame_type::task_request: {
      task_request v;
      v.id = r.u64();
      v.compute_us = r.u32();
      v.wait_ms = r.u32();
      byte_view p = r.raw(max_payload, "payload");
      v.payload.assign(p.begin(), p.end());
      d.msg = std::move(v);
      break;
    }
    case frame_type::task_result: {
      task_result v;
      v.id = r.u64();
      v.value = r.u64();
      d.msg = v;
      break;
    }
    case frame_type::error: {
      error v;
      v.id = r.u64();
      v.message = r.string(max_payload, "message");
      d.msg = std::move(v);
      break;
    }
    case frame_type::bye:
      d.msg = bye{};
      break;
    case frame_type::control: {
      control v;
      v.json = r.string(max_payload, "json");
      d.msg = std::move(v);
      break;
    }
    default:
      d.error = frame_error::unknown_type;
      d.detail = "type " + std::to_string(static_cast<unsigned>(type));
      return d;
  }
  r.expect_end();
  if (r.bad) {
    d.error = frame_error::malformed_payload;
    d.detail = std::string(frame_type_name(type)) + " " + r.what;
    d.msg = bye{};
  }
  return d;
}

decoded decode_frame(byte_view buffer, std::uint32_t limit) {
  header h;
  if (const frame_error e = decode_header(buffer, h, limit); e != frame_error::none) {
    decoded d;
    d.error = e;
    d.detail = std::string(frame_error_name(e));
    if (e == frame_error::truncated_header)
      d.detail += ": " + std::to_string(buffer.size()) + " of " + std::to_string(header_size) + " bytes";
    return d;
  }
  if (buffer.size() - header_size < h.length) {
    decoded d;
    d.error = frame_error::truncated_payload;
    d.detail = "truncated payload: " + std::to_string(buffer.size() - header_size) + " of " +
               std::to_string(h.length) + " bytes";
    return d;
  }
  decoded d = decode_payload(h.type, buffer.subspan(header_size, h.length));
  if (d) d.consumed = header_size + h.length;
  return d;
}

}  // namespace cmbench::wire
