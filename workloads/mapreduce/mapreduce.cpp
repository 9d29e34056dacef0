// mapreduce: word count across W nodes. Each node holds its part of a deterministic corpus
// (corpus.hpp); told to go, it maps its part on model M (a bulk job, one task per chunk: the
// chunk's words hashed, sorted and counted), shuffles the counts (a scatter job to the W nodes,
// one task per partition of the words: task p goes to node p % W, the node that reduces it, which
// stores the block as its serving instance receives it), waits for the blocks of its partitions
// from every node, then reduces them (a bulk job, one task per partition it owns). The checksum
// over every word's total count is checked against the serial reference; every node checks the
// phases it can (every block sent once, received once, acknowledged with its own checksum).
//
// The coordinator (the trial) is common code for every model: it tells each node to go on its
// control port and gathers what it did (workloads/node_control.hpp). Each node's serving process
// holds two instances of the row's model: one serving, one working.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "models/shared_region.hpp"
#include "models/wire/frame.hpp"
#include "workloads/mapreduce/corpus.hpp"
#include "workloads/node_control.hpp"
#include "workloads/remote_setup.hpp"
#include "workloads/workload.hpp"

namespace cmbench {
namespace {

using clock = std::chrono::steady_clock;
using mapreduce::count_value;
using mapreduce::word_hash;

constexpr std::uint32_t block_magic = 0x4b4c424du;  // "MBLK"
constexpr std::uint32_t block_header_bytes = 16;    // magic, sender, partition, entries: u32 each
constexpr std::uint32_t request_overhead = 20;      // a task_request's own fields before its payload

struct shape {
  std::uint32_t nodes = 1;
  std::uint64_t bytes_per_node = 0;
  std::uint32_t vocabulary = 1;
  std::uint64_t chunk_bytes = 0;
  std::uint32_t reduce_tasks = 1;  // R: partitions per node
  std::uint32_t in_flight = 1;
  std::uint64_t seed = 0;
  std::uint32_t partitions() const { return nodes * reduce_tasks; }
};

shape shape_of(const param_values& p) {
  shape s;
  s.nodes = static_cast<std::uint32_t>(p.at("nodes"));
  s.bytes_per_node = static_cast<std::uint64_t>(p.at("mb_per_node")) << 20;
  s.vocabulary = static_cast<std::uint32_t>(p.at("vocabulary"));
  s.chunk_bytes = static_cast<std::uint64_t>(p.at("chunk_kb")) << 10;
  s.reduce_tasks = static_cast<std::uint32_t>(p.at("reduce_tasks"));
  s.in_flight = static_cast<std::uint32_t>(p.at("in_flight"));
  s.seed = static_cast<std::uint64_t>(p.at("seed"));
  return s;
}

// The partition of a word: its hash's top bits scaled to [0, partitions) (so a run sorted by hash
// is grouped by partition, in order). Partition p is reduced by node p % W as its task p / W.
std::uint32_t partition_of(std::uint64_t hash, std::uint32_t partitions) {
  return static_cast<std::uint32_t>(((hash >> 32) * partitions) >> 32);
}

// A word counted in a map or reduce task: its hash, then where it is (a map entry's offset in the
// text) and its count.
struct map_entry {
  std::uint64_t hash;
  std::uint32_t offset;
  std::uint32_t count;
};
struct reduce_entry {
  std::uint64_t hash;
  std::uint64_t count;
};

// One chunk's counts for one partition: a run of its sorted entries.
struct run_info {
  std::uint32_t begin, end;  // entries [begin, end) of the chunk's
  std::uint64_t bytes;       // serialized: per entry a length byte, the letters, a u32 count
  std::uint64_t checksum;    // count_value summed over the run
};

// A block a node received (one per sender and partition it reduces), stored in its arena.
struct block_slot {
  std::atomic<std::uint32_t> arrivals{0};
  std::uint32_t entries = 0;
  std::uint64_t offset = 0;  // in the arena
  std::uint64_t bytes = 0;
};

struct reduce_output {
  std::uint64_t checksum = 0;
  std::uint64_t distinct = 0;
  std::uint64_t words = 0;
};

// A test hook (CMBENCH_MAPREDUCE_FAULT=drop:NODE or double:NODE, NODE from 1): that node's first
// reduce task leaves out, or merges twice, the first block it received, as a node losing or
// double-counting data would. The run must fail.
enum class fault : std::uint32_t { none, drop, twice };

fault fault_for(std::size_t index) {
  const char* text = std::getenv("CMBENCH_MAPREDUCE_FAULT");
  if (text == nullptr) return fault::none;
  const std::string t = text;
  const auto colon = t.find(':');
  if (colon == std::string::npos || std::strtoul(t.c_str() + colon + 1, nullptr, 10) != index + 1) return fault::none;
  return t.substr(0, colon) == "drop" ? fault::drop : t.substr(0, colon) == "double" ? fault::twice : fault::none;
}

// What the node's units share (MAP_SHARED, made before either model instance): what a process
// of the serving instance received, and what a process of the working instance mapped, reduced
// and sent. Arrays follow it in the same region.
struct node_state {
  std::atomic<std::uint32_t> blocks_received{0};  // also the futex word the node waits on
  std::atomic<std::uint64_t> arena_used{0};
  std::atomic<std::uint32_t> failed{0};  // a received block was bad: the first one's reason in `failure`
  char failure[256] = {};
  remote_counters client;  // the shuffle's calls, counted by the working instance
  fault injected = fault::none;
  // The jobs' context: a model may insist that it lie in memory its processes share (processes/
  // pool does), so the jobs get this state, which points back at the node's part (made before
  // the models, so valid in every process of theirs).
  const class node_part* part = nullptr;
};

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0);
}

