// ScopedCgroup: a cgroup wedge creates for one run's sandbox, through libcgroup.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/journal.h"

namespace wedge::sys {

// How this host mounts cgroups: "v2" (unified only), "hybrid" (v1 controllers and a v2 tree),
// or "v1".
std::string CgroupMode();

// A cgroup of the pids controller, e.g. wedge/RUN_ID, journaled before it is created and
// removed (after its tasks are stopped) when the owner goes out of scope. The levels above it
// that it had to create are journaled too; they stay until RemoveCreatedParentsIfUnused or the
// end of the run.
class ScopedCgroup {
 public:
  // Creates `relative_path` under the pids hierarchy, with pids.max set when given.
  static Result<std::unique_ptr<ScopedCgroup>> Create(Journal& journal,
                                                      const std::string& relative_path,
                                                      std::optional<std::int64_t> pids_max);
  ScopedCgroup(const ScopedCgroup&) = delete;
  ScopedCgroup& operator=(const ScopedCgroup&) = delete;
  ~ScopedCgroup();

  // Moves process `pid` (all its threads) into this cgroup.
  Status Attach(pid_t pid);
  // The processes in the cgroup now.
  std::vector<pid_t> Processes() const;
  // The directory of this cgroup in the pids hierarchy.
  const std::filesystem::path& directory() const { return directory_; }
  // Reads a file of the cgroup, e.g. "pids.events".
  Result<std::string> ReadValue(const std::string& file) const;
  // Stops everything in the cgroup and removes it now (what the destructor does).
  Status Remove();
  // Removes the levels above this cgroup that Create made, innermost first, except any that
  // still holds a cgroup (this one until Remove, or one created later, such as a run's sandbox
  // next to a stack's): those stay for the journal to undo at the end of the run. Carries on
  // past failures and returns the first.
  Status RemoveCreatedParentsIfUnused();

 private:
  // A level of the path that Create made, and its journal entry.
  struct CreatedLevel {
    std::uint64_t seq;
    std::filesystem::path directory;
  };

  ScopedCgroup(Journal& journal, std::uint64_t seq, std::vector<CreatedLevel> created_parents,
               std::string relative_path, std::filesystem::path directory);

  Journal& journal_;
  std::uint64_t seq_;                          // this cgroup's own entry
  std::vector<CreatedLevel> created_parents_;  // outermost first
  std::string relative_path_;
  std::filesystem::path directory_;
  bool removed_ = false;
};

// The mount point of the pids controller's hierarchy (libcgroup's view).
Result<std::filesystem::path> PidsHierarchy();

// The mount points of every cgroup hierarchy: each v1 hierarchy (controllers and named ones
// such as name=systemd) and the v2 unified one, from /proc/self/mountinfo.
std::vector<std::filesystem::path> CgroupMountPoints();

// Whether `name` is one of wedge's top-level cgroup trees: "wedge-" and more, a single level.
bool IsWedgeCgroupTreeName(const std::string& name);

// Undo of a "cgroup-tree" journal entry: in every hierarchy, thaws and SIGKILLs whatever runs in
// `name` (a top-level cgroup whose name starts with "wedge-") and its descendants, waits
// (bounded) until they are empty and removes them, deepest first.
Status DestroyCgroupTree(const std::string& name, std::vector<std::string>& log);

// Undo of a "cgroup" journal entry: aborts the FUSE connections its tasks mount, SIGKILLs its
// tasks, waits (bounded) until it is empty and removes the directory.
Status DestroyCgroup(const std::filesystem::path& directory, std::vector<std::string>& log);

}  // namespace wedge::sys
