// StraceProcess: one strace attached to every thread of a running process (and, with -f, to
// every task it creates later), owned by wedge and detached on destruction.
//
// wedge uses strace in two ways: to count what a daemon does (SyscallProbe) and to hold a
// syscall of the processes a command starts (an injected delay that pins a race, named in the
// report). Both need the same guarantees: attach is complete before the caller goes on (every
// thread of the target names strace as its TracerPid), strace dies with the thread that attached
// it (PR_SET_PDEATHSIG: SIGKILL, so it can never linger half-detached), and detaching is bounded
// (SIGINT, then SIGKILL: the kernel detaches the tracees of a dead tracer, and they run on).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/journal.h"

namespace wedge::stack {

class StraceProcess {
 public:
  // Runs `strace ARGS -p TRACED` (a sys::ChildProcess, journaled in `journal` before it runs,
  // until it is reaped), its stdout and stderr appended to `log`, in a process group of its own
  // (a terminal's SIGINT is wedge's to handle). Returns once every thread of `traced` is traced
  // by it, or an error (with what strace said) if it exits first or `timeout` passes.
  static Result<std::unique_ptr<StraceProcess>> Attach(sys::Journal& journal,
                                                       const std::vector<std::string>& args,
                                                       pid_t traced,
                                                       const std::filesystem::path& log,
                                                       std::chrono::milliseconds timeout);
  StraceProcess(const StraceProcess&) = delete;
  StraceProcess& operator=(const StraceProcess&) = delete;
  ~StraceProcess();  // detaches if still attached

  // SIGINT makes strace detach from every thread and exit; after 5 s SIGKILL. Reaps it. Calling
  // it again is a no-op.
  Status Detach();

  pid_t pid() const;
  const std::vector<std::string>& argv() const { return argv_; }
  int attached_threads() const { return attached_threads_; }
  std::int64_t attach_ms() const { return attach_ms_; }
  bool detached() const { return detached_; }
  // How strace ended: "exited with status 0", "killed by signal 9"; empty while attached.
  const std::string& detach_outcome() const { return detach_outcome_; }
  // "strace ARG ... -p PID; attached to N threads in M ms; detached, exited with status 0".
  std::string Describe() const;

 private:
  StraceProcess() = default;
  std::vector<std::string> argv_;
  std::optional<sys::ChildProcess> child_;
  bool detached_ = false;
  std::string detach_outcome_;
  int attached_threads_ = 0;
  std::int64_t attach_ms_ = 0;
};

}  // namespace wedge::stack
