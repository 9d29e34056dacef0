// The shared token a hello carries: where it comes from, and how it is compared.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cmbench::wire {

// The environment variable a token may come from.
inline constexpr const char* token_env = "CMBENCH_TOKEN";
// Bytes of randomness in a generated token (hex-encoded: twice as many characters).
inline constexpr std::size_t generated_token_bytes = 32;

// True when a and b are the same bytes. Its time depends only on a.size() (pass the secret,
// the expected token, as `a`): it never exits early on a differing byte, and a length mismatch
// is folded into the result after the same loop, so neither where two tokens differ nor the
// length of the given one shows in the time it takes.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// 32 bytes from /dev/urandom as 64 lowercase hex characters. Throws std::runtime_error if
// /dev/urandom cannot be read in full.
std::string generate_token();

// The file's content with trailing whitespace (a final newline) removed. Throws
// std::runtime_error naming the path when it cannot be read, is empty, or is longer than
// max_token_size (models/wire/frame.hpp).
std::string read_token_file(const std::string& path);

// Checks a token from anywhere (empty, too long): throws std::invalid_argument naming `source`.
void check_token(std::string_view token, std::string_view source);

enum class token_origin { file, environment, generated };
std::string_view token_origin_name(token_origin o);

struct resolved_token {
  std::string token;
  token_origin origin = token_origin::generated;
};

// The token for a run, in order: `token_file` (--token-file) when given, then `env_value`
// (CMBENCH_TOKEN, as read by the caller) when set, else a generated one when `may_generate`
// (embedded runs, where the coordinator starts its own nodes and passes them the token).
// Throws std::runtime_error when there is none and it may not generate one, or a source is bad.
resolved_token resolve_token(const std::optional<std::string>& token_file,
                             const std::optional<std::string>& env_value, bool may_generate);

}  // namespace cmbench::wire
