// What the tests that drive the cmbench executable share: starting it in the background, watching
// its processes and files, and a temporary directory each test removes. CMBENCH_EXE is the path
// of the executable under test (a compile definition).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace cmbench::testing {

namespace fs = std::filesystem;

// A directory under /tmp, removed with everything in it; `anyone_may_write` for runs as another user.
class temp_dir {
 public:
  explicit temp_dir(bool anyone_may_write = false) {
    char name[] = "/tmp/cmbench-test-XXXXXX";
    path_ = mkdtemp(name);
    if (anyone_may_write) fs::permissions(path_, fs::perms::all);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct command_result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line and collects what it prints.
inline command_result run_command(const std::string& command) {
  command_result r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) r.output += buffer;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::size_t lines_of(const std::string& path) {
  const std::string text = file_text(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

inline std::size_t count_of(const std::string& text, const std::string& word) {
  std::size_t n = 0;
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + word.size())) ++n;
  return n;
}

// The state letter of a process ('Z' a zombie), or '\0' when it is gone.
inline char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return '\0';
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? '\0' : text[paren + 2];
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
