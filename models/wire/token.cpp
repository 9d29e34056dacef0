#include "models/wire/token.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "models/wire/frame.hpp"

namespace cmbench::wire {

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Every byte of `a` is compared with a byte of `b` (cycled, or 0 when b is empty), whatever
  // the lengths; the differences are OR-ed together and only read after the loop.
  volatile unsigned char diff = 0;
  const std::size_t bn = b.size();
  std::size_t j = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const unsigned char bb = bn == 0 ? 0 : static_cast<unsigned char>(b[j]);
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i]) ^ bb));
    j = (j + 1 == bn) ? 0 : j + 1;
  }
  const std::size_t length_diff = a.size() ^ b.size();
  return (diff | static_cast<unsigned char>(length_diff != 0)) == 0;
}

std::string generate_token() {
  unsigned char raw[generated_token_bytes];
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  std::size_t got = 0;
  while (got < sizeof raw) {
    const ssize_t n = ::read(fd, raw + got, sizeof raw - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(std::string("cannot read /dev/urandom: ") + (n == 0 ? "end of file" : std::strerror(err)));
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof raw);
  for (unsigned char c : raw) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

void check_token(std::string_view token, std::string_view source) {
  if (token.empty()) throw std::invalid_argument("token from " + std::string(source) + " is empty");
  if (token.size() > max_token_size)
    throw std::invalid_argument("token from " + std::string(source) + " is " + std::to_string(token.size()) +
                                " bytes, over the limit of " + std::to_string(max_token_size));
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read token file " + path + ": " + std::strerror(errno));
  // Read at most one byte past the limit: a huge file is refused without being read whole.
  std::string text(max_token_size + 2, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw std::runtime_error("cannot read token file " + path);
  text.resize(static_cast<std::size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.pop_back();
  try {
    check_token(text, "token file " + path);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  return text;
}

std::string_view token_origin_name(token_origin o) {
  switch (o) {
    case token_origin::file: return "file";
    case token_origin::environment: return "environment";
    case token_origin::generated: return "generated";
  }
  return "unknown";
}

resolved_token resolve_token(const std::optional<std::string>& token_file,
                             const std::optional<std::string>& env_value, bool may_generate) {
  if (token_file) return {read_token_file(*token_file), token_origin::file};
  if (env_value) {
    try {
      check_token(*env_value, token_env);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
    return {*env_value, token_origin::environment};
  }
  if (may_generate) return {generate_token(), token_origin::generated};
  throw std::runtime_error(std::string("no token: give --token-file FILE or set ") + token_env +
                           " (the same on every rank)");
}

}  // namespace cmbench::wire
