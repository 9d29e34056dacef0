#include "harness/system.hpp"

#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "models/system_limits.hpp"

namespace cmbench::system {
namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "";
}

std::int64_t ns_of(const timeval& tv) {
  return static_cast<std::int64_t>(tv.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(tv.tv_usec) * 1000;
}

}  // namespace

std::vector<int> affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

unsigned usable_cpus() { return usable_cpu_count(); }

std::string cpu_model() {
  const std::string model = cpuinfo_field("model name");
  return model.empty() ? "unknown" : model;
}

double cpu_mhz() {
  const std::string mhz = cpuinfo_field("cpu MHz");
  return mhz.empty() ? 0.0 : std::strtod(mhz.c_str(), nullptr);
}

std::string kernel() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string governor() {
  const std::string g = first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
  return g.empty() ? "unknown" : g;
}

std::vector<double> load_average() {
  double loads[3] = {0, 0, 0};
  if (getloadavg(loads, 3) != 3) return {};
  return {loads[0], loads[1], loads[2]};
}

cpu_times read_cpu_times() {
  std::ifstream in("/proc/stat");
  std::string label;
  std::int64_t user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> label >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu") return {};
  return {user + nice + sys + irq + softirq, idle + iowait, steal};
}

unsigned online_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1U;
}

std::map<std::string, std::int64_t> limits() {
  rlimit nproc{};
  getrlimit(RLIMIT_NPROC, &nproc);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  rlimit stack{};
  getrlimit(RLIMIT_STACK, &stack);
  auto lim = [](rlim_t v) { return v == RLIM_INFINITY ? std::int64_t{-1} : static_cast<std::int64_t>(v); };
  const kernel_limits kernel = read_kernel_limits();
  return {{"pid_max", kernel.pid_max},
          {"threads_max", kernel.threads_max},
          {"max_map_count", kernel.max_map_count},
          {"rlimit_nproc", lim(nproc.rlim_cur)},
          {"rlimit_nofile", lim(nofile.rlim_cur)},
          {"rlimit_stack_bytes", lim(stack.rlim_cur)},
          {"memory_bytes", static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE)}};
}

usage current_usage() {
  rusage self{};
  rusage children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  usage u;
  u.user_ns = ns_of(self.ru_utime) + ns_of(children.ru_utime);
  u.sys_ns = ns_of(self.ru_stime) + ns_of(children.ru_stime);
  u.voluntary_switches = self.ru_nvcsw + children.ru_nvcsw;
  u.involuntary_switches = self.ru_nivcsw + children.ru_nivcsw;
  u.minor_faults = self.ru_minflt + children.ru_minflt;
  u.major_faults = self.ru_majflt + children.ru_majflt;
  u.self_max_rss_bytes = self.ru_maxrss * 1024;  // Linux reports KiB
  u.children_max_rss_bytes = children.ru_maxrss * 1024;
  return u;
}

namespace {

// /proc/PID/stat from its third field (the state) on, in `buffer`; nullptr when the process is
// gone or not in `group`.
const char* stat_in_group(const char* pid, pid_t group, char (&buffer)[1024]) {
  char path[300];  // a d_name is at most 255 bytes
  std::snprintf(path, sizeof(path), "/proc/%s/stat", pid);
  FILE* file = std::fopen(path, "r");
  if (file == nullptr) return nullptr;  // exited meanwhile
  const std::size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  buffer[n] = '\0';
  // Fields after the command name, which may hold spaces: state ppid pgrp ...
  const char* rest = std::strrchr(buffer, ')');
  if (rest == nullptr || rest[1] == '\0') return nullptr;
  char state = 0;
  long ppid = 0, pgrp = 0;
  if (std::sscanf(rest + 2, "%c %ld %ld", &state, &ppid, &pgrp) != 3 || pgrp != group) return nullptr;
  return rest + 2;
}

// Calls f(pid, fields) for every process of `group`, `fields` as stat_in_group gives them.
// Zombies are included.
template <class F>
void for_each_process_of_group(pid_t group, F&& f) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return;
  char buffer[1024];
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    if (const char* fields = stat_in_group(entry->d_name, group, buffer)) f(entry->d_name, fields);
  }
  closedir(proc);
}

// Fields 4 to 24 of /proc/PID/stat as numbered in proc(5) (field[10] is minflt), from `fields`
// as for_each_process_of_group passes them.
std::array<std::int64_t, 25> stat_fields(const char* fields) {
  std::array<std::int64_t, 25> field{};
  std::istringstream in(fields);
  std::string word;
  in >> word;  // the state
  for (int i = 4; i <= 24 && in >> word; ++i) field[i] = std::strtoll(word.c_str(), nullptr, 10);
  return field;
}


