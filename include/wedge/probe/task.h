// What wedge reads about one task (thread) and one process from /proc.
//
// The Parse* functions take the text of one /proc file and are pure, so they are unit-tested on
// recorded text from several kernels; the Read* functions read a live task.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/probe/signals.h"

namespace wedge::probe {

// /proc/PID/task/TID/status, the fields wedge uses.
struct TaskStatus {
  std::string name;        // Name: (comm, at most 15 bytes)
  char state = '?';        // first letter of State: R S D T t Z X I P
  std::string state_text;  // the whole State: value, e.g. "D (disk sleep)"
  pid_t tgid = 0;
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t tracer_pid = 0;        // TracerPid: 0 when not ptraced
  std::vector<pid_t> ns_pids;  // NSpid: outermost namespace first; empty before Linux 4.1
  int threads = 0;
  SignalSet sig_pnd;  // SigPnd: pending for this thread
  SignalSet shd_pnd;  // ShdPnd: pending for the whole thread group
  SignalSet sig_blk;
  SignalSet sig_ign;
  SignalSet sig_cgt;
  std::uint64_t cap_eff = 0;  // CapEff: effective capabilities, bit N = capability N
  std::uint64_t voluntary_ctxt_switches = 0;
  std::uint64_t nonvoluntary_ctxt_switches = 0;
};
Result<TaskStatus> ParseStatus(std::string_view text);

// /proc/PID/task/TID/stat, the fields wedge uses. comm may hold spaces and parentheses.
struct TaskStat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  std::uint32_t flags = 0;  // PF_* flags (field 9)
  std::uint64_t utime = 0;  // clock ticks
  std::uint64_t stime = 0;
  std::uint64_t start_time = 0;  // clock ticks after boot: with the pid, identifies a process
};
Result<TaskStat> ParseStat(std::string_view text);

// /proc/PID/comm: the process's name (its leader's comm, at most 15 bytes), newline dropped.
std::string ParseComm(std::string_view text);

// /proc/PID/cmdline: the argv, one NUL-terminated string each. A process that rewrote its
// argv (setproctitle) may leave one string without the NUL; it is still one argument.
std::vector<std::string> ParseCmdline(std::string_view text);

// One line of /proc/PID/cgroup: "4:pids:/docker/ID" (v1), "0::/system.slice/x" (v2), or
// "1:name=systemd:/..." (a named v1 hierarchy, controllers {"name=systemd"}).
struct CgroupMembership {
  int hierarchy_id = 0;
  std::vector<std::string> controllers;  // empty for the v2 hierarchy
  std::string path;                      // relative to the hierarchy's root, starts with '/'
};
// Lines that do not have the three fields are left out.
std::vector<CgroupMembership> ParseCgroups(std::string_view text);
// The path in the pids hierarchy: the v1 line naming "pids", else the v2 line; nullopt if none.
std::optional<std::string> PidsCgroupPath(const std::vector<CgroupMembership>& cgroups);

// Names of the PF_* bits wedge knows (PF_EXITING, PF_KTHREAD, ...) set in `flags`.
std::vector<std::string> TaskFlagNames(std::uint32_t flags);
// The bit of a PF_* flag name, or nullopt for a name wedge does not know.
std::optional<std::uint32_t> TaskFlagBit(std::string_view name);

// One line of /proc/PID/task/TID/stack: "[<0>] fuse_flush+0x155/0x190 [fuse]".
struct StackFrame {
  std::string function;  // "fuse_flush" as printed, suffixes such as ".isra.0" kept
  std::string offset;    // "0x155/0x190", empty when the kernel printed none
  std::string module;    // "fuse" for "[fuse]", else empty
  std::string raw;       // the line as read
};
// Ignores the "[<ffffffffffffffff>] 0xffffffffffffffff" terminator older kernels print.
std::vector<StackFrame> ParseStack(std::string_view text);

// /proc/PID/task/TID/syscall.
struct SyscallState {
  enum class Kind { kInSyscall, kNotInSyscall, kRunning };
  Kind kind = Kind::kRunning;  // "running", "-1 sp pc", or "nr args... sp pc"
  long number = -1;
  std::array<std::uint64_t, 6> args{};
  std::uint64_t stack_pointer = 0;
  std::uint64_t program_counter = 0;
};
Result<SyscallState> ParseSyscall(std::string_view text);

// One open file descriptor: the link target and what /proc/PID/fdinfo/FD says.
struct FileDescriptor {
  int fd = -1;
  std::string target;                       // readlink of /proc/PID/fd/FD, e.g. "pipe:[12345]"
  std::optional<std::uint64_t> pipe_inode;  // set when target is "pipe:[N]"
  std::uint64_t pos = 0;                    // fdinfo "pos:"
  std::uint32_t flags = 0;                  // fdinfo "flags:" (octal in the file)
  std::optional<int> pipe_unread_bytes;     // FIONREAD on a pidfd_getfd copy, when taken
  std::optional<int> pipe_capacity_bytes;   // F_GETPIPE_SZ on the same copy
  // The first unread bytes (at most kPipeHeadBytes), duplicated with tee(2): not consumed.
  std::optional<std::string> pipe_head;
};
inline constexpr int kPipeHeadBytes = 256;
// Parses "pipe:[12345]" to 12345.
std::optional<std::uint64_t> ParsePipeInode(std::string_view link_target);
// Fills pos and flags from the text of /proc/PID/fdinfo/FD.
Status ParseFdinfo(std::string_view text, FileDescriptor& fd);

