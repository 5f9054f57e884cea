// Runs code at a fault point in a forked child, so that a test sees whether the child stopped
// there (waitpid with WUNTRACED) without stopping itself. Shared by the unit tests (whatever the
// build's WEDGE_FAULT_POINTS) and the test binary built without fault points.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

namespace wedge::testing {

struct FaultPointChild {
  bool stopped = false;  // the child stopped itself with SIGSTOP
  bool exited = false;   // it ran to its end (exit 0): every fault point it met returned
  std::string output;    // what it wrote on stdout
};

// Forks a child that runs `body` with WEDGE_FAULT_STOP_AT=`stop_at` (unset if empty) and its
// stdout on a pipe, then exits 0. If it stops, `while_stopped` runs, and the child is sent the
// signal it returns (SIGCONT to let it finish, SIGKILL to end it there).
inline FaultPointChild RunAtFaultPoint(const std::string& stop_at,
                                       const std::function<void()>& body,
                                       const std::function<int()>& while_stopped) {
  FaultPointChild result;
  int pipe_ends[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << errno;
    return result;
  }
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << errno;
    return result;
  }
  if (pid == 0) {
    ::dup2(pipe_ends[1], STDOUT_FILENO);
    if (stop_at.empty()) {
      ::unsetenv("WEDGE_FAULT_STOP_AT");
    } else {
      ::setenv("WEDGE_FAULT_STOP_AT", stop_at.c_str(), 1);
    }
    body();
    std::cout.flush();
    ::_exit(0);
  }
  ::close(pipe_ends[1]);
  int status = 0;
  while (::waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR) {
  }
  if (WIFSTOPPED(status)) {
    result.stopped = WSTOPSIG(status) == SIGSTOP;
    ::kill(pid, while_stopped());
    if (!result.stopped) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  result.exited = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    result.output.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_ends[0]);
  return result;
}

}  // namespace wedge::testing