// This process's user and system time (every thread, tick-sampled) and its reaped children's.
void read_rusage(trial_counters& c) {
  rusage self{};
  rusage children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  c.own.user_split = ns_of(self.ru_utime);
  c.own.sys_split = ns_of(self.ru_stime);
  c.own.reaped_user_ns = ns_of(children.ru_utime);
  c.own.reaped_sys_ns = ns_of(children.ru_stime);
  c.own.voluntary_switches = self.ru_nvcsw + children.ru_nvcsw;
  c.own.involuntary_switches = self.ru_nivcsw + children.ru_nivcsw;
  c.own.minor_faults = self.ru_minflt + children.ru_minflt;
  c.own.major_faults = self.ru_majflt + children.ru_majflt;
  c.self_max_rss_bytes = self.ru_maxrss * 1024;  // Linux reports KiB
  c.children_max_rss_bytes = children.ru_maxrss * 1024;
}

// Every thread of this process, to the nanosecond (getrusage rounds to microseconds).
std::int64_t own_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// One other process of the group, from /proc. The models' processes run one thread each, whose
// schedstat is the process's. Their reaped children's context switches are not in /proc: those
// count once the process itself is reaped.
void read_other(trial_counters& c, const char* pid, const char* fields) {
  static const std::int64_t ns_per_tick = 1'000'000'000 / sysconf(_SC_CLK_TCK);
  const std::array<std::int64_t, 25> field = stat_fields(fields);
  process_counters p;
  p.minor_faults = field[10] + field[11];  // minflt + cminflt
  p.major_faults = field[12] + field[13];  // majflt + cmajflt
  p.user_split = field[14];                // utime, stime
  p.sys_split = field[15];
  p.reaped_user_ns = field[16] * ns_per_tick;  // cutime, cstime
  p.reaped_sys_ns = field[17] * ns_per_tick;
  const std::string dir = std::string("/proc/") + pid;
  // Run time in ns of every thread the process has had, from its CPU clock (the scheduler's;
  // utime and stime are only sampled at ticks, and /proc/PID/schedstat is its main thread's alone).
  const pid_t process = static_cast<pid_t>(std::strtol(pid, nullptr, 10));
  clockid_t clock_id{};
  timespec t{};
  if (clock_getcpuclockid(process, &clock_id) == 0 && clock_gettime(clock_id, &t) == 0) {
    p.cpu_ns = std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
  } else {
    p.cpu_ns = (field[14] + field[15]) * ns_per_tick;
  }
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    long long n = 0;
    if (std::sscanf(line.c_str(), "voluntary_ctxt_switches: %lld", &n) == 1) p.voluntary_switches = n;
    if (std::sscanf(line.c_str(), "nonvoluntary_ctxt_switches: %lld", &n) == 1) p.involuntary_switches = n;
  }
  const pid_t id = static_cast<pid_t>(std::strtol(pid, nullptr, 10));
  c.others[{id, field[22]}] = p;  // starttime tells a reused pid apart
}

// Every other process of the group, except those `c` holds already.
void read_others(trial_counters& c, pid_t group) {
  const pid_t self = getpid();
  for_each_process_of_group(group, [&](const char* pid, const char* fields) {
    const pid_t id = static_cast<pid_t>(std::strtol(pid, nullptr, 10));
    const auto read = c.others.lower_bound({id, 0});  // keys sort by pid first
    if (id == self || (read != c.others.end() && read->first.first == id)) return;
    read_other(c, pid, fields);
  });
}

// What a process used from `before` to `after` (a process not yet seen: `before` all zero). Its
// CPU time is split in the ratio of the user and system time that accrued meanwhile or, when no
// tick landed in between, the ratio so far; all user when there is none.
usage delta(const process_counters& before, const process_counters& after) {
  const std::int64_t cpu = after.cpu_ns - before.cpu_ns;
  std::int64_t user = after.user_split - before.user_split;
  std::int64_t sys = after.sys_split - before.sys_split;
  if (user < 0 || sys < 0 || user + sys == 0) {
    user = after.user_split;
    sys = after.sys_split;
  }
  const std::int64_t cpu_user =
      user + sys > 0 ? static_cast<std::int64_t>(static_cast<double>(cpu) * static_cast<double>(user) /
                                                 static_cast<double>(user + sys))
                     : cpu;
  usage d;
  d.user_ns = cpu_user + after.reaped_user_ns - before.reaped_user_ns;
  d.sys_ns = cpu - cpu_user + after.reaped_sys_ns - before.reaped_sys_ns;
  d.voluntary_switches = after.voluntary_switches - before.voluntary_switches;
  d.involuntary_switches = after.involuntary_switches - before.involuntary_switches;
  d.minor_faults = after.minor_faults - before.minor_faults;
  d.major_faults = after.major_faults - before.major_faults;
  return d;
}

void add(usage& to, const usage& d, std::int64_t sign) {
  to.user_ns += sign * d.user_ns;
  to.sys_ns += sign * d.sys_ns;
  to.voluntary_switches += sign * d.voluntary_switches;
  to.involuntary_switches += sign * d.involuntary_switches;
  to.minor_faults += sign * d.minor_faults;
  to.major_faults += sign * d.major_faults;
}

