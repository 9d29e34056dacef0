#include "harness/system.hpp"

#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

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

usage operator-(const usage& after, const usage& before) {
  usage d = after;
  d.user_ns -= before.user_ns;
  d.sys_ns -= before.sys_ns;
  d.voluntary_switches -= before.voluntary_switches;
  d.involuntary_switches -= before.involuntary_switches;
  d.minor_faults -= before.minor_faults;
  d.major_faults -= before.major_faults;
  return d;
}

namespace {

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

group_memory process_group_memory(pid_t group) {
  static const std::int64_t page = sysconf(_SC_PAGESIZE);
  group_memory total;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return total;
  char path[300];
  char buffer[512];
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::snprintf(path, sizeof(path), "/proc/%s/stat", entry->d_name);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) continue;  // exited meanwhile
    const std::size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, f);
    std::fclose(f);
    buffer[n] = '\0';
    // Fields after the command name, which may hold spaces: state ppid pgrp ... rss is field 24.
    const char* rest = std::strrchr(buffer, ')');
    if (rest == nullptr) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(rest + 2, "%c %ld %ld", &state, &ppid, &pgrp) != 3 || pgrp != group) continue;
    if (state == 'Z') continue;  // a zombie holds no memory
    std::istringstream fields(rest + 2);
    std::string field;
    std::int64_t rss = 0;
    std::int64_t threads = 1;
    for (int i = 3; i <= 24 && fields >> field; ++i) {
      if (i == 20) threads = std::strtoll(field.c_str(), nullptr, 10);
      if (i == 24) rss = std::strtoll(field.c_str(), nullptr, 10) * page;
    }
    total.rss_bytes += rss;
    total.threads += threads;
    const std::int64_t pss = proportional_set_size(entry->d_name);
    total.pss_bytes += pss >= 0 ? pss : rss;
    ++total.processes;
  }
  closedir(proc);
  return total;
}

}  // namespace cmbench::system
