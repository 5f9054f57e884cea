#include "wedge/sys/sandbox.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "wedge/probe/task.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"

namespace wedge::sys {
namespace {

// The init's side of the control socket is always this descriptor.
constexpr int kControlFd = 3;

// Runs in the cloned child: only async-signal-safe calls until execve. Any failure is
// reported by exiting with a distinct status that the parent turns into a message.
[[noreturn]] void RunChild(int sync_fd, int control_fd, const SandboxOptions& options,
                           const char* const* argv) {
  // Drop every descriptor inherited from wedge but the two the child needs, first thing: they
  // include the journal's and the run lock's, whose flocks must end with wedge, not linger in
  // a child that has yet to notice its parent is gone (`wedge cleanup` right after a SIGKILL
  // would find the journal still held and leave it alone).
  const unsigned low = static_cast<unsigned>(std::min(sync_fd, control_fd));
  const unsigned high = static_cast<unsigned>(std::max(sync_fd, control_fd));
  if (low > 3) ::close_range(3, low - 1, 0);
  if (high > low + 1) ::close_range(low + 1, high - 1, 0);
  ::close_range(high + 1, ~0U, 0);
  char go = 0;
  if (::read(sync_fd, &go, 1) != 1) ::_exit(120);  // the parent gave up
  ::close(sync_fd);
  if (options.mount_namespace &&
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    ::_exit(121);
  }
  for (const auto& [resource, limit] : options.rlimits) {
    if (::setrlimit(resource, &limit) != 0) ::_exit(122);
  }
  if (control_fd != kControlFd) {
    if (::dup2(control_fd, kControlFd) < 0) ::_exit(123);
    ::close(control_fd);
  } else {
    ::fcntl(kControlFd, F_SETFD, 0);
  }
  ::execv(argv[0], const_cast<char* const*>(argv));
  ::_exit(124);
}

std::string ChildFailure(int status) {
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case 120:
        return "the sandbox child lost its parent before starting";
      case 121:
        return "mount('/', MS_REC|MS_PRIVATE) failed in the sandbox";
      case 122:
        return "setrlimit failed in the sandbox";
      case 123:
        return "dup2 of the control socket failed in the sandbox";
      case 124:
        return "execv of wedge-init failed in the sandbox";
      case 110:
        return "wedge-init could not mount a tmpfs over a directory in the sandbox";
      case 111:
        return "wedge-init could not keep a directory visible under its tmpfs in the sandbox";
      case 112:
        return "wedge-init could not mount a fresh /proc in the sandbox";
      case 113:
        return "wedge-init could not create its signalfd for reaping orphans";
      case 114:
        return "wedge-init could not enter its root directory";
      default:
        return "wedge-init exited with status " + std::to_string(WEXITSTATUS(status));
    }
  }
  if (WIFSIGNALED(status))
    return "wedge-init was killed by signal " + std::to_string(WTERMSIG(status));
  return "wedge-init ended with wait status " + std::to_string(status);
}

Status WriteIdMap(pid_t pid, const char* file) {
  return WriteExisting("/proc/" + std::to_string(pid) + "/" + file, "0 0 1\n");
}