std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void put_u32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }

// A block's entries, each checked to lie inside it: calls f(letters, length, count) per entry.
// False when the block is malformed.
template <class F>
bool for_each_entry(const std::uint8_t* at, std::uint64_t bytes, std::uint32_t entries, F&& f) {
  const std::uint8_t* end = at + bytes;
  for (std::uint32_t e = 0; e < entries; ++e) {
    if (end - at < 1 || end - at < 1 + at[0] + 4) return false;
    const std::uint32_t length = at[0];
    f(reinterpret_cast<const char*>(at + 1), length, get_u32(at + 1 + length));
    at += 1 + length + 4;
  }
  return at == end;
}

class node_part;
const node_part& part_of(const void* context) { return *static_cast<const node_state*>(context)->part; }

class node_part final : public node_work {
 public:
  node_part(const param_values& p, std::size_t index) : shape_(shape_of(p)), index_(static_cast<std::uint32_t>(index)) {
    if (index_ >= shape_.nodes) throw std::invalid_argument("mapreduce: node index out of range");
    const mapreduce::vocabulary vocab(shape_.vocabulary);
    mapreduce::text_part part = mapreduce::generate_part(vocab, shape_.seed, index_, shape_.bytes_per_node);
    text_ = std::move(part.text);
    words_ = part.words;
    // Chunks start at the first word at or after each multiple of chunk_bytes; their words are
    // counted now, so each map task's entries have their place.
    chunk_start_.push_back(0);
    for (std::uint64_t at = shape_.chunk_bytes; at < text_.size(); at += shape_.chunk_bytes) {
      std::uint64_t start = std::max<std::uint64_t>(at, chunk_start_.back() + 1);
      while (start < text_.size() && text_[start - 1] != ' ') ++start;
      if (start >= text_.size()) break;
      chunk_start_.push_back(start);
    }
    chunk_start_.push_back(text_.size());
    const std::size_t chunks = chunk_start_.size() - 1;
    entry_first_.push_back(0);
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::uint64_t words = 1 + std::count(text_.begin() + static_cast<std::ptrdiff_t>(chunk_start_[c]),
                                                 text_.begin() + static_cast<std::ptrdiff_t>(chunk_start_[c + 1]), ' ') -
                                  (c + 1 < chunks ? 1 : 0);
      entry_first_.push_back(entry_first_.back() + words);
    }
    if (entry_first_.back() != words_) throw std::logic_error("mapreduce: chunks do not cover the node's words");

