#include "wedge/sys/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>

namespace wedge::sys {
namespace {

std::mutex& JournalMutex() {
  static std::mutex mutex;
  return mutex;
}

// What a child whose setup failed sends back: 8 bytes, one write, read whole.
struct SetupReport {
  int stage = 0;
  int error = 0;
};

// A descriptor numbered 3 or above (close-on-exec): the child's dup2 onto 0, 1 and 2 can then
// never overwrite a descriptor it has yet to duplicate, even when wedge's own 0, 1 or 2 were
// closed and reused.
Result<UniqueFd> AboveStdio(UniqueFd fd) {
  if (fd.get() >= 3) return fd;
  UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!moved.valid()) return ErrnoError("fcntl(" + std::to_string(fd.get()) + ", F_DUPFD_CLOEXEC)");
  return moved;
}

Result<UniqueFd> OpenAboveStdio(const char* path, int flags) {
  UniqueFd fd(::open(path, flags | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open('" + std::string(path) + "')");
  return AboveStdio(std::move(fd));
}

// The program execve runs: a path as given, or a name looked up in wedge's PATH as execvp
// would (a missing PATH means confstr's default, "/bin:/usr/bin").
Result<std::string> ResolveExecutable(const std::string& program) {
  if (program.empty()) return Error("ChildProcess::Start: no program");
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/bin:/usr/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return Error(program + ": not found in PATH");
}

// Everything the child needs, prepared before fork: after it, only async-signal-safe calls.
struct ChildPlan {
  pid_t parent = 0;
  int channel = -1;              // the child's end of the sync socket
  std::array<int, 3> sources{};  // dup2'd onto 0, 1, 2; -1: left as inherited
  bool stderr_same_as_stdout = false;
  std::vector<int> keep;           // sorted: spec.keep_fds and the channel
  std::vector<int> clear_cloexec;  // spec.keep_fds
  long open_max = 0;               // for closing one by one without close_range
  int parent_death_signal = 0;
  bool new_process_group = false;
  int cgroup_procs_fd = -1;  // spec.cgroup_procs_fd, kept until the child joins the cgroup
  const char* working_directory = nullptr;
  const std::vector<std::pair<int, rlimit>>* rlimits = nullptr;
  bool no_new_privs = false;
  const std::function<int()>* install_seccomp = nullptr;
  sigset_t empty_mask{};
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

[[noreturn]] void ReportAndExit(int channel, ChildStage stage, int error) {
  const SetupReport report{static_cast<int>(stage), error};
  (void)!::write(channel, &report, sizeof report);
  ::_exit(127);
}

// Closes [low, high], or up to open_max where close_range(2) (Linux 5.9) is missing.
int CloseRange(unsigned low, unsigned high, long open_max) {
  if (::close_range(low, high, 0) == 0) return 0;
  if (errno != ENOSYS) return errno;
  const long last =
      std::min<long>(static_cast<long>(std::min<unsigned>(high, INT_MAX)), open_max - 1);
  for (long fd = low; fd <= last; ++fd) ::close(static_cast<int>(fd));
  return 0;
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  const int channel = plan.channel;
  if (plan.parent_death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, plan.parent_death_signal);
    // Reparented already: the parent died before the prctl, and the signal will never come.
    if (::getppid() != plan.parent) ::_exit(127);
  }
  if (plan.new_process_group && ::setpgid(0, 0) != 0) {
    ReportAndExit(channel, ChildStage::kProcessGroup, errno);
  }
  for (int target = 0; target < 3; ++target) {
    if (plan.sources[target] >= 0 && ::dup2(plan.sources[target], target) < 0) {
      ReportAndExit(channel, ChildStage::kStdio, errno);
    }
  }
  if (plan.stderr_same_as_stdout && ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) {
    ReportAndExit(channel, ChildStage::kStdio, errno);
  }
  for (int fd : plan.clear_cloexec) {
    if (::fcntl(fd, F_SETFD, 0) != 0) ReportAndExit(channel, ChildStage::kKeepFds, errno);
  }
  // Closed outright, not marked CLOSE_RANGE_CLOEXEC: the child may wait for go a while, and
  // must not hold the journal's or the run lock's flock meanwhile.
  unsigned low = 3;
  for (int fd : plan.keep) {
    const unsigned kept = static_cast<unsigned>(fd);
    if (kept > low) {
      if (int error = CloseRange(low, kept - 1, plan.open_max); error != 0) {
        ReportAndExit(channel, ChildStage::kCloseFds, error);
      }
    }
    low = std::max(low, kept + 1);
  }
  if (int error = CloseRange(low, ~0U, plan.open_max); error != 0) {
    ReportAndExit(channel, ChildStage::kCloseFds, error);
  }
  // Nothing runs until the parent has journaled this pid: go is one byte; EOF means the parent
  // gave up (or died), and the child leaves without starting anything.
  char go = 0;
  ssize_t n;
  do {
    n = ::read(channel, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(127);
  if (plan.cgroup_procs_fd >= 0) {
    if (::write(plan.cgroup_procs_fd, "0", 1) != 1) {
      ReportAndExit(channel, ChildStage::kCgroup, errno);
    }
    ::close(plan.cgroup_procs_fd);
  }
  if (plan.working_directory != nullptr && ::chdir(plan.working_directory) != 0) {
    ReportAndExit(channel, ChildStage::kWorkingDirectory, errno);
  }
  for (const auto& [resource, limit] : *plan.rlimits) {
    if (::setrlimit(resource, &limit) != 0) ReportAndExit(channel, ChildStage::kRlimit, errno);
  }
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    ReportAndExit(channel, ChildStage::kNoNewPrivs, errno);
  }
  // The signal mask survives execve; the thread that forked may have had signals blocked.
  if (::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr) != 0) {
    ReportAndExit(channel, ChildStage::kSignalMask, errno);
  }
  if (*plan.install_seccomp) {
    if (int error = (*plan.install_seccomp)(); error != 0) {
      ReportAndExit(channel, ChildStage::kSeccomp, error);
    }
  }
  ::execve(plan.path, plan.argv, plan.envp);
  ReportAndExit(channel, ChildStage::kExec, errno);
}

void KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string_view ChildStageName(ChildStage stage) {
  switch (stage) {
    case ChildStage::kProcessGroup:
      return "setpgid";
    case ChildStage::kStdio:
      return "dup2";
    case ChildStage::kKeepFds:
      return "fcntl(F_SETFD)";
    case ChildStage::kCloseFds:
      return "close_range";
    case ChildStage::kWorkingDirectory:
      return "chdir";
    case ChildStage::kRlimit:
      return "setrlimit";
    case ChildStage::kNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case ChildStage::kCgroup:
      return "write(cgroup.procs)";
    case ChildStage::kSignalMask:
      return "sigprocmask";
    case ChildStage::kSeccomp:
      return "seccomp";
    case ChildStage::kExec:
      return "execve";
  }
  return "?";
}

Result<std::uint64_t> JournalChildProcess(Journal& journal, pid_t pid, std::string_view role) {
  // With the start time, undo never kills a process that has since taken the pid over.
  std::optional<std::uint64_t> start_time = ProcessStartTime(pid);
  if (!start_time) {
    return Error("journaling " + std::string(role) + ": no start time for pid " +
                 std::to_string(pid));
  }
  std::lock_guard lock(JournalMutex());
  return journal.Record(ProcessChange{pid, *start_time, std::string(role)});
}

Status UndoChildProcessEntry(Journal& journal, std::uint64_t seq) {
  std::lock_guard lock(JournalMutex());
  return journal.Undo(seq);
}

Result<ChildProcess> ChildProcess::Start(Journal& journal, const ChildSpec& spec,
                                         ChildSetupFailure* failure) {
  if (spec.argv.empty()) return Error("ChildProcess::Start: empty argv");
  const std::string& shown = spec.argv.front();
  WEDGE_ASSIGN_OR_RETURN(const std::string path,
                         ResolveExecutable(spec.executable.empty() ? shown : spec.executable));
  ChildPlan plan;
  plan.parent = ::getpid();

  std::vector<std::string> argv_storage = spec.argv;
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  if (spec.environment) {
    for (const auto& [name, value] : *spec.environment) env_storage.push_back(name + "=" + value);
    for (auto& entry : env_storage) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = spec.environment ? envp.data() : environ;

  // The child's standard descriptors, each from a descriptor above 2 that is closed here after
  // fork (and in the child by close_range once it is duplicated).
  std::array<UniqueFd, 3> child_ends;
  std::array<UniqueFd, 3> parent_ends;
  const std::array<const ChildStream*, 3> streams = {&spec.stdin_stream, &spec.stdout_stream,
                                                     &spec.stderr_stream};
  for (int target = 0; target < 3; ++target) {
    const ChildStream& stream = *streams[target];
    switch (stream.kind) {
      case ChildStream::Kind::kInherit:
        break;
      case ChildStream::Kind::kNull: {
        WEDGE_ASSIGN_OR_RETURN(child_ends[target],
                               OpenAboveStdio("/dev/null", target == 0 ? O_RDONLY : O_WRONLY));
        break;
      }
      case ChildStream::Kind::kDescriptor: {
        UniqueFd copy(::fcntl(stream.fd, F_DUPFD_CLOEXEC, 3));
        if (!copy.valid()) {
          return ErrnoError("fcntl(" + std::to_string(stream.fd) + ", F_DUPFD_CLOEXEC) for " +
                            spec.role);
        }
        child_ends[target] = std::move(copy);
        break;
      }
      case ChildStream::Kind::kPipe: {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) return ErrnoError("pipe2() for " + spec.role);
        UniqueFd read_end(ends[0]);
        UniqueFd write_end(ends[1]);
        WEDGE_ASSIGN_OR_RETURN(child_ends[target],
                               AboveStdio(std::move(target == 0 ? read_end : write_end)));
        WEDGE_ASSIGN_OR_RETURN(parent_ends[target],
                               AboveStdio(std::move(target == 0 ? write_end : read_end)));
        break;
      }
      case ChildStream::Kind::kSameAsStdout:
        if (target != STDERR_FILENO) {
          return Error("ChildProcess::Start: only stderr can be the same as stdout");
        }
        plan.stderr_same_as_stdout = true;
        break;
    }
    plan.sources[target] = child_ends[target].valid() ? child_ends[target].get() : -1;
  }

  int channel_ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel_ends) != 0) {
    return ErrnoError("socketpair(AF_UNIX) for " + spec.role);
  }
  UniqueFd channel_parent_end(channel_ends[0]);
  UniqueFd channel_child_end(channel_ends[1]);
  WEDGE_ASSIGN_OR_RETURN(UniqueFd channel, AboveStdio(std::move(channel_parent_end)));
  WEDGE_ASSIGN_OR_RETURN(UniqueFd child_channel, AboveStdio(std::move(channel_child_end)));
  plan.channel = child_channel.get();

  for (int fd : spec.keep_fds) {
    if (fd < 3 || ::fcntl(fd, F_GETFD) < 0) {
      return Error("ChildProcess::Start: cannot keep descriptor " + std::to_string(fd) + " for " +
                   spec.role);
    }
  }
  plan.clear_cloexec = spec.keep_fds;
  plan.keep = spec.keep_fds;
  plan.keep.push_back(plan.channel);
  plan.cgroup_procs_fd = spec.cgroup_procs_fd;
  if (spec.cgroup_procs_fd >= 0) plan.keep.push_back(spec.cgroup_procs_fd);
  std::sort(plan.keep.begin(), plan.keep.end());
  plan.open_max = ::sysconf(_SC_OPEN_MAX);
  if (plan.open_max <= 0) plan.open_max = 1 << 20;
  plan.parent_death_signal = spec.parent_death_signal;
  plan.new_process_group = spec.new_process_group;
  const std::string working_directory = spec.working_directory.string();
  plan.working_directory = working_directory.empty() ? nullptr : working_directory.c_str();
  plan.rlimits = &spec.rlimits;
  plan.no_new_privs = spec.no_new_privs;
  plan.install_seccomp = &spec.install_seccomp;
  sigemptyset(&plan.empty_mask);

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork() for " + spec.role);
  if (pid == 0) RunChild(plan);
  child_channel.Reset();
  for (UniqueFd& end : child_ends) end.Reset();

  // pidfd_open cannot race pid reuse here: the child stays ours, unreaped, until this owner
  // waits for it. And the child waits for go, so nothing has run yet.
  Result<Pidfd> pidfd = Pidfd::Open(pid);
  if (!pidfd.ok()) {
    KillAndReap(pid);
    return pidfd.error();
  }
  Result<std::uint64_t> seq = JournalChildProcess(journal, pid, spec.role);
  if (!seq.ok()) {
    KillAndReap(pid);
    return seq.error();
  }
  // From here the owner kills, reaps and unjournals the child on every path.
  ChildProcess child(journal, std::move(*pidfd), *seq);
  child.pipes_ = std::move(parent_ends);
  const char go = 1;
  if (::send(channel.get(), &go, 1, MSG_NOSIGNAL) != 1) {
    return ErrnoError("send(go to " + spec.role + " pid " + std::to_string(pid) + ")");
  }
  SetupReport report;
  for (;;) {
    const ssize_t n = ::recv(channel.get(), &report, sizeof report, MSG_WAITALL);
    if (n == 0) return child;  // execve closed the child's end: the program runs
    if (n == static_cast<ssize_t>(sizeof report)) break;
    if (n < 0 && errno == EINTR) {
      if (Interrupted() != 0) return Error("interrupted while starting " + shown);
      continue;
    }
    if (n < 0) return ErrnoError("recv(sync socket of " + spec.role + ")");
    return Error("starting " + shown + ": a torn report from the child");
  }
  child.Wait();
  const ChildStage stage = static_cast<ChildStage>(report.stage);
  if (failure != nullptr) *failure = {stage, report.error};
  return ErrnoError("starting " + shown + ": " + std::string(ChildStageName(stage)), report.error);
}

ChildProcess::ChildProcess(Journal& journal, Pidfd pidfd, std::uint64_t journal_seq)
    : journal_(&journal), pidfd_(std::move(pidfd)), journal_seq_(journal_seq) {}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : journal_(std::exchange(other.journal_, nullptr)),
      pidfd_(std::move(other.pidfd_)),
      journal_seq_(std::exchange(other.journal_seq_, 0)),
      pipes_(std::move(other.pipes_)),
      wait_status_(other.wait_status_),
      released_(std::exchange(other.released_, true)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (!released_ && !wait_status_ && pidfd_.valid()) Kill();
    journal_ = std::exchange(other.journal_, nullptr);
    pidfd_ = std::move(other.pidfd_);
    journal_seq_ = std::exchange(other.journal_seq_, 0);
    pipes_ = std::move(other.pipes_);
    wait_status_ = other.wait_status_;
    released_ = std::exchange(other.released_, true);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (!released_ && !wait_status_ && pidfd_.valid()) Kill();
}

UniqueFd ChildProcess::TakePipe(int child_fd) {
  if (child_fd < 0 || child_fd > 2) return UniqueFd();
  return std::move(pipes_[static_cast<size_t>(child_fd)]);
}

Status ChildProcess::Signal(int signo) const {
  if (wait_status_) return OkStatus();
  return pidfd_.SendSignal(signo);
}

bool ChildProcess::HasExited() const { return wait_status_.has_value() || pidfd_.HasExited(); }

int ChildProcess::Reaped(int status) {
  wait_status_ = status;
  if (journal_ != nullptr && journal_seq_ != 0) {
    (void)UndoChildProcessEntry(*journal_, journal_seq_);
  }
  return status;
}

std::optional<int> ChildProcess::TryReap() {
  if (wait_status_) return wait_status_;
  int status = 0;
  const pid_t reaped = ::waitpid(pidfd_.pid(), &status, WNOHANG);
  if (reaped == pidfd_.pid()) return Reaped(status);
  if (reaped < 0 && errno == ECHILD) return Reaped(0);  // not ours to wait for any more
  return std::nullopt;
}

std::optional<int> ChildProcess::WaitUntil(std::int64_t deadline_ms) {
  for (;;) {
    if (std::optional<int> status = TryReap()) return status;
    const std::int64_t left = deadline_ms - MonotonicMillis();
    if (left <= 0 || Interrupted() != 0) return std::nullopt;
    // A pidfd polls readable when its process exits; short slices notice SIGINT promptly.
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left, 100)));
  }
}

int ChildProcess::Wait() {
  if (wait_status_) return *wait_status_;
  int status = 0;
  while (::waitpid(pidfd_.pid(), &status, 0) < 0) {
    if (errno != EINTR) return Reaped(0);
  }
  return Reaped(status);
}

int ChildProcess::Kill() {
  if (wait_status_) return *wait_status_;
  (void)pidfd_.SendSignal(SIGKILL);
  return Wait();
}

Pidfd ChildProcess::Release() {
  released_ = true;
  return std::move(pidfd_);
}

}  // namespace wedge::sys