// Everything wedge captures about one task.
struct TaskSnapshot {
  pid_t tid = 0;
  TaskStatus status;
  TaskStat stat;
  std::string wchan;  // "0" or empty when running
  std::vector<StackFrame> stack;
  std::string stack_text;               // raw, for the evidence bundle
  std::optional<SyscallState> syscall;  // unreadable for zombies
  std::string syscall_text;
};

// One process (thread group) and its tasks.
struct ProcessSnapshot {
  pid_t pid = 0;
  std::string label;  // the scenario's name for it ("sandbox-init", "daemon"); empty if none
  std::vector<TaskSnapshot> tasks;  // the thread-group leader first
  std::vector<FileDescriptor> fds;  // empty for zombies
  std::vector<pid_t> children;
};

// A set of processes captured together, e.g. everything in a scenario's cgroup.
struct TreeSnapshot {
  std::vector<ProcessSnapshot> processes;
  std::int64_t captured_at_ms = 0;  // CLOCK_MONOTONIC
};

// Reads and parses /proc/PID/task/TID/status alone (the leader's is the process's).
Result<TaskStatus> ReadStatus(pid_t pid, pid_t tid, std::string_view proc_root = "/proc");
// Reads and parses /proc/PID/task/TID/stat alone (the leader's comm, state, ppid and start time
// are the process's).
Result<TaskStat> ReadStat(pid_t pid, pid_t tid, std::string_view proc_root = "/proc");
// The parent of process `pid` (0 for a process whose parent is outside its pid namespace).
Result<pid_t> ReadParent(pid_t pid, std::string_view proc_root = "/proc");
// Reads and parses /proc/PID/comm.
Result<std::string> ReadComm(pid_t pid, std::string_view proc_root = "/proc");
// Reads and parses /proc/PID/cmdline (empty for a zombie or a kernel thread).
Result<std::vector<std::string>> ReadCmdline(pid_t pid, std::string_view proc_root = "/proc");
// Reads and parses /proc/PID/cgroup.
Result<std::vector<CgroupMembership>> ReadCgroups(pid_t pid, std::string_view proc_root = "/proc");
// Reads one task of a live process. `proc_root` is "/proc" except in tests.
Result<TaskSnapshot> ReadTask(pid_t pid, pid_t tid, std::string_view proc_root = "/proc");
// Reads a process, all of its tasks and its fd table. With `peek_pipes`, also measures each pipe
// fd through a pidfd_getfd copy: unread bytes (FIONREAD), capacity (F_GETPIPE_SZ) and the first
// unread bytes (tee(2) into a pipe of wedge's own; nothing is consumed); peeking uses
// the live pid, so it is skipped unless `proc_root` is "/proc". Threads that exit meanwhile are
// left out; the process itself being gone is an error.
Result<ProcessSnapshot> ReadProcess(pid_t pid, bool peek_pipes = false,
                                    std::string_view proc_root = "/proc");
// Every process in /proc, sorted; empty when /proc cannot be read.
std::vector<pid_t> ListProcesses(std::string_view proc_root = "/proc");
// The tasks (threads) of process `pid`, ascending; empty when it is gone.
std::vector<pid_t> ListTasks(pid_t pid, std::string_view proc_root = "/proc");
// The children of `pid` (all its threads), from /proc/PID/task/TID/children.
std::vector<pid_t> ReadChildren(pid_t pid, std::string_view proc_root = "/proc");
// `pid` and all its descendants, parents before children.
std::vector<pid_t> ListDescendants(pid_t root, std::string_view proc_root = "/proc");
// Reads every process in `pids`; processes that vanished meanwhile are left out.
TreeSnapshot ReadProcesses(const std::vector<pid_t>& pids, bool peek_pipes = false,
                           std::string_view proc_root = "/proc");

// A cheap per-task fingerprint for stall detection: if it is equal across samples spanning the
// settle window, nothing in the tree ran. Reads only stat, status (switch counts) and wchan.
struct TaskActivity {
  pid_t tid = 0;
  char state = '?';
  std::uint64_t cpu_ticks = 0;         // utime + stime
  std::uint64_t context_switches = 0;  // voluntary + nonvoluntary
  std::string wchan;
  bool operator==(const TaskActivity&) const = default;
};
// Activity of every task of every process in `pids`, sorted by tid.
std::vector<TaskActivity> ReadActivity(const std::vector<pid_t>& pids,
                                       std::string_view proc_root = "/proc");

// Not running and not stopped: S, D, Z or I.
bool IsAsleep(char state);

// How wedge recognises a stall, fed one ReadActivity sample at a time: every task asleep, and
// every task's state, wchan, CPU time and context-switch count identical across every sample
// of the last `settle_ms`. A stall is observed, not assumed. An empty sample never settles.
class SettleWatch {
 public:
  SettleWatch(std::int64_t settle_ms, std::int64_t now_ms)
      : settle_ms_(settle_ms), quiet_since_ms_(now_ms) {}
  // True once the samples have been asleep and unchanged for settle_ms.
  bool Settled(std::vector<TaskActivity> sample, std::int64_t now_ms);
  // When the current quiet period began.
  std::int64_t quiet_since_ms() const { return quiet_since_ms_; }

 private:
  std::int64_t settle_ms_;
  std::int64_t quiet_since_ms_;
  std::vector<TaskActivity> previous_;
};

}  // namespace wedge::probe