    // Shared: the state, the runs of every chunk and partition, the received blocks' slots, the
    // reduce tasks' places and outputs; then the map entries; then the arena the blocks received
    // are stored in and the reduce entries (reserved for the worst case, touched as used).
    const std::uint32_t partitions = shape_.partitions();
    std::size_t at = (sizeof(node_state) + 63) / 64 * 64;
    runs_at_ = at;
    at += chunks * partitions * sizeof(run_info);
    slots_at_ = at = (at + 63) / 64 * 64;
    at += std::size_t{shape_.nodes} * shape_.reduce_tasks * sizeof(block_slot);
    places_at_ = at = (at + 63) / 64 * 64;
    at += (shape_.reduce_tasks + std::size_t{1}) * sizeof(std::uint64_t);
    outputs_at_ = at = (at + 63) / 64 * 64;
    at += shape_.reduce_tasks * sizeof(reduce_output);
    sends_at_ = at = (at + 63) / 64 * 64;
    at += partitions * sizeof(std::atomic<std::uint32_t>);
    state_region_ = shared_region((at + 4095) / 4096 * 4096);
    state_ = new (state_region_.data()) node_state{};
    state_->injected = fault_for(index_);
    state_->part = this;
    for (std::uint32_t s = 0; s < shape_.nodes * shape_.reduce_tasks; ++s) new (&slots()[s]) block_slot{};
    for (std::uint32_t q = 0; q < partitions; ++q) new (&sends()[q]) std::atomic<std::uint32_t>{0};
    entries_region_ = shared_region(std::max<std::size_t>(1, words_ * sizeof(map_entry)));
    // A serialized entry takes at most 3 times the letters and space of its occurrence in the text
    // (1 + length + 4 against length + 1, length >= 1): no node sends more than that, with headers.
    const std::uint64_t most_text = shape_.bytes_per_node + mapreduce::max_word_letters + 1;
    arena_bytes_ = shape_.nodes * (3 * most_text + std::uint64_t{block_header_bytes} * partitions);
    arena_region_ = shared_region(arena_bytes_, false);
    scratch_region_ = shared_region(arena_bytes_ / 6 * sizeof(reduce_entry) + sizeof(reduce_entry), false);
  }

  // A block from a peer, in whatever unit or process of the serving instance: checked, stored in
  // the arena, counted; the answer is its checksum, which the sender checks against its own.
  std::uint64_t task_value(std::uint64_t task, std::uint32_t /*compute_us*/, const std::uint8_t* payload,
                           std::uint32_t bytes) override {
    std::uint64_t checksum = 0;
    const std::string bad = receive(task, payload, bytes, checksum);
    if (!bad.empty() && state_->failed.exchange(1) == 0) {
      std::snprintf(state_->failure, sizeof state_->failure, "%s", bad.c_str());
    }
    state_->blocks_received.fetch_add(1, std::memory_order_release);
    futex(&state_->blocks_received, FUTEX_WAKE, 1, nullptr);
    return checksum;
  }

  node_done run(model_instance& worker, const node_go& go) override {
    node_done done;
    if (go.peers.size() != shape_.nodes) {
      done.error = "told of " + std::to_string(go.peers.size()) + " peers, the run has " + std::to_string(shape_.nodes);
      return done;
    }
    const auto start = clock::now();
    bulk_job map;
    map.tasks = chunk_start_.size() - 1;
    map.compute = [](const void* c, std::uint64_t task, std::uint32_t) {
      return part_of(c).map_chunk(task);
    };
    map.context = state_;
    const std::uint64_t mapped = worker.run_bulk(map);
    const auto mapped_at = clock::now();
    if (mapped != words_) {
      done.error = "the map counted " + std::to_string(mapped) + " words of the node's " + std::to_string(words_);
      return done;
    }

    scatter_job shuffle;
    shuffle.tasks = shape_.partitions();
    shuffle.in_flight = shape_.in_flight;
    shuffle.nodes = go.peers;
    shuffle.token = go.token;
    shuffle.deadline = go.deadline;
    shuffle.counters = &state_->client;
    shuffle.payload_of = [](const void* c, std::uint64_t task, std::uint8_t* out, std::uint32_t bytes) {
      part_of(c).write_block(static_cast<std::uint32_t>(task), out, bytes);
    };
    shuffle.payload_size_of = [](const void* c, std::uint64_t task) {
      return static_cast<std::uint32_t>(part_of(c).block_bytes(static_cast<std::uint32_t>(task)));
    };
    shuffle.call_started = [](const void* c, std::uint64_t task) {
      part_of(c).sends()[task].fetch_add(1, std::memory_order_relaxed);
    };
    shuffle.call_finished = [](const void*, std::uint64_t, std::uint64_t) {};
    shuffle.context = state_;
    std::uint64_t sent_bytes = 0, sent_checksum = 0;
    for (std::uint32_t p = 0; p < shape_.partitions(); ++p) {
      sent_bytes += block_bytes(p);
      if (block_bytes(p) > wire::max_payload - request_overhead) {
        done.error = "partition " + std::to_string(p) + "'s block is " + std::to_string(block_bytes(p)) +
                     " bytes, more than a frame carries: raise reduce_tasks";
        return done;
      }
      for (std::size_t c = 0; c + 1 < chunk_start_.size(); ++c) sent_checksum += runs()[c * shape_.partitions() + p].checksum;
    }
    const std::uint64_t acknowledged = worker.run_scatter(shuffle);
    for (std::uint32_t p = 0; p < shape_.partitions(); ++p) {
      if (const std::uint32_t n = sends()[p].load(); n != 1) {
        done.error = "partition " + std::to_string(p) + "'s block was sent " + std::to_string(n) + " times";
        return done;
      }
    }
    if (acknowledged != sent_checksum) {
      done.error = "the nodes acknowledged blocks whose checksums differ from those sent";
      return done;
    }
    const std::uint32_t expected = shape_.nodes * shape_.reduce_tasks;
    if (const std::string waited = wait_for_blocks(expected, go.deadline); !waited.empty()) {
      done.error = waited;
      return done;
    }
    const auto shuffled_at = clock::now();

    std::uint64_t place = 0;  // each reduce task's entries, after the previous task's
    for (std::uint32_t r = 0; r < shape_.reduce_tasks; ++r) {
      places()[r] = place;
      for (std::uint32_t s = 0; s < shape_.nodes; ++s) place += slots()[s * shape_.reduce_tasks + r].entries;
      if (r == 0 && state_->injected == fault::twice) place += slots()[0].entries;  // the test hook's second merge
    }
    bulk_job reduce;
    reduce.tasks = shape_.reduce_tasks;
    reduce.compute = [](const void* c, std::uint64_t task, std::uint32_t) {
      return part_of(c).reduce_range(static_cast<std::uint32_t>(task));
    };
    reduce.context = state_;
    done.checksum = worker.run_bulk(reduce);
    const auto reduced_at = clock::now();

    std::uint64_t distinct = 0, reduced = 0;
    for (std::uint32_t r = 0; r < shape_.reduce_tasks; ++r) {
      distinct += outputs()[r].distinct;
      reduced += outputs()[r].words;
    }
    auto ns = [](clock::duration d) { return static_cast<double>(std::chrono::nanoseconds(d).count()); };
    done.figures = {{"map_ns", ns(mapped_at - start)},
                    {"shuffle_ns", ns(shuffled_at - mapped_at)},
                    {"reduce_ns", ns(reduced_at - shuffled_at)},
                    {"words", static_cast<double>(mapped)},
                    {"reduced_words", static_cast<double>(reduced)},
                    {"distinct_words", static_cast<double>(distinct)},
                    {"block_bytes", static_cast<double>(sent_bytes)},
                    {"received_bytes", static_cast<double>(state_->arena_used.load())},
                    {"connections", static_cast<double>(state_->client.connections.load())},
                    {"bytes_sent", static_cast<double>(state_->client.bytes_sent.load())},
                    {"bytes_received", static_cast<double>(state_->client.bytes_received.load())}};
    return done;
  }

 private:
  run_info* runs() const { return state_region_.at<run_info>(runs_at_); }
  block_slot* slots() const { return state_region_.at<block_slot>(slots_at_); }
  std::uint64_t* places() const { return state_region_.at<std::uint64_t>(places_at_); }
  reduce_output* outputs() const { return state_region_.at<reduce_output>(outputs_at_); }
  std::atomic<std::uint32_t>* sends() const { return state_region_.at<std::atomic<std::uint32_t>>(sends_at_); }

  std::size_t word_length(std::uint32_t offset) const {
    std::size_t n = 0;
    while (offset + n < text_.size() && text_[offset + n] != ' ') ++n;
    return n;
  }

  // Map task c: the chunk's words hashed, sorted by hash (so grouped by partition) and counted,
  // in place; each partition's run noted. Returns the words counted.
  std::uint64_t map_chunk(std::uint64_t c) const {
    map_entry* entries = entries_region_.at<map_entry>() + entry_first_[c];
    std::uint64_t n = 0;
    for (std::uint64_t at = chunk_start_[c]; at < chunk_start_[c + 1];) {
      std::uint64_t end = at;
      while (end < chunk_start_[c + 1] && text_[end] != ' ') ++end;
      entries[n++] = {word_hash(text_.data() + at, end - at), static_cast<std::uint32_t>(at), 1};
      at = end + 1;
    }
    std::sort(entries, entries + n, [](const map_entry& a, const map_entry& b) { return a.hash < b.hash; });
    std::uint64_t distinct = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (distinct > 0 && entries[distinct - 1].hash == entries[i].hash) {
        entries[distinct - 1].count += 1;
      } else {
        entries[distinct++] = entries[i];
      }
    }
    const std::uint32_t partitions = shape_.partitions();
    run_info* runs = this->runs() + c * partitions;
    std::uint64_t i = 0, words = 0;
    for (std::uint32_t p = 0; p < partitions; ++p) {
      run_info run{static_cast<std::uint32_t>(i), 0, 0, 0};
      for (; i < distinct && partition_of(entries[i].hash, partitions) == p; ++i) {
        run.bytes += 1 + word_length(entries[i].offset) + 4;
        run.checksum += count_value(entries[i].hash, entries[i].count);
        words += entries[i].count;
      }
      run.end = static_cast<std::uint32_t>(i);
      runs[p] = run;
    }
    return words;
  }

  std::uint64_t block_bytes(std::uint32_t p) const {
    std::uint64_t bytes = block_header_bytes;
    for (std::size_t c = 0; c + 1 < chunk_start_.size(); ++c) bytes += runs()[c * shape_.partitions() + p].bytes;
    return bytes;
  }

  // Partition p's block: the header, then every chunk's run for p (a word counted in several
  // chunks is in several runs: the reducer adds them up).
  void write_block(std::uint32_t p, std::uint8_t* out, std::uint32_t bytes) const {
    std::uint32_t entries = 0;
    std::uint8_t* at = out + block_header_bytes;
    const map_entry* all = entries_region_.at<map_entry>();
    for (std::size_t c = 0; c + 1 < chunk_start_.size(); ++c) {
      const run_info& run = runs()[c * shape_.partitions() + p];
      const map_entry* chunk = all + entry_first_[c];
      for (std::uint32_t e = run.begin; e < run.end; ++e) {
        const std::size_t length = word_length(chunk[e].offset);
        *at = static_cast<std::uint8_t>(length);
        std::memcpy(at + 1, text_.data() + chunk[e].offset, length);
        put_u32(at + 1 + length, chunk[e].count);
        at += 1 + length + 4;
        ++entries;
      }
    }
    put_u32(out, block_magic);
    put_u32(out + 4, index_);
    put_u32(out + 8, p);
    put_u32(out + 12, entries);
    if (at != out + bytes) std::abort();  // block_bytes and write_block disagree: a bug, not an input
  }

  // Checks and stores one received block; its checksum in `checksum`, or why it is bad.
  std::string receive(std::uint64_t task, const std::uint8_t* payload, std::uint32_t bytes,
                      std::uint64_t& checksum) const {
    if (bytes < block_header_bytes || get_u32(payload) != block_magic) return "a block without its header";
    const std::uint32_t sender = get_u32(payload + 4), p = get_u32(payload + 8), entries = get_u32(payload + 12);
    if (p != task || p >= shape_.partitions() || p % shape_.nodes != index_ || sender >= shape_.nodes) {
      return "block of partition " + std::to_string(p) + " from node " + std::to_string(sender + 1) + " as task " +
             std::to_string(task) + " reached node " + std::to_string(index_ + 1);
    }
    if (!for_each_entry(payload + block_header_bytes, bytes - block_header_bytes, entries,
                        [&](const char* letters, std::size_t length, std::uint32_t count) {
                          checksum += count_value(word_hash(letters, length), count);
                        })) {
      return "a malformed block of partition " + std::to_string(p) + " from node " + std::to_string(sender + 1);
    }
    block_slot& slot = slots()[sender * shape_.reduce_tasks + p / shape_.nodes];
    if (slot.arrivals.fetch_add(1) != 0) {
      return "partition " + std::to_string(p) + "'s block from node " + std::to_string(sender + 1) +
             " arrived more than once";
    }
    const std::uint64_t offset = state_->arena_used.fetch_add(bytes);
    if (offset + bytes > arena_bytes_) return "the blocks received outgrew the arena reserved for them";
    std::memcpy(arena_region_.at<std::uint8_t>(offset), payload, bytes);
    slot.offset = offset;
    slot.bytes = bytes;
    slot.entries = entries;
    return {};
  }

  // Until every block expected has arrived (or the deadline): "" or why not.
  std::string wait_for_blocks(std::uint32_t expected, clock::time_point deadline) const {
    for (;;) {
      const std::uint32_t seen = state_->blocks_received.load(std::memory_order_acquire);
      if (state_->failed.load() != 0) return state_->failure;
      if (seen >= expected) break;
      const auto left = deadline - clock::now();
      if (left <= clock::duration::zero()) {
        return "received " + std::to_string(seen) + " of its " + std::to_string(expected) +
               " blocks before the trial's deadline";
      }
      const auto wait = std::min<clock::duration>(left, std::chrono::milliseconds(100));
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      const timespec t{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      futex(&state_->blocks_received, FUTEX_WAIT, seen, &t);
    }
    if (state_->blocks_received.load() != expected) {
      return "received " + std::to_string(state_->blocks_received.load()) + " blocks, " + std::to_string(expected) +
             " expected";
    }
    for (std::uint32_t s = 0; s < expected; ++s) {
      if (slots()[s].arrivals.load() != 1) {
        return "partition " + std::to_string((s % shape_.reduce_tasks) * shape_.nodes + index_) + "'s block from node " +
               std::to_string(s / shape_.reduce_tasks + 1) + " arrived " + std::to_string(slots()[s].arrivals.load()) +
               " times";
      }
    }
    return {};
  }

  // Reduce task r (partition r * W + this node): every node's block for it, summed per word.
  std::uint64_t reduce_range(std::uint32_t r) const {
    reduce_entry* entries = scratch_region_.at<reduce_entry>() + places()[r];
    std::uint64_t n = 0;
    for (std::uint32_t s = 0; s < shape_.nodes; ++s) {
      const block_slot& slot = slots()[s * shape_.reduce_tasks + r];
      const bool first = s == 0 && r == 0;
      if (first && state_->injected == fault::drop) continue;
      const int times = first && state_->injected == fault::twice ? 2 : 1;
      for (int k = 0; k < times; ++k) {
        const std::uint64_t before = n;
        (void)for_each_entry(arena_region_.at<std::uint8_t>(slot.offset) + block_header_bytes,
                             slot.bytes - block_header_bytes, slot.entries,
                             [&](const char* letters, std::size_t length, std::uint32_t count) {
                               if (k == 0) entries[n++] = {word_hash(letters, length), count};
                             });
        if (k == 1) {  // the fault's second merge: the same entries again (in the space after the task's own)
          for (std::uint64_t e = before - slot.entries; e < before; ++e) entries[n++] = entries[e];
        }
      }
    }
    std::sort(entries, entries + n, [](const reduce_entry& a, const reduce_entry& b) { return a.hash < b.hash; });
    reduce_output out;
    for (std::uint64_t i = 0; i < n;) {
      std::uint64_t count = 0;
      const std::uint64_t hash = entries[i].hash;
      for (; i < n && entries[i].hash == hash; ++i) count += entries[i].count;
      out.checksum += count_value(hash, count);
      ++out.distinct;
      out.words += count;
    }
    outputs()[r] = out;
    return out.checksum;
  }

  shape shape_;
  std::uint32_t index_;
  std::string text_;
  std::uint64_t words_ = 0;
  std::vector<std::uint64_t> chunk_start_;  // chunk c is text [chunk_start_[c], chunk_start_[c + 1])
  std::vector<std::uint64_t> entry_first_;  // its entries start at entry_first_[c]
  std::size_t runs_at_ = 0, slots_at_ = 0, places_at_ = 0, outputs_at_ = 0, sends_at_ = 0;
  std::uint64_t arena_bytes_ = 0;
  shared_region state_region_;
  node_state* state_ = nullptr;
  shared_region entries_region_;
  shared_region arena_region_;
  shared_region scratch_region_;
};