Status ValidateOptions(const SandboxOptions& options) {
  if (options.mount_proc && !(options.pid_namespace && options.mount_namespace)) {
    return Error("sandbox: mount_proc needs the pid and mount namespaces");
  }
  if (options.reap_orphans && !options.mount_proc) {
    return Error("sandbox: reap_orphans needs mount_proc");
  }
  if (!options.root.empty() && (!options.mount_namespace || !options.root.is_absolute() ||
                                options.root.lexically_normal() != options.root)) {
    return Error("sandbox: root '" + options.root.string() +
                 "' needs the mount namespace and a normal absolute path");
  }
  for (const auto& bound : options.files_bound_into_root) {
    if (options.root.empty()) {
      return Error("sandbox: binding " + bound.source.string() + " needs a root to bind it into");
    }
    if (!bound.source.is_absolute() || !bound.target.is_absolute() ||
        bound.target.lexically_normal() != bound.target) {
      return Error("sandbox: binding " + bound.source.string() + " onto " + bound.target.string() +
                   " needs absolute paths (a normal target)");
    }
  }
  for (const auto& tmpfs : options.temporary_filesystems) {
    if (!options.mount_namespace) return Error("sandbox: a tmpfs needs the mount namespace");
    if (!tmpfs.target.is_absolute() || tmpfs.target.lexically_normal() != tmpfs.target) {
      return Error("sandbox: tmpfs target '" + tmpfs.target.string() + "' is not a normal path");
    }
    if (tmpfs.keep.empty()) continue;
    std::filesystem::path relative = tmpfs.keep.lexically_relative(tmpfs.target);
    if (!tmpfs.keep.is_absolute() || relative.empty() || *relative.begin() == ".." ||
        relative == ".") {
      return Error("sandbox: '" + tmpfs.keep.string() + "' is not a directory under '" +
                   tmpfs.target.string() + "'");
    }
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<Sandbox>> Sandbox::Start(Journal& journal, ScopedCgroup& cgroup,
                                                const SandboxOptions& options) {
  WEDGE_RETURN_IF_ERROR(ValidateOptions(options));
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0) {
    return ErrnoError("socketpair(AF_UNIX, SOCK_SEQPACKET)");
  }
  UniqueFd control(sockets[0]);
  UniqueFd init_control(sockets[1]);
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) return ErrnoError("pipe2()");
  UniqueFd sync_read(sync[0]);
  UniqueFd sync_write(sync[1]);

  std::vector<std::string> words = {options.init_binary.string(), "--control-fd",
                                    std::to_string(kControlFd), "--log-dir",
                                    options.log_directory.string()};
  if (!options.root.empty()) words.insert(words.end(), {"--root", options.root.string()});
  for (const auto& bound : options.files_bound_into_root) {
    words.insert(words.end(), {"--bind", bound.source.string(), bound.target.string()});
  }
  if (options.mount_proc) words.push_back("--mount-proc");
  if (options.reap_orphans) words.push_back("--reap-orphans");
  for (const auto& tmpfs : options.temporary_filesystems) {
    words.insert(words.end(), {"--tmpfs", tmpfs.target.string()});
    if (!tmpfs.keep.empty()) words.insert(words.end(), {"--keep", tmpfs.keep.string()});
  }
  std::vector<const char*> argv;
  for (const auto& word : words) argv.push_back(word.c_str());
  argv.push_back(nullptr);

  std::uint64_t flags = CLONE_PIDFD;
  if (options.user_namespace) flags |= CLONE_NEWUSER;
  if (options.pid_namespace) flags |= CLONE_NEWPID;
  if (options.mount_namespace) flags |= CLONE_NEWNS;
  int pidfd = -1;
  clone_args args{};
  args.flags = flags;
  args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return ErrnoError("clone3(CLONE_PIDFD|CLONE_NEWPID|CLONE_NEWNS...)");
  if (pid == 0) {
    // The child's copies of the parent's ends are closed (its own fd table: no CLONE_FILES),
    // without running UniqueFd's destructors. The write end above all: while the child holds
    // it, a parent killed before it writes "go" never gives the child EOF, and the child would
    // block forever holding copies of the journal's and the run lock's descriptors.
    ::close(control.Release());
    ::close(sync_write.Release());
    RunChild(sync_read.get(), init_control.get(), options, argv.data());
  }
  sync_read.Reset();
  init_control.Reset();
  Pidfd init(static_cast<pid_t>(pid), UniqueFd(pidfd));
  auto sandbox = std::unique_ptr<Sandbox>(
      new Sandbox(journal, cgroup, std::move(init), std::move(control), options.log_directory));

  // The child waits on the sync pipe: nothing runs in the sandbox until it is journaled (as
  // ChildProcess journals its children: fsync'd before they may exec), in the cgroup, and (with
  // a user namespace) has its id maps.
  WEDGE_ASSIGN_OR_RETURN(sandbox->journal_seq_,
                         JournalChildProcess(journal, static_cast<pid_t>(pid), "sandbox-init"));
  WEDGE_RETURN_IF_ERROR(cgroup.Attach(static_cast<pid_t>(pid)));
  if (options.user_namespace) {
    WEDGE_RETURN_IF_ERROR(WriteIdMap(static_cast<pid_t>(pid), "uid_map"));
    WEDGE_RETURN_IF_ERROR(WriteIdMap(static_cast<pid_t>(pid), "gid_map"));
  }
  char go = 1;
  if (::write(sync_write.get(), &go, 1) != 1) return ErrnoError("write(sandbox sync pipe)");
  return sandbox;
}

