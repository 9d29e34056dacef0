// processes/pool's skynet trees: each unit is a one-word task on the pool's ring, and no task
// ever waits. Continuation passing: an internal unit pushes its children and returns; each child
// adds its result into its parent's node, and the one that brings the parent's pending count to
// zero completes the parent (and maybe its parent), up to the root, which completes the job.
//
// Units are numbered breadth-first, so a one-word task (the unit's number, its level in the top
// byte) gives its leaf range through the shape, and the internal units, which come before the
// leaves, are the only ones with state: a node each, in the job area (processes/job_area.hpp).
#pragma once

#include <atomic>
#include <cstdint>

#include "models/memory_limits.hpp"
#include "models/model.hpp"
#include "models/processes/shared_memory.hpp"

namespace cmbench::detail::shm_pool {

constexpr int level_shift = 56;
constexpr std::uint64_t unit_mask = (std::uint64_t{1} << level_shift) - 1;
constexpr std::uint32_t max_levels = 64;

struct tree_node {
  std::atomic<std::uint64_t> sum;
  std::atomic<std::uint32_t> pending;
};

struct tree_shape {
  tree_job job;  // a copy: the caller's job object is not in shared memory
  std::uint32_t fanout = 0;
  std::uint64_t internal_units = 0;  // units above the leaves: the tree_nodes in the job area
  std::uint64_t level_first_unit[max_levels] = {};
  std::uint64_t level_unit_size[max_levels] = {};
};

// Level sizes and first unit numbers. Throws unless the leaves are a power of the fanout, and
// limit_error if the tree has more units than `max_units` (the ring's cells: each unit is pushed
// once, and a tree that fits whole never waits for room).
inline tree_shape shape_tree(const tree_job& job, std::uint64_t max_units) {
  tree_shape shape;
  shape.job = job;
  shape.fanout = job.fanout;
  std::uint64_t first_unit = 0;
  std::uint64_t units_on_level = 1;
  std::uint64_t size = job.leaves;
  for (std::uint32_t level = 0;; ++level) {
    if (level == max_levels || job.leaves == 0) {
      throw std::invalid_argument("processes/pool: tree leaves must be a power of the fanout");
    }
    shape.level_first_unit[level] = first_unit;
    shape.level_unit_size[level] = size;
    if (size == 1) {
      shape.internal_units = first_unit;  // numbered breadth-first: all before the leaves
      break;
    }
    if (job.fanout < 2 || size % job.fanout != 0) {
      throw std::invalid_argument("processes/pool: tree leaves must be a power of the fanout");
    }
    first_unit += units_on_level;
    units_on_level *= job.fanout;
    size /= job.fanout;
  }
  const std::uint64_t units = tree_units(job);
  if (units > max_units) {
    throw limit_error("processes/pool: a tree of " + with_thousands(units) +
                      " units does not fit the shared task ring (" + with_thousands(max_units) + " descriptors)");
  }
  return shape;
}

// The root's task: unit 0, level 0.
constexpr std::uint64_t tree_root_task = 0;

// Runs one tree unit in a worker. The pool provides try_push(task), notify() and
// complete_job(result); `nodes` are the job area's internal units.
template <class Pool>
void run_tree_unit(Pool& pool, const tree_shape& tree, tree_node* nodes, std::uint64_t task) noexcept {
  const auto level = static_cast<std::uint32_t>(task >> level_shift);
  std::uint64_t unit = task & unit_mask;
  const std::uint64_t size = tree.level_unit_size[level];
  if (size > 1) {
    tree_node& node = nodes[unit];
    node.sum.store(0, std::memory_order_relaxed);
    node.pending.store(tree.fanout, std::memory_order_relaxed);  // published by the pushes
    const std::uint64_t first_child = (std::uint64_t{level + 1} << level_shift) | (unit * tree.fanout + 1);
    for (std::uint32_t c = 0; c < tree.fanout; ++c) {
      // Cannot spin for long: the caller admits only trees that fit in the ring whole.
      while (!pool.try_push(first_child + c)) cpu_relax();
    }
    pool.notify();
    return;
  }
  // A leaf: its value goes up, completing every parent it is the last child of.
  std::uint64_t value = tree.job.leaf_value(unit - tree.level_first_unit[level]);
  while (unit != 0) {
    unit = (unit - 1) / tree.fanout;
    tree_node& parent = nodes[unit];
    parent.sum.fetch_add(value, std::memory_order_relaxed);
    // acq_rel: the last child sees every sibling's addition.
    if (parent.pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    value = parent.sum.load(std::memory_order_relaxed);
  }
  pool.complete_job(value);
}

}  // namespace cmbench::detail::shm_pool
