// A host check of the tests' own: what the scenario tests and the soak bench judge wedge's
// cleanup by. It reads /proc and /sys directly and uses none of wedge's code, so that a fault of
// wedge's own host check (runner::CaptureHostState) cannot hide a leak from it. Where wedge lists
// FUSE connections through fusectl, which it unmounts before and after every run, this counts
// the holders of /dev/fuse and the FUSE entries of every mount namespace.
//
// The parsers take text, so that the unit tests feed them recorded /proc files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wedge::testing {

// The fields of /proc/PID/task/TID/stat the snapshot needs.
struct TaskStat {
  pid_t tid = 0;
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  unsigned long flags = 0;  // PF_* bits
};
// Parses a stat line; the comm may hold spaces and ')' (it ends at the last ')').
std::optional<TaskStat> ParseTaskStat(std::string_view text);
// A kernel thread (PF_KTHREAD): never a program wedge started.
bool IsKernelThread(const TaskStat& stat);

// One line of /proc/PID/mountinfo: the mount point (octal escapes undone) and the fstype.
struct MountEntry {
  std::string mount_point;
  std::string fstype;
  std::string source;
};
std::vector<MountEntry> ParseMountInfo(std::string_view text);
// fuse, fuseblk, fuse.SUBTYPE (a FUSE connection) and fusectl (the control filesystem).
bool IsFuseType(std::string_view fstype);
// Whether `path` is `directory` or lies under it (lexically: no links are followed).
bool IsUnder(const std::string& path, const std::filesystem::path& directory);

// The programs of the container stack and of wedge, by comm (which the kernel cuts to 15
// characters, so containerd-shim-runc-v2 shows as containerd-shim): dockerd, containerd,
// containerd-shim*, runc, runc:[*] (runc init's stages), strace, qemu-system-*, wedge-fuse,
// wedge-init and wedge. The test programs themselves (wedge_scenario_tests, wedge_soak) are not.
bool IsStackOrWedgeProgram(std::string_view comm);

// The sysctls a scenario may set (the loader's allowlist), read from /proc/sys.
const std::vector<std::string>& WatchedSysctls();

// The state directory wedge uses: $WEDGE_STATE_DIR, or /run/wedge.
std::filesystem::path StateDirectory();

struct HostSnapshot {
  // "TID(comm)" of every task in D, kernel threads aside (a kernel worker is briefly in D as
  // a network namespace is freed; a task of a FUSE connection left open is a user task).
  std::set<std::string> d_state_tasks;
  // "PID(comm)" -> the descriptors of /dev/fuse its tasks hold, each fd table once. Every
  // task's table is read: a FUSE daemon's holder thread has a table of its own
  // (unshare(CLONE_FILES)), and in the deadlock its leader is a zombie with none.
  std::map<std::string, int> fuse_device_holders;
  // "MOUNTPOINT (FSTYPE) in mnt:[INODE]": the FUSE entries of every mount namespace a task is
  // in, each namespace read once.
  std::set<std::string> fuse_mounts;
  // Every directory of the cgroups whose top-level name starts with "wedge", in every cgroup
  // and cgroup2 hierarchy this process's mount namespace has (v1, v2 and hybrid layouts).
  std::set<std::string> wedge_cgroups;
  std::map<std::string, std::string> sysctls;  // WatchedSysctls() -> value
  // "PID(comm)" of the stack's and wedge's programs (IsStackOrWedgeProgram), this process
  // aside, and a `wedge` that this process started itself: a scenario test runs the binary, and
  // one that waits for the run lock while the test looks is the test's, not a leak (what that
  // wedge starts counts). A process whose every task is a zombie counts only if it is this
  // process's child: it then holds nothing but its pid, and reaping it is its parent's job,
  // which after wedge died is the machine's init's (some never reap); an unreaped child of ours
  // is ours (the soak bench runs wedge in its own process).
  std::set<std::string> processes;
  // "MOUNTPOINT (FSTYPE) in mnt:[INODE]": mounts of any fstype, in any mount namespace, at or
  // under the state directory.
  std::set<std::string> state_dir_mounts;
  std::set<std::string> journal_files;    // names under STATE_DIR/journal
  std::set<std::string> run_directories;  // paths under STATE_DIR/runs
  int mount_namespaces = 0;               // how many were read

  bool operator==(const HostSnapshot&) const = default;
};

// The host now. `proc` is where procfs is (a recorded tree in the unit tests); cgroups are read
// from the hierarchies of `proc`/self/mountinfo.
HostSnapshot CaptureHostSnapshot(const std::filesystem::path& state_dir = StateDirectory(),
                                 const std::filesystem::path& proc = "/proc");

// What `after` has that `before` did not, one line each: a task newly in D, a new or larger
// holder of /dev/fuse, a FUSE mount, a cgroup, a sysctl's new value, a process, a mount under
// the state directory, a journal, a run directory. What went away is not a difference: a run
// may rightly clean up what an earlier one left.
std::vector<std::string> Diff(const HostSnapshot& before, const HostSnapshot& after);

// Diff(before, now), sampled again every 20 ms for at most `settle` until it is empty: a
// difference must persist to count (a killed task takes a moment to leave D). Returns the
// last diff, empty when the host settled as it was.
std::vector<std::string> SettledDiff(
    const HostSnapshot& before, const std::filesystem::path& state_dir = StateDirectory(),
    std::chrono::milliseconds settle = std::chrono::milliseconds(500));

}  // namespace wedge::testing