// The coordinator: tells every node to go, gathers what each did. No model work of its own.
class mapreduce_run final : public prepared_run {
 public:
  // Connected to every node's control port here, before the measured region: it runs from the
  // go to the last node's answer.
  explicit mapreduce_run(const param_values& p)
      : config_{static_cast<unsigned>(p.at("workers")), 0},
        nodes_(checked_setup(p).controls, current_remote_setup().nodes, current_remote_setup().token,
               current_remote_setup().deadline) {}

  model_config config() const override { return config_; }

  std::uint64_t run(model_instance& /*coordinator: no model work*/) override {
    const auto started = std::chrono::steady_clock::now();
    done_ = nodes_.run();
    region_ns_ = static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
    std::uint64_t checksum = 0;
    for (const node_done& d : done_) checksum += d.checksum;
    return checksum;
  }

  // The phases are the slowest node's (the one whose map, shuffle and reduce took longest in all),
  // so they add up to about the makespan; the rest is summed over the nodes.
  run_observations observe() const override {
    run_observations seen;
    if (done_.empty()) return seen;
    const node_done* slowest = &done_.front();
    auto total = [](const node_done& d) {
      return d.figures.at("map_ns") + d.figures.at("shuffle_ns") + d.figures.at("reduce_ns");
    };
    for (const node_done& d : done_) {
      if (total(d) > total(*slowest)) slowest = &d;
    }
    seen.metrics = {{"phase_map_ns", slowest->figures.at("map_ns")},
                    {"phase_shuffle_ns", slowest->figures.at("shuffle_ns")},
                    {"phase_reduce_ns", slowest->figures.at("reduce_ns")}};
    for (const auto& [mine, theirs] : {std::pair{"words", "words"},
                                       {"reduced_words", "reduced_words"},
                                       {"distinct_words", "distinct_words"},
                                       {"block_bytes", "block_bytes"},
                                       {"shuffle_connections", "connections"},
                                       {"shuffle_bytes_sent", "bytes_sent"},
                                       {"shuffle_bytes_received", "bytes_received"}}) {
      double sum = 0;
      for (const node_done& d : done_) sum += d.figures.at(theirs);
      seen.metrics[mine] = sum;
    }
    return seen;
  }

