// Facts about this machine and the accounting of a trial's processes, read from /proc and the
// kernel: the only place the harness talks to the operating system about resources.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace cmbench::system {

// CPUs this process may run on (sched_getaffinity), as ids.
std::vector<int> affinity();
unsigned usable_cpus();
std::string cpu_model();
double cpu_mhz();
std::string kernel();
std::string host_name();
std::string governor();  // "unknown" where cpufreq is not exposed (virtual machines)
std::vector<double> load_average();

// The machine's CPU time since boot, summed over every online CPU (the `cpu` line of /proc/stat),
// in clock ticks. Two readings apart tell how busy the machine was between them, and how much
// time the hypervisor took from this virtual machine (steal): a lagging load average tells neither.
struct cpu_times {
  std::int64_t busy = 0;   // user + nice + system + irq + softirq
  std::int64_t idle = 0;   // idle + iowait
  std::int64_t steal = 0;  // time a virtual CPU was ready but the hypervisor ran something else
  std::int64_t total() const { return busy + idle + steal; }
};
cpu_times read_cpu_times();  // all zero where /proc/stat cannot be read
unsigned online_cpus();
// Kernel limits that bound how many units a model may create, by name.
std::map<std::string, std::int64_t> limits();

// Resource counters: current_usage() gives this process and its waited-for descendants (getrusage
// SELF + CHILDREN); usage_between() a trial's window over every process of the trial.
struct usage {
  std::int64_t user_ns = 0;
  std::int64_t sys_ns = 0;
  std::int64_t voluntary_switches = 0;
  std::int64_t involuntary_switches = 0;
  std::int64_t minor_faults = 0;
  std::int64_t major_faults = 0;
  std::int64_t self_max_rss_bytes = 0;      // this process's high-water mark
  std::int64_t children_max_rss_bytes = 0;  // the largest waited-for descendant's
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(usage, user_ns, sys_ns, voluntary_switches, involuntary_switches,
                                   minor_faults, major_faults, self_max_rss_bytes, children_max_rss_bytes)
usage current_usage();

// What one process has used so far. CPU time is read precisely (nanoseconds of run time); the
// kernel's user/system times are tick-sampled, so they only split it.
struct process_counters {
  std::int64_t cpu_ns = 0;      // user + system
  std::int64_t user_split = 0;  // user and system time in any one unit: only their ratio is used
  std::int64_t sys_split = 0;
  std::int64_t reaped_user_ns = 0;  // children it waited for, their whole lives
  std::int64_t reaped_sys_ns = 0;
  std::int64_t voluntary_switches = 0;
  std::int64_t involuntary_switches = 0;
  std::int64_t minor_faults = 0;  // its own and its reaped children's
  std::int64_t major_faults = 0;
};

// Every process of a trial at one moment: this one and the others of its process group alive (or
// not yet reaped) then, keyed by pid and start time so a reused pid is another process.
struct trial_counters {
  process_counters own;  // this process (all its threads) and the children it reaped
  std::int64_t self_max_rss_bytes = 0;
  std::int64_t children_max_rss_bytes = 0;
  std::map<std::pair<pid_t, std::int64_t>, process_counters> others;
};
// Read just before the start clock and just after the stop clock: this process's CPU clock next
// to the wall clock, the scan of /proc for the rest of `group` (slow) farthest from it; after the
// stop, the processes `before` found are read by pid ahead of that scan.
trial_counters read_counters_before(pid_t group);
trial_counters read_counters_after(pid_t group, const trial_counters& before);
// What the trial's processes used between two readings: this process's delta, each other process's
// delta (whole if it appeared since `before`), less the `before` reading of every process gone since,
// which its reaper's counters now hold whole. Peaks are `after`'s.
usage usage_between(const trial_counters& before, const trial_counters& after);

// Memory of every live process in a process group, summed, and how many there are. RSS counts a
// page shared by N processes (after fork(), a library) N times; PSS counts 1/N of it in each, so
// the PSS sum is the group's real footprint. PSS comes from /proc/PID/smaps_rollup; where that
// cannot be read it falls back to RSS.
struct group_memory {
  std::int64_t rss_bytes = 0;
  std::int64_t pss_bytes = 0;
  std::int64_t processes = 0;
  std::int64_t threads = 0;  // OS threads of those processes (a process has at least one)
};
group_memory process_group_memory(pid_t group);

// The kernel's OOM kills so far: machine-wide (the oom_kill line of /proc/vmstat) and in this
// process's memory cgroup (oom_kill in cgroup v2 memory.events, or in v1 memory.oom_control),
// so a trial's before and after tell whether the OOM killer struck meanwhile. -1: unknown.
struct oom_kills {
  std::int64_t machine = -1;
  std::int64_t cgroup = -1;
  std::string cgroup_file;  // where `cgroup` was read
};
oom_kills read_oom_kills();

// The error of a failed trial that the kernel's OOM killer ended, or "" when the evidence is
// not there. The evidence: a SIGKILL the harness did not send, to the trial process
// (`trial_sigkilled`) or to one of its processes (its `error` says "killed by signal 9", as
// processes/pool and processes/spawn report a child's death), while an OOM kill counter rose
// between `before` (read before the trial started) and `after` (once it was reaped).
// "out of memory: killed by the kernel's OOM killer (oom_kill in /proc/vmstat rose by 1 during
// the trial; the trial: trial process killed by signal 9 (Killed))".
std::string out_of_memory_error(const oom_kills& before, const oom_kills& after, bool trial_sigkilled,
                                const std::string& error);

}  // namespace cmbench::system
