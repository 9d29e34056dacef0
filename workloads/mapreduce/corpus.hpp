// mapreduce's input: a deterministic text generated from a seed, one part per node, and what a
// word's count adds to the checksum. The nodes and the serial reference both build it from here.
//
// The vocabulary is V words, word i spelled by its index in base 26 on a fixed width (so no two
// words are spelled alike) followed by 0 to 6 letters mixed from i; the text draws words from a
// Zipf distribution (exponent 1: word i has weight 1 / (i + 1)) and separates them by one space.
// Node n's part is drawn from its own stream (the seed mixed with n) until it holds the asked
// bytes, so it depends on the seed and n alone.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "workloads/kernels.hpp"

namespace cmbench::mapreduce {

// A word's identity from the map on: a 64-bit hash of its letters. Two words of one corpus with
// the same hash would count as one on the nodes but not in the reference (which counts by text):
// the checksum would show it.
inline std::uint64_t word_hash(const char* word, std::size_t length) {
  std::uint64_t h = kernels::mix64(length * 0x9e3779b97f4a7c15ull);
  for (std::size_t i = 0; i < length; i += 8) {
    std::uint64_t part = 0;
    std::memcpy(&part, word + i, std::min<std::size_t>(8, length - i));
    h = kernels::mix64(h ^ part);
  }
  return h;
}

// What a word counted `count` times adds to a checksum (a wrapping sum): a word counted twice, or
// missed, or one occurrence too many or too few changes it.
inline std::uint64_t count_value(std::uint64_t hash, std::uint64_t count) {
  return kernels::mix64(hash + count * 0xc2b2ae3d27d4eb4full);
}

inline constexpr std::size_t max_word_letters = 6 + 5;  // a suffix of at most 6 on at most 5 letters (V <= 26^5)

class vocabulary {
 public:
  explicit vocabulary(std::uint32_t words) : cdf_(words), offsets_(words + std::size_t{1}) {
    std::uint32_t width = 1;
    for (std::uint64_t span = 26; span < words; span *= 26) ++width;
    double total = 0;
    for (std::uint32_t i = 0; i < words; ++i) {
      total += 1.0 / (static_cast<double>(i) + 1.0);
      cdf_[i] = total;
      offsets_[i] = static_cast<std::uint32_t>(letters_.size());
      std::uint64_t rest = i;
      for (std::uint32_t d = 0; d < width; ++d, rest /= 26) letters_.push_back(static_cast<char>('a' + rest % 26));
      const std::uint64_t mixed = kernels::mix64(i ^ 0x5bd1e995u);
      for (std::uint64_t s = 0; s < mixed % 7; ++s) letters_.push_back(static_cast<char>('a' + (mixed >> (8 + 5 * s)) % 26));
    }
    offsets_[words] = static_cast<std::uint32_t>(letters_.size());
    // Where each of `guides` equal slices of [0, total) starts in the table: a draw searches its
    // slice only (a whole search of a million-word table per word would dominate the set-up).
    guide_.resize(guides + 1);
    for (std::size_t g = 0; g <= guides; ++g) {
      const double x = total * static_cast<double>(g) / guides;
      guide_[g] = static_cast<std::uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), x) - cdf_.begin());
    }
  }

  // A word drawn from the Zipf distribution by a uniform 64-bit number: the first word whose
  // cumulative weight exceeds it (found in its guide slice, checked, else by a whole search).
  std::uint32_t draw(std::uint64_t random) const {
    const double u = static_cast<double>(random >> 11) * 0x1.0p-53 * cdf_.back();
    const auto g = std::min<std::size_t>(guides - 1, static_cast<std::size_t>(u / cdf_.back() * guides));
    const auto first = cdf_.begin() + guide_[g];
    const auto last = cdf_.begin() + std::min<std::size_t>(cdf_.size(), guide_[g + 1] + std::size_t{1});
    auto at = std::upper_bound(first, last, u);
    const bool found = at != last && (at == cdf_.begin() || *(at - 1) <= u);
    if (!found) at = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<std::uint32_t>(std::min<std::size_t>(at - cdf_.begin(), cdf_.size() - 1));
  }
  const char* spelling(std::uint32_t word) const { return letters_.data() + offsets_[word]; }
  std::size_t length(std::uint32_t word) const { return offsets_[word + 1] - offsets_[word]; }

 private:
  static constexpr std::size_t guides = 1 << 16;
  std::vector<double> cdf_;
  std::vector<std::uint32_t> guide_;
  std::vector<std::uint32_t> offsets_;
  std::string letters_;
};

// Node `node`'s part of the corpus: at least `bytes` bytes of words separated by single spaces
// (the last word ends it). `words` is how many it holds.
struct text_part {
  std::string text;
  std::uint64_t words = 0;
};

inline text_part generate_part(const vocabulary& vocab, std::uint64_t seed, std::uint32_t node, std::uint64_t bytes) {
  text_part part;
  part.text.reserve(bytes + max_word_letters + 1);
  std::uint64_t state = kernels::mix64(seed * 0x9e3779b97f4a7c15ull ^ (std::uint64_t{node} + 1));
  while (part.text.size() < bytes) {
    if (!part.text.empty()) part.text.push_back(' ');
    state += 0x9e3779b97f4a7c15ull;
    const std::uint32_t word = vocab.draw(kernels::mix64(state));
    part.text.append(vocab.spelling(word), vocab.length(word));
    ++part.words;
  }
  return part;
}

}  // namespace cmbench::mapreduce