Sandbox::Sandbox(Journal& journal, ScopedCgroup& cgroup, Pidfd init, UniqueFd control,
                 std::filesystem::path log_directory)
    : journal_(journal),
      cgroup_(cgroup),
      init_(std::move(init)),
      control_(std::move(control)),
      log_directory_(std::move(log_directory)) {}

Sandbox::~Sandbox() {
  control_.Reset();
  if (!init_.HasExited()) {
    std::vector<std::string> log;
    AbortFuseConnectionsOf(cgroup_.Processes(), log);
    (void)init_.SendSignal(SIGKILL);
  }
  // Bounded: with FUSE aborted nothing in the namespace can hold the init's teardown.
  std::int64_t deadline = MonotonicMillis() + 5000;
  while (!TryReap() && MonotonicMillis() < deadline) {
    std::vector<std::string> log;
    AbortFuseConnectionsOf(cgroup_.Processes(), log);
    pollfd pfd{init_.get(), POLLIN, 0};
    ::poll(&pfd, 1, 5);
  }
  // Reaped: the journal entry is done with. An init that is not is left for the journal.
  if (reaped_ && journal_seq_ != 0) (void)UndoChildProcessEntry(journal_, journal_seq_);
}

std::optional<int> Sandbox::TryReap() {
  if (reaped_) return 0;
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(init_.get()), &info,
               WEXITED | WNOHANG) != 0) {
    if (errno == ECHILD) {
      reaped_ = true;
      return 0;
    }
    return std::nullopt;
  }
  if (info.si_pid == 0) return std::nullopt;
  reaped_ = true;
  return info.si_code == CLD_EXITED ? (info.si_status << 8) : info.si_status;
}

