// Sandbox: the isolated process tree a scenario runs in.
//
// wedge clones an init process (fixtures/sandbox_init.cpp, "wedge-init") into new pid and mount
// namespaces (and optionally a user namespace), places it in the run's cgroup before it runs
// anything, applies the scenario's rlimits, and then asks it over a control socket to start
// fixtures as its children. Killing that init is how a scenario tears the pid namespace down,
// exactly as `docker kill` tears down a container.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::sys {

// A host directory hidden, in the sandbox's mount namespace only, under a fresh tmpfs.
struct TemporaryFilesystem {
  std::filesystem::path target;  // absolute
  std::filesystem::path keep;    // a directory under `target` that stays visible; empty: none
};

// A host file bound over a file of the sandbox's root.
struct BoundFile {
  std::filesystem::path source;  // on the host
  std::filesystem::path target;  // absolute, as seen inside the root
};

struct SandboxOptions {
  bool user_namespace = false;  // uid/gid 0 inside map to 0 outside (one id)
  bool pid_namespace = true;
  bool mount_namespace = true;  // made private (MS_REC|MS_PRIVATE) before anything runs
  // The init mounts a fresh procfs on /proc, so /proc shows the sandbox's own pids (needs the
  // pid and mount namespaces).
  bool mount_proc = false;
  // The init reaps the children it did not start (orphans of daemons that detach, reparented
  // to it); those it started stay zombies until wedge looks. Needs mount_proc.
  bool reap_orphans = false;
  // A root directory the namespace pivots into before the tmpfs and /proc mounts (read-only,
  // with the host's /dev and /sys bound in): a release's stack (stack/release_root.h). Empty:
  // the host's /.
  std::filesystem::path root;
  // Host files bound, read-only, over files of the root before it is entered: a binary from
  // another release's root (stack::Component). Needs a root; each target exists in it.
  std::vector<BoundFile> files_bound_into_root;
  // Mounted, in order, before /proc and before anything runs (needs the mount namespace); with
  // a root, inside it, each kept directory bound back from the host at its own path.
  std::vector<TemporaryFilesystem> temporary_filesystems;
  std::vector<std::pair<int, rlimit>> rlimits;
  std::filesystem::path init_binary;    // wedge-init
  std::filesystem::path log_directory;  // fixtures' stdout and stderr go to LABEL.log here
};

// A process the init started: its host pid and the line it printed when ready.
struct SpawnedProcess {
  std::string label;
  pid_t pid = 0;     // in wedge's pid namespace
  pid_t ns_pid = 0;  // in the sandbox's pid namespace
  std::string ready_line;
  std::filesystem::path log_file;
};

class Sandbox {
 public:
  // Clones the init into `cgroup` with the namespaces and rlimits of `options`. The init is
  // journaled as a process as soon as its pid is known, before it is allowed to run.
  static Result<std::unique_ptr<Sandbox>> Start(Journal& journal, ScopedCgroup& cgroup,
                                                const SandboxOptions& options);
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;
  // Stops whatever still runs (aborting FUSE connections first) and reaps the init; once it is
  // reaped its journal entry is done.
  ~Sandbox();

  pid_t init_pid() const { return init_.pid(); }
  const Pidfd& init() const { return init_; }

  // Starts `argv` (with "--ready-fd N" appended) as a child of the init and waits up to
  // `timeout_ms` for the line it writes to that fd when it is ready.
  Result<SpawnedProcess> Spawn(const std::string& label, const std::vector<std::string>& argv,
                               int timeout_ms);
  // Starts `argv` as a child of the init in a new session with exactly `environment`, stdin
  // /dev/null and output appended to LABEL.log; returns once execve succeeded (no ready line).
  Result<SpawnedProcess> Exec(const std::string& label, const std::vector<std::string>& argv,
                              const std::map<std::string, std::string>& environment,
                              int timeout_ms = 5000);
  // Asks the init to reap `child`, a process it started (Spawn or Exec), if it has exited, so
  // that a daemon wedge killed does not linger as a zombie. True once reaped (now or before),
  // false while it still runs.
  Result<bool> Reap(const SpawnedProcess& child, int timeout_ms = 5000);
  // True once the init has exited (the pid namespace is gone or going).
  bool InitExited() const { return init_.HasExited(); }
  // Reaps the init if it has exited; returns its wait status, or nullopt if it still runs.
  std::optional<int> TryReap();

 private:
  Sandbox(Journal& journal, ScopedCgroup& cgroup, Pidfd init, UniqueFd control,
          std::filesystem::path log_directory);
  // Sends one request to the init and waits up to `timeout_ms` for its reply.
  Result<std::string> Request(const std::string& request, const std::string& label, int timeout_ms);
  // The pid in wedge's namespace of the init's child `ns_pid`.
  Result<pid_t> HostPidOf(pid_t ns_pid, const std::string& label) const;

  Journal& journal_;
  ScopedCgroup& cgroup_;
  Pidfd init_;
  UniqueFd control_;
  std::filesystem::path log_directory_;
  std::uint64_t journal_seq_ = 0;  // the init's "process" entry
  bool reaped_ = false;
};

}  // namespace wedge::sys