  // Beyond the checksum: the reducers counted every word the mappers did, no more, no fewer.
  std::string verify(const model_info& /*model*/, std::map<std::string, double>& metrics) const override {
    if (metrics.count("words") == 0) return "no node answered";
    if (metrics["reduced_words"] != metrics["words"]) {
      return "the reducers counted " + std::to_string(static_cast<std::uint64_t>(metrics["reduced_words"])) +
             " words, the mappers " + std::to_string(static_cast<std::uint64_t>(metrics["words"]));
    }
    // Every node's phases ran between the go and its answer: their sum fits in the region the
    // coordinator timed, or a phase was timed wrong.
    for (const node_done& d : done_) {
      const double phases = d.figures.at("map_ns") + d.figures.at("shuffle_ns") + d.figures.at("reduce_ns");
      if (phases > region_ns_) {
        return "a node's phases add up to " + std::to_string(static_cast<std::uint64_t>(phases / 1000)) +
               " us, more than the " + std::to_string(static_cast<std::uint64_t>(region_ns_ / 1000)) +
               " us from the go to the last answer";
      }
    }
    return {};
  }

 private:
  static const remote_setup& checked_setup(const param_values& p) {
    const remote_setup& setup = current_remote_setup();
    if (setup.nodes.size() != static_cast<std::size_t>(p.at("nodes"))) {
      throw std::runtime_error("mapreduce needs " + std::to_string(p.at("nodes")) +
                               " serving nodes, the trial was given " + std::to_string(setup.nodes.size()));
    }
    return setup;
  }

