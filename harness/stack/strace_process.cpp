#include "wedge/stack/strace_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <system_error>

#include "wedge/base/unique_fd.h"
#include "wedge/probe/task.h"
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

Result<std::unique_ptr<StraceProcess>> StraceProcess::Attach(const std::vector<std::string>& args,
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
  UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) return ErrnoError("open('" + log.string() + "')");
  std::vector<std::string> argv_storage = strace->argv_;
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) return ErrnoError("fork() for strace");
  if (child == 0) {
    // Should wedge die without detaching it, strace dies at once: SIGKILL, not SIGTERM. On
    // SIGTERM strace detaches by itself, and when `wedge cleanup` kills its tracees meanwhile
    // (the stack it traces), strace 6.1 can wait forever for a zombie thread-group leader whose
    // traced threads only it could reap: seen here, a leftover strace in wait4(SHIM, __WALL)
    // holding the shim's zombies and the stack's pid-namespace init in zap_pid_ns_processes.
    // A tracer killed outright is detached by the kernel (exit_ptrace), and its tracees run on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::setpgid(0, 0);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(log_fd.get(), STDOUT_FILENO);
    ::dup2(log_fd.get(), STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(strace_path.c_str(), argv.data());
    ::_exit(127);
  }
  strace->pid_ = child;
  Result<sys::Pidfd> pidfd = sys::Pidfd::Open(child);
  if (!pidfd.ok()) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    strace->detached_ = true;
    return pidfd.error();
  }
  strace->pidfd_ = std::move(*pidfd);
  const std::int64_t deadline = started + timeout.count();
  for (;;) {
    if (AllThreadsTracedBy(traced, child, strace->attached_threads_)) break;
    if (strace->pidfd_.HasExited()) {
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

Status StraceProcess::Detach() {
  if (detached_ || pid_ == 0) return OkStatus();
  detached_ = true;
  (void)pidfd_.SendSignal(SIGINT);
  const std::int64_t deadline = sys::MonotonicMillis() + kDetachTimeout.count();
  while (!pidfd_.HasExited() && sys::MonotonicMillis() < deadline) {
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, 5);
  }
  Status status;
  if (!pidfd_.HasExited()) {
    (void)pidfd_.SendSignal(SIGKILL);
    status = Error("strace (pid " + std::to_string(pid_) + ") did not detach within " +
                   std::to_string(kDetachTimeout.count()) + " ms of SIGINT; killed");
  }
  int wait_status = 0;
  if (::waitpid(pid_, &wait_status, 0) == pid_) detach_outcome_ = DescribeWait(wait_status);
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
