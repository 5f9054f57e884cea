// ChildProcess: the one way wedge starts a program of its own (a command step, qemu, strace).
//
// Start() forks, and the child makes only async-signal-safe calls until execve:
//   1. PR_SET_PDEATHSIG, then getppid() against the parent, so that a parent that died before
//      the prctl is noticed (the signal would never come);
//   2. a process group of its own, if asked;
//   3. stdin, stdout and stderr wired as the spec says;
//   4. every other inherited descriptor closed (close_range; one by one before Linux 5.9) but
//      the kept ones, so the journal's and the run lock's flocks never linger in a child that
//      has yet to learn wedge is gone;
//   5. waits for the parent's go;
//   6. working directory, rlimits, no_new_privs, signal mask emptied, the seccomp hook, execve.
// Meanwhile the parent opens a pidfd (race-free: the child cannot be reaped, so its pid cannot
// be reused, before this owner waits for it), journals the child ("process": pid, start time,
// role) with an fsync'd entry, and only then sends go. A failing step sends its stage and errno
// back over the sync socket; a successful execve closes the child's end (SOCK_CLOEXEC), which
// the parent reads as EOF: no magic exit codes.
//
// Why fork directly and not Boost.Process (Debian's 1.74), which wedge uses for short auxiliary
// commands (sys/command.h): once fork returns in the parent, its executor blocks reading its
// error pipe until the child has exec'd or failed, and only then runs the parent's handlers
// (on_success; on_fork_success is declared but never called in 1.74). An on_exec_setup handler
// can hold the child before execve, but nothing in the parent runs meanwhile to journal the pid
// and release it, short of a thread of its own for every start. What it would still give here
// is argv and environment handling.
//
// The sync channel is a socketpair, not a pipe: it carries go one way and the failure report
// the other, and send() with MSG_NOSIGNAL means a child that died early never raises SIGPIPE in
// wedge.
//
// Journal use is serialized across ChildProcess owners: a command may run on a thread of its own
// while the main thread starts or stops others, and the Journal itself is not thread-safe.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::sys {

// Where one of the child's standard descriptors (0, 1, 2) comes from.
struct ChildStream {
  enum class Kind {
    kInherit,       // wedge's own
    kNull,          // /dev/null (read-only for stdin, write-only for stdout and stderr)
    kDescriptor,    // a descriptor of wedge's (`fd`), which wedge keeps
    kPipe,          // a new pipe whose other end the parent takes (ChildProcess::TakePipe)
    kSameAsStdout,  // stderr only: the child's stdout, whatever it is
  };
  Kind kind = Kind::kInherit;
  int fd = -1;  // kDescriptor only

  static ChildStream Inherit() { return {Kind::kInherit, -1}; }
  static ChildStream Null() { return {Kind::kNull, -1}; }
  static ChildStream Descriptor(int fd) { return {Kind::kDescriptor, fd}; }
  static ChildStream Pipe() { return {Kind::kPipe, -1}; }
  static ChildStream SameAsStdout() { return {Kind::kSameAsStdout, -1}; }
};

// What to start and how to confine it.
struct ChildSpec {
  std::string role;  // the journal entry's "role": "qemu", "strace", a command step's name
  std::vector<std::string> argv;
  // The program: a path, or a name without '/' looked up in wedge's PATH (before fork, as
  // execvp would). Empty: argv[0].
  std::string executable;
  // Exactly this environment; nullopt: wedge's own.
  std::optional<std::map<std::string, std::string>> environment;
  ChildStream stdin_stream = ChildStream::Null();
  ChildStream stdout_stream = ChildStream::Inherit();
  ChildStream stderr_stream = ChildStream::Inherit();
  std::filesystem::path working_directory;  // empty: wedge's own
  // Descriptors of wedge's the child keeps open at the same numbers (3 and above); every other
  // descriptor above 2 is closed in the child.
  std::vector<int> keep_fds;
  std::vector<std::pair<int, rlimit>> rlimits;  // setrlimit, in order, after go
  bool no_new_privs = false;                    // PR_SET_NO_NEW_PRIVS
  // Runs in the child last before execve (after rlimits and no_new_privs): must make only
  // async-signal-safe calls, e.g. inject::InstallSeccompProfile. Returns 0 or an errno value.
  std::function<int()> install_seccomp;
  // Sent to the child when the thread that called Start exits (PR_SET_PDEATHSIG: the thread,
  // not the process); 0: none.
  int parent_death_signal = SIGKILL;
  bool new_process_group = false;  // setpgid(0, 0): a terminal's Ctrl-C reaches wedge only
  // An open cgroup.procs (wedge's, kept by the caller) the child joins before it runs anything,
  // so that everything it ever starts is in that cgroup; -1: wedge's own cgroup.
  int cgroup_procs_fd = -1;
};

