// What the fault tests share: a temporary folder, running a check in a child process (so a crash
// such as SIGBUS fails one test instead of killing the test binary, and resource limits stay in
// the child), and writing files; the logger that keeps every error and the model builder come
// from tests/unit/test_models.h.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "tests/unit/test_models.h"

namespace kiln::fault_test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kiln_fault_XXXXXX";
    const char* p = mkdtemp(tmpl);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

using test::CaptureLogger;
using test::contains;

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs `check` in a forked child and returns what went wrong: "" when it returned "" (success),
// its message when it returned one, or how the child died (a crash is the bug these tests look
// for). The child leaves with _exit, so nothing of the parent's is torn down twice.
inline std::string run_in_child(const std::function<std::string()>& check) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    std::string why;
    try {
      why = check();
    } catch (const std::exception& e) {  // must not unwind into the parent's copy of gtest
      why = std::string("an exception escaped: ") + e.what();
    } catch (...) {
      why = "an exception escaped";
    }
    if (!why.empty()) (void)!write(fds[1], why.data(), why.size());
    close(fds[1]);
    _exit(why.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string why;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) why.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return "the child crashed: signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")" +
           (why.empty() ? "" : ": " + why);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return why.empty() ? "the child failed" : why;
  return "";
}

// Accumulates failed expectations inside a child (gtest's EXPECT_* does not reach the parent).
struct Checks {
  std::string failures;
  void expect(bool ok, const std::string& what) {
    if (!ok) failures += (failures.empty() ? "" : "\n") + what;
  }
  // Exactly one error was logged.
  void one_error(const CaptureLogger& log) {
    expect(log.errors.size() == 1, "expected one error, got " + std::to_string(log.errors.size()) + ": " + log.all());
  }
};

}  // namespace kiln::fault_test