  model_config config_;
  working_nodes nodes_;
  std::vector<node_done> done_;
  double region_ns_ = 0;  // the coordinator's own go-to-last-answer time
};

// The serial reference: the whole corpus counted by its text in one hash map.
std::uint64_t reference_of(const param_values& p) {
  const shape s = shape_of(p);
  const mapreduce::vocabulary vocab(s.vocabulary);
  std::unordered_map<std::string, std::uint64_t> counts;
  counts.reserve(s.vocabulary);
  for (std::uint32_t n = 0; n < s.nodes; ++n) {
    const mapreduce::text_part part = mapreduce::generate_part(vocab, s.seed, n, s.bytes_per_node);
    std::size_t at = 0;
    while (at < part.text.size()) {
      std::size_t end = part.text.find(' ', at);
      if (end == std::string::npos) end = part.text.size();
      ++counts[part.text.substr(at, end - at)];
      at = end + 1;
    }
  }
  std::uint64_t checksum = 0;
  for (const auto& [word, count] : counts) checksum += count_value(word_hash(word.data(), word.size()), count);
  return checksum;
}

void validate(const param_values& p) {
  const shape s = shape_of(p);
  if (s.chunk_bytes > s.bytes_per_node) {
    throw std::invalid_argument("mapreduce: chunk_kb (" + std::to_string(p.at("chunk_kb")) +
                                ") must not exceed mb_per_node in KiB (" + std::to_string(s.bytes_per_node >> 10) + ")");
  }
  // A block holds a node's counts for one partition: when the words spread evenly, at most its
  // share of 3 x the node's text, or of every chunk holding every word (a bigger one fails the
  // run, naming reduce_tasks).
  const std::uint64_t chunks = (s.bytes_per_node + s.chunk_bytes - 1) / s.chunk_bytes;
  const std::uint64_t most = std::min<std::uint64_t>(3 * s.bytes_per_node,
                                                     chunks * s.vocabulary * (5 + mapreduce::max_word_letters));
  if (most / s.partitions() > wire::max_payload / 2) {
    throw std::invalid_argument("mapreduce: blocks of up to " + std::to_string(most / s.partitions()) +
                                " bytes would not fit a frame: raise reduce_tasks");
  }
}

