// What the tests that drive the cmbench executable share: starting it in the background, watching
// its processes and files, and a temporary directory each test removes. CMBENCH_EXE is the path
// of the executable under test (a compile definition).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace cmbench::testing {

namespace fs = std::filesystem;

class temp_dir {
 public:
  temp_dir() {
    char name[] = "/tmp/cmbench-test-XXXXXX";
    path_ = mkdtemp(name);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::size_t lines_of(const std::string& path) {
  const std::string text = file_text(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Every entry of `dir` (names only), sorted; empty when it does not exist.
inline std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct process_entry {
  pid_t pid = 0;
  char state = 0;       // 'Z' a zombie
  std::string command;  // its command line, arguments joined by spaces
};

// The processes whose parent is `parent`.
inline std::vector<process_entry> children_of(pid_t parent) {
  std::vector<process_entry> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    const auto paren = text.rfind(')');
    if (paren == std::string::npos || paren + 2 >= text.size()) continue;
    std::istringstream rest(text.substr(paren + 2));
    process_entry p;
    pid_t ppid = 0;
    rest >> p.state >> ppid;
    if (ppid != parent) continue;
    p.pid = std::stoi(name);
    std::ifstream cmdline(entry.path() / "cmdline");
    p.command.assign(std::istreambuf_iterator<char>(cmdline), std::istreambuf_iterator<char>());
    std::replace(p.command.begin(), p.command.end(), '\0', ' ');
    found.push_back(std::move(p));
  }
  return found;
}

// Every live (not zombie) process below `ancestor`: its children, theirs, and so on.
inline std::vector<process_entry> live_descendants_of(pid_t ancestor) {
  std::vector<process_entry> found;
  std::vector<pid_t> parents{ancestor};
  while (!parents.empty()) {
    const pid_t parent = parents.back();
    parents.pop_back();
    for (auto& p : children_of(parent)) {
      if (p.state == 'Z') continue;
      parents.push_back(p.pid);
      found.push_back(std::move(p));
    }
  }
  return found;
}

// The live (not zombie) children of `parent` whose command line contains `word`.
inline std::vector<pid_t> children_running(pid_t parent, const std::string& word) {
  std::vector<pid_t> found;
  for (const auto& p : children_of(parent)) {
    if (p.state != 'Z' && p.command.find(word) != std::string::npos) found.push_back(p.pid);
  }
  return found;
}

// Starts cmbench in the background with its output to `log`, TMPDIR set when given, and
// `environment` ("NAME=value") added.
inline pid_t start_cmbench(const std::vector<std::string>& args, const std::string& log, const std::string& tmpdir = "",
                           const std::vector<std::string>& environment = {}) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  signal(SIGINT, SIG_DFL);  // a test started in the background may have inherited it ignored
  signal(SIGTERM, SIG_DFL);
  if (!tmpdir.empty()) setenv("TMPDIR", tmpdir.c_str(), 1);
  for (const auto& setting : environment) putenv(const_cast<char*>(setting.c_str()));
  std::vector<char*> argv{const_cast<char*>(CMBENCH_EXE)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(CMBENCH_EXE, argv.data());
  _exit(127);
}

// Waits up to `seconds` for `ready`; false if it never was.
inline bool wait_until(const std::function<bool()>& ready, double seconds) {
  for (int i = 0; i < static_cast<int>(seconds * 20); ++i) {
    if (ready()) return true;
    usleep(50'000);
  }
  return ready();
}

}  // namespace cmbench::testing