// The "Pss:" line of /proc/PID/smaps_rollup in bytes, or -1 when it cannot be read.
std::int64_t proportional_set_size(const char* pid) {
  char path[320];  // a d_name is at most 255 bytes
  std::snprintf(path, sizeof(path), "/proc/%s/smaps_rollup", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char line[256];
  std::int64_t kib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "Pss:", 4) == 0) {
      kib = std::strtoll(line + 4, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

}  // namespace

// The precise CPU clock sits next to the wall clock on both sides, the slow /proc scan farthest.
trial_counters read_counters_before(pid_t group) {
  trial_counters c;
  read_others(c, group);
  read_rusage(c);
  c.own.cpu_ns = own_cpu_ns();
  return c;
}

trial_counters read_counters_after(pid_t group, const trial_counters& before) {
  trial_counters c;
  c.own.cpu_ns = own_cpu_ns();
  read_rusage(c);
  // The processes read before go first, by pid: a pool's idle workers poll for work a while
  // after the window (tens of us), and scanning /proc for the group takes a millisecond or more.
  char buffer[1024];
  for (const auto& [process, counters] : before.others) {
    const std::string pid = std::to_string(process.first);
    if (const char* fields = stat_in_group(pid.c_str(), group, buffer)) read_other(c, pid.c_str(), fields);
  }
  read_others(c, group);
  return c;
}

usage usage_between(const trial_counters& before, const trial_counters& after) {
  usage total = delta(before.own, after.own);
  for (const auto& [process, now] : after.others) {
    const auto then = before.others.find(process);
    add(total, delta(then == before.others.end() ? process_counters{} : then->second, now), 1);
  }
  // Gone since `before`: reaped, so its reaper's counters (ours, or a live process's) now hold its
  // whole life, of which only what followed `before` belongs to the window.
  for (const auto& [process, then] : before.others) {
    if (!after.others.contains(process)) add(total, delta(process_counters{}, then), -1);
  }
  total.self_max_rss_bytes = after.self_max_rss_bytes;
  total.children_max_rss_bytes = after.children_max_rss_bytes;
  return total;
}

group_memory process_group_memory(pid_t group) {
  static const std::int64_t page = sysconf(_SC_PAGESIZE);
  group_memory total;
  for_each_process_of_group(group, [&](const char* pid, const char* fields) {
    if (fields[0] == 'Z') return;  // a zombie holds no memory
    const auto values = stat_fields(fields);
    const std::int64_t rss = values[24] * page;
    total.rss_bytes += rss;
    total.threads += values[20];
    const std::int64_t pss = proportional_set_size(pid);
    total.pss_bytes += pss >= 0 ? pss : rss;
    ++total.processes;
  });
  return total;
}

namespace {

// The number after `key ` on its own line of a "key value" file (/proc/vmstat, memory.events);
// -1 if absent.
std::int64_t keyed_number(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ' ') {
      return parse_number(line.c_str() + key.size() + 1);
    }
  }
  return -1;
}

}  // namespace

oom_kills read_oom_kills() {
  oom_kills kills;
  kills.machine = keyed_number("/proc/vmstat", "oom_kill");
  std::ifstream in("/proc/self/cgroup");
  std::string v2_path;
  std::string v1_path;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) v2_path = line.substr(3);
    const auto memory = line.find(":memory:");
    if (memory != std::string::npos) v1_path = line.substr(memory + 8);
  }
  // v1 where the memory controller is mounted apart (a hybrid hierarchy), else v2.
  const std::string candidates[] = {
      v1_path.empty() ? std::string() : "/sys/fs/cgroup/memory" + v1_path + "/memory.oom_control",
      "/sys/fs/cgroup" + v2_path + "/memory.events",
  };
  for (const std::string& file : candidates) {
    if (file.empty()) continue;
    const std::int64_t n = keyed_number(file, "oom_kill");
    if (n >= 0) {
      kills.cgroup = n;
      kills.cgroup_file = file;
      break;
    }
  }
  return kills;
}

std::string out_of_memory_error(const oom_kills& before, const oom_kills& after, bool trial_sigkilled,
                                const std::string& error) {
  if (!trial_sigkilled && error.find("killed by signal 9") == std::string::npos) return "";
  auto rose = [](std::int64_t a, std::int64_t b) { return a >= 0 && b > a ? b - a : 0; };
  const std::int64_t in_cgroup =
      before.cgroup_file == after.cgroup_file ? rose(before.cgroup, after.cgroup) : 0;
  const std::int64_t on_machine = rose(before.machine, after.machine);
  if (in_cgroup == 0 && on_machine == 0) return "";
  std::string evidence;
  if (in_cgroup > 0) {
    evidence = "oom_kill in " + after.cgroup_file + " rose by " + std::to_string(in_cgroup);
  } else {
    evidence = "oom_kill in /proc/vmstat rose by " + std::to_string(on_machine);
  }
  return "out of memory: killed by the kernel's OOM killer (" + evidence + " during the trial; the trial: " +
         error + ")";
}

}  // namespace cmbench::system
