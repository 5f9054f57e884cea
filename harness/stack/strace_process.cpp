#include "wedge/stack/strace_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "wedge/base/unique_fd.h"
#include "wedge/probe/task.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kDetachTimeout{5000};

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// Whether every thread of `pid` has `tracer` as its TracerPid; `threads` counts them.
bool AllThreadsTracedBy(pid_t pid, pid_t tracer, int& threads) {
  threads = 0;
  for (pid_t tid : probe::ListTasks(pid)) {
    Result<probe::TaskStatus> status = probe::ReadStatus(pid, tid);
    if (!status.ok()) continue;  // the thread exited meanwhile
    if (status->tracer_pid != tracer) return false;
    ++threads;
  }
  return threads > 0;
}

std::string FindStrace() {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    if (::access((fs::path(dir) / "strace").c_str(), X_OK) == 0) {
      return (fs::path(dir) / "strace").string();
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<StraceProcess>> StraceProcess::Attach(sys::Journal& journal,
                                                             const std::vector<std::string>& args,
                                                             pid_t traced, const fs::path& log,
                                                             std::chrono::milliseconds timeout) {
  const std::int64_t started = sys::MonotonicMillis();
  const std::string strace_path = FindStrace();
  if (strace_path.empty()) return Error("strace is not installed");
  std::unique_ptr<StraceProcess> strace(new StraceProcess());
  strace->argv_.push_back("strace");
  strace->argv_.insert(strace->argv_.end(), args.begin(), args.end());
  strace->argv_.push_back("-p");
  strace->argv_.push_back(std::to_string(traced));
  UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log_fd.valid()) return ErrnoError("open('" + log.string() + "')");
  sys::ChildSpec spec;
  spec.role = "strace";
  spec.argv = strace->argv_;
  spec.executable = strace_path;
  spec.stdin_stream = sys::ChildStream::Null();
  spec.stdout_stream = sys::ChildStream::Descriptor(log_fd.get());
  spec.stderr_stream = sys::ChildStream::Descriptor(log_fd.get());
  // Should wedge die without detaching it, strace dies at once: SIGKILL, not SIGTERM. On
  // SIGTERM strace detaches by itself, and when `wedge cleanup` kills its tracees meanwhile
  // (the stack it traces), strace 6.1 can wait forever for a zombie thread-group leader whose
  // traced threads only it could reap: seen here, a leftover strace in wait4(SHIM, __WALL)
  // holding the shim's zombies and the stack's pid-namespace init in zap_pid_ns_processes.
  // A tracer killed outright is detached by the kernel (exit_ptrace), and its tracees run on.
  spec.parent_death_signal = SIGKILL;
  spec.new_process_group = true;
  WEDGE_ASSIGN_OR_RETURN(sys::ChildProcess child, sys::ChildProcess::Start(journal, spec));
  strace->child_.emplace(std::move(child));
  const pid_t tracer = strace->child_->pid();
  const std::int64_t deadline = started + timeout.count();
  for (;;) {
    if (AllThreadsTracedBy(traced, tracer, strace->attached_threads_)) break;
    if (strace->child_->HasExited()) {
      (void)strace->Detach();
      Result<std::string> said = sys::ReadFile(log);
      return Error("strace exited before attaching to pid " + std::to_string(traced) + ", " +
                   strace->detach_outcome_ + ": " +
                   (said.ok() ? sys::TrimTrailing(*said) : std::string("(no output)")));
    }
    if (sys::Interrupted()) return Error("interrupted while attaching strace");
    if (sys::MonotonicMillis() > deadline) {
      return Error("strace did not attach to every thread of pid " + std::to_string(traced) +
                   " within " + std::to_string(timeout.count()) + " ms");
    }
    ::usleep(2000);
  }
  strace->attach_ms_ = sys::MonotonicMillis() - started;
  return strace;
}

StraceProcess::~StraceProcess() { (void)Detach(); }

pid_t StraceProcess::pid() const { return child_ ? child_->pid() : 0; }

Status StraceProcess::Detach() {
  if (detached_ || !child_) return OkStatus();
  detached_ = true;
  (void)child_->Signal(SIGINT);
  const std::int64_t deadline = sys::MonotonicMillis() + kDetachTimeout.count();
  while (!child_->HasExited() && sys::MonotonicMillis() < deadline) {
    pollfd pfd{child_->pidfd().get(), POLLIN, 0};
    ::poll(&pfd, 1, 5);
  }
  Status status;
  if (!child_->HasExited()) {
    (void)child_->Signal(SIGKILL);
    status = Error("strace (pid " + std::to_string(child_->pid()) + ") did not detach within " +
                   std::to_string(kDetachTimeout.count()) + " ms of SIGINT; killed");
  }
  // Reaped: its journal entry is undone.
  detach_outcome_ = DescribeWait(child_->Wait());
  return status;
}

std::string StraceProcess::Describe() const {
  std::string text;
  for (const auto& arg : argv_) text += (text.empty() ? "" : " ") + arg;
  text += "; attached to " + std::to_string(attached_threads_) + " threads in " +
          std::to_string(attach_ms_) + " ms; " +
          (detached_ ? "detached, " + detach_outcome_ : std::string("still attached"));
  return text;
}

}  // namespace wedge::stack