Result<std::string> Sandbox::Request(const std::string& request, const std::string& label,
                                     int timeout_ms) {
  if (::send(control_.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    return ErrnoError("send(wedge-init control socket)");
  }
  std::int64_t deadline = MonotonicMillis() + timeout_ms;
  char reply[4096];
  for (;;) {
    if (Interrupted()) return Error("interrupted while waiting for " + label + " to start");
    int left = static_cast<int>(deadline - MonotonicMillis());
    if (left <= 0) {
      return Error(label + " was not ready within " + std::to_string(timeout_ms) + " ms (see " +
                   (log_directory_ / (label + ".log")).string() + ")");
    }
    pollfd pfd{control_.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, std::min(left, 50));
    if (ready < 0 && errno != EINTR) return ErrnoError("poll(wedge-init control socket)");
    if (ready <= 0) continue;
    ssize_t n = ::recv(control_.get(), reply, sizeof reply - 1, 0);
    if (n < 0) return ErrnoError("recv(wedge-init control socket)");
    if (n == 0) {
      std::optional<int> status = TryReap();
      return Error("wedge-init went away while starting " + label +
                   (status ? ": " + ChildFailure(*status) : std::string()));
    }
    std::string text(reply, static_cast<size_t>(n));
    if (text.rfind("failed ", 0) == 0) {
      return Error("starting " + label + " failed: " + text.substr(7) + " (see " +
                   (log_directory_ / (label + ".log")).string() + ")");
    }
    return text;
  }
}

Result<pid_t> Sandbox::HostPidOf(pid_t ns_pid, const std::string& label) const {
  // The child of the init whose innermost NSpid matches.
  for (pid_t child : cgroup_.Processes()) {
    Result<probe::TaskStatus> status = probe::ReadStatus(child, child);
    if (!status.ok()) continue;
    const std::vector<pid_t>& ids = status->ns_pids;
    // Without a pid namespace NSpid has one entry, and the two pids are the same.
    if (!ids.empty() && ids.back() == ns_pid && ids.front() != init_.pid()) return ids.front();
  }
  return Error("could not find " + label + " (pid " + std::to_string(ns_pid) + " in the sandbox)");
}

Result<SpawnedProcess> Sandbox::Spawn(const std::string& label,
                                      const std::vector<std::string>& argv, int timeout_ms) {
  // Request: "spawn\0LABEL\0ARG0\0ARG1..." in one datagram.
  std::string request = "spawn";
  request.push_back('\0');
  request += label;
  for (const auto& arg : argv) {
    request.push_back('\0');
    request += arg;
  }
  WEDGE_ASSIGN_OR_RETURN(std::string text, Request(request, label, timeout_ms));
  // Reply: "ready NSPID LINE".
  if (text.rfind("ready ", 0) != 0) return Error("wedge-init: unexpected reply '" + text + "'");
  SpawnedProcess spawned;
  spawned.label = label;
  spawned.log_file = log_directory_ / (label + ".log");
  size_t space = text.find(' ', 6);
  spawned.ns_pid = static_cast<pid_t>(std::stol(text.substr(6, space - 6)));
  spawned.ready_line = space == std::string::npos ? "" : text.substr(space + 1);
  WEDGE_ASSIGN_OR_RETURN(spawned.pid, HostPidOf(spawned.ns_pid, label));
  return spawned;
}

Result<SpawnedProcess> Sandbox::Exec(const std::string& label, const std::vector<std::string>& argv,
                                     const std::map<std::string, std::string>& environment,
                                     int timeout_ms) {
  if (argv.empty()) return Error("sandbox: nothing to exec for " + label);
  // Request: "exec\0LABEL\0ARGC\0ARG0...\0NAME=VALUE..." in one datagram.
  std::string request = "exec";
  for (const std::string& word : {label, std::to_string(argv.size())}) {
    request.push_back('\0');
    request += word;
  }
  for (const auto& arg : argv) {
    request.push_back('\0');
    request += arg;
  }
  for (const auto& [name, value] : environment) {
    request.push_back('\0');
    request += name + "=" + value;
  }
  WEDGE_ASSIGN_OR_RETURN(std::string text, Request(request, label, timeout_ms));
  // Reply: "started NSPID".
  if (text.rfind("started ", 0) != 0) return Error("wedge-init: unexpected reply '" + text + "'");
  SpawnedProcess spawned;
  spawned.label = label;
  spawned.log_file = log_directory_ / (label + ".log");
  spawned.ns_pid = static_cast<pid_t>(std::stol(text.substr(8)));
  WEDGE_ASSIGN_OR_RETURN(spawned.pid, HostPidOf(spawned.ns_pid, label));
  return spawned;
}

Result<bool> Sandbox::Reap(const SpawnedProcess& child, int timeout_ms) {
  std::string request = "reap";
  request.push_back('\0');
  request += std::to_string(child.ns_pid);
  WEDGE_ASSIGN_OR_RETURN(std::string text, Request(request, child.label, timeout_ms));
  // "unknown": not a child the init still holds, so reaped by an earlier request.
  if (text == "running") return false;
  if (text.rfind("reaped", 0) == 0 || text == "unknown") return true;
  return Error("wedge-init: unexpected reply '" + text + "' to reaping " + child.label);
}

}  // namespace wedge::sys