// The step of the child's setup that failed.
enum class ChildStage {
  kProcessGroup,
  kStdio,
  kKeepFds,
  kCloseFds,
  kWorkingDirectory,
  kRlimit,
  kNoNewPrivs,
  kCgroup,
  kSignalMask,
  kSeccomp,
  kExec,
};
// The call that failed there: "setpgid", "dup2", "setrlimit", "execve", ...
std::string_view ChildStageName(ChildStage stage);

// A child's report that its setup failed before it could run the program.
struct ChildSetupFailure {
  ChildStage stage = ChildStage::kExec;
  int error = 0;  // errno
};

class ChildProcess {
 public:
  // Starts `spec` as described above and returns once the program runs (execve succeeded, or
  // the child died before it could say otherwise: its wait status tells). On an error the child
  // is gone and its journal entry undone; when the child itself reported the failure, `failure`
  // (if given) says which step and errno.
  static Result<ChildProcess> Start(Journal& journal, const ChildSpec& spec,
                                    ChildSetupFailure* failure = nullptr);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Unless reaped or released: SIGKILL, reap, and undo the journal entry.
  ~ChildProcess();

  pid_t pid() const { return pidfd_.pid(); }
  const Pidfd& pidfd() const { return pidfd_; }
  std::uint64_t journal_seq() const { return journal_seq_; }
  // The parent's end of the pipe a kPipe stream made for child descriptor `child_fd` (0, 1 or
  // 2); invalid if none, or taken already.
  UniqueFd TakePipe(int child_fd);

  // pidfd_send_signal; a child that has exited is not an error.
  Status Signal(int signo) const;
  // True once it has exited (it may not be reaped yet).
  bool HasExited() const;
  // Reaps it if it has exited; its wait status, or nullopt while it runs.
  std::optional<int> TryReap();
  // Waits until it exits (then reaps it), `deadline_ms` (MonotonicMillis) passes, or wedge is
  // interrupted; the wait status once reaped.
  std::optional<int> WaitUntil(std::int64_t deadline_ms);
  // Blocks until it exits and reaps it; the wait status.
  int Wait();
  // SIGKILL, then Wait(). Safe to repeat.
  int Kill();
  // The wait status once reaped.
  std::optional<int> wait_status() const { return wait_status_; }

  // Gives the child up: it is neither killed nor reaped here, and its journal entry stays for
  // the journal's undo. Returns its pidfd.
  Pidfd Release();

 private:
  ChildProcess(Journal& journal, Pidfd pidfd, std::uint64_t journal_seq);
  // Records a reap: the status, and the journal entry undone.
  int Reaped(int status);

  Journal* journal_ = nullptr;
  Pidfd pidfd_;
  std::uint64_t journal_seq_ = 0;
  std::array<UniqueFd, 3> pipes_;
  std::optional<int> wait_status_;
  bool released_ = false;
};

// The journal entry of a child wedge starts ("process": pid, its start time, role), appended
// and fsync'd. Start writes it before the child may exec; a child started another way (the
// sandbox's clone3) is journaled with it too, before it may run.
Result<std::uint64_t> JournalChildProcess(Journal& journal, pid_t pid, std::string_view role);
// Marks entry `seq` of JournalChildProcess undone: the child is reaped.
Status UndoChildProcessEntry(Journal& journal, std::uint64_t seq);

}  // namespace wedge::sys