workload_entry make_mapreduce() {
  return workload_entry{
      .name = "mapreduce",
      .description = "word count across W nodes: each maps its part of a Zipf corpus, shuffles the counts to the "
                     "nodes that reduce them over the wire, and reduces",
      .measures = "makespan with its map, shuffle and reduce phases; words per second; the nodes' peak memory",
      .params = {{"mb_per_node", "MiB of text each node maps", 1, 1024, 1, 8, 64},
                 {"vocabulary", "words in the corpus's Zipf vocabulary", 26, 10'000'000, 20'000, 100'000, 1'000'000},
                 {"chunk_kb", "KiB of text per map task", 4, 1 << 20, 128, 512, 1024},
                 {"reduce_tasks", "R: partitions (reduce tasks) per node; a node sends W x R blocks", 1, 4096, 4, 8,
                  16},
                 {"nodes", "W: nodes the corpus is spread over", 1, 64, 2, 2, 2},
                 {"in_flight", "C: a node's shuffle calls in flight at once (and a spawn model's units alive)", 1,
                  1024, 4, 4, 8, false, true},
                 workers_param(2, 0, 0),
                 {"seed", "seed of the corpus", 0, 1'000'000'000, 1, 1, 1}},
      .validate = &validate,
      .prepare = [](const param_values& p) -> std::unique_ptr<prepared_run> {
        return std::make_unique<mapreduce_run>(p);
      },
      .reference = &reference_of,
      .units = [](const param_values& p) {
        return static_cast<std::uint64_t>(p.at("nodes") * p.at("mb_per_node"));
      },
      .cost = [](const param_values& p, const model_info&, unsigned cpus) {
        // At best a few hundred MB/s of text per CPU for the nodes; the reference counts it all once.
        const double bytes = static_cast<double>(p.at("nodes") * p.at("mb_per_node")) * 1048576.0;
        return cost_estimate{bytes / 1e9 / std::max(1u, cpus), bytes / 1e9};
      },
      .metrics = [](const param_values&, const trial_figures& f) {
        std::map<std::string, double> m{{"makespan_ns", f.wall_seconds * 1e9}};
        const auto words = f.observed.find("words");
        if (words != f.observed.end() && f.wall_seconds > 0) m["words_per_second"] = words->second / f.wall_seconds;
        return m;
      },
      .order = 120,
      .figures = {{"makespan_ns", "makespan: go to the last node's totals", "makespan ns", figure_kind::time_ns,
                   better::lower},
                  {"words_per_second", "words counted per second", "words/s", figure_kind::rate, better::higher},
                  {"nodes_peak_pss_bytes", "the nodes' serving processes' peak memory (PSS), summed", "nodes PSS",
                   figure_kind::bytes, better::lower}},
      .unit = "MiB of text",
      .alive = [](const param_values& p) {
        const auto chunks = static_cast<std::uint64_t>(std::max<std::int64_t>(1, p.at("mb_per_node") * 1024 / p.at("chunk_kb")));
        return static_cast<std::uint64_t>(p.at("nodes")) *
               std::min<std::uint64_t>(std::max<std::uint64_t>(chunks, static_cast<std::uint64_t>(p.at("reduce_tasks"))),
                                       static_cast<std::uint64_t>(p.at("in_flight")));
      },
      .remote = true,
      .own_coordinator = "common code: tells each node to go on its control port and gathers what it did (no model "
                         "work)",
      .node_prepare = [](const param_values& p, std::size_t index) -> std::unique_ptr<node_work> {
        return std::make_unique<node_part>(p, index);
      },
      .phases = {{"phase_map_ns", "map"}, {"phase_shuffle_ns", "shuffle"}, {"phase_reduce_ns", "reduce"}},
      .client_metrics = "shuffle",
  };
}

}  // namespace

CMBENCH_REGISTER_WORKLOAD(mapreduce, make_mapreduce);

}  // namespace cmbench
