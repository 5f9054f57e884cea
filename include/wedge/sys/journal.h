// The journal of host mutations.
//
// Every change wedge makes to the host (a directory, a cgroup, a mount, a sysctl, a process) is
// appended here and fsync'd *before* it is made, with what it takes to undo it. The RAII owners
// in wedge/sys undo their entry when they go out of scope; whatever a killed wedge left behind,
// `wedge cleanup` (and every `wedge run`, at start) undoes from the journal, newest first.
//
// One journal file per run: STATE_DIR/journal/RUN_ID.jsonl, one JSON object per line. Its
// owner holds an flock on it for the life of the run, so a journal nobody holds is an orphan.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"

namespace wedge::sys {

// Where wedge keeps journals, run directories and locks: /run/wedge, or $WEDGE_STATE_DIR.
std::filesystem::path DefaultStateDirectory();
// Where release roots are kept (stack/release_root.h): /var/cache/wedge/stacks, or
// $WEDGE_STACK_CACHE. A root is built in CACHE/.build-RUN_ID-RELEASE, which the journal covers.
std::filesystem::path DefaultStackCacheDirectory();
inline constexpr std::string_view kStackBuildPrefix = ".build-";

// The kinds of host mutation, one struct each, and what undoing an entry of that kind does.
// On disk an entry is {"seq": N, "kind": KIND, "data": {...}} with the keys named below; a later
// line {"undone": N} (with "kept": true when the change is meant to stay) closes entry N.
//   "directory"   {"path"}                          DirectoryChange
//       undo: remove it and its contents (only ever a STATE_DIR/runs/RUN_ID, or a release
//       root being built, STACK_CACHE/.build-...)
//   "cgroup"      {"controller", "path", "mount"}   CgroupChange
//       undo: abort the FUSE connections its tasks mount, SIGKILL its tasks, wait, rmdir
//   "mount"       {"target", "fstype"}              MountChange
//       undo: unmount it if still mounted
//   "sysctl"      {"name", "path", "old"}           SysctlChange
//       undo: write the old value back
//   "process"     {"pid", "start_time", "role"}     ProcessChange ("role" may be absent)
//       undo: SIGKILL it if it is still that process
//   "cgroup-tree" {"name"}                          CgroupTreeChange
//       undo: in every mounted hierarchy, kill the tasks of the top-level cgroup NAME and its
//       descendants and remove them, deepest first (containers' cgroups under a parent of
//       wedge's)
// The conversion to and from these lines is ToJson / FromJson below, and nowhere else.

// A directory wedge creates: a run directory.
struct DirectoryChange {
  std::filesystem::path path;
  bool operator==(const DirectoryChange&) const = default;
};

// A cgroup wedge creates: MOUNT/PATH in the hierarchy of `controller`.
struct CgroupChange {
  std::string controller;       // "pids"
  std::filesystem::path path;   // relative to `mount`, e.g. "wedge/RUN_ID"
  std::filesystem::path mount;  // the hierarchy's mount point
  bool operator==(const CgroupChange&) const = default;
};

// A filesystem wedge mounts.
struct MountChange {
  std::filesystem::path target;
  std::string fstype;
  bool operator==(const MountChange&) const = default;
};

// A sysctl wedge writes, with the value it had before ("old" on disk).
struct SysctlChange {
  std::string name;            // "fs.pipe-user-pages-soft"
  std::filesystem::path path;  // its file under /proc/sys
  std::string old_value;
  bool operator==(const SysctlChange&) const = default;
};

// A process wedge starts, told from a later one with its pid by its start time.
struct ProcessChange {
  pid_t pid = 0;
  std::uint64_t start_time = 0;     // clock ticks after boot (ProcessStartTime); 0 if unknown
  std::optional<std::string> role;  // "sandbox-init", "qemu", a step's name
  bool operator==(const ProcessChange&) const = default;
};

// The cgroup tree dockerd creates for the containers of a private stack.
struct CgroupTreeChange {
  std::string name;  // a top-level cgroup, "wedge-docker-RUN_ID"
  bool operator==(const CgroupTreeChange&) const = default;
};

using JournalChange = std::variant<DirectoryChange, CgroupChange, MountChange, SysctlChange,
                                   ProcessChange, CgroupTreeChange>;

// The "kind" an entry of `change` is written with: "directory", "cgroup", ...
std::string_view KindOf(const JournalChange& change);

// One journal entry. `change` is an Error for a line whose kind is unknown or whose data lacks a
// key or holds one of the wrong type: undoing that entry reports the error.
struct JournalEntry {
  std::uint64_t seq = 0;
  Result<JournalChange> change;
};

// The journal line of entry `seq`: {"data": {...}, "kind": KIND, "seq": N}.
nlohmann::json ToJson(std::uint64_t seq, const JournalChange& change);
// The entry of a journal line; never throws. A line without a valid "seq" gives seq 0.
JournalEntry FromJson(const nlohmann::json& line);

class Journal {
 public:
  // Creates STATE_DIR/journal/RUN_ID.jsonl and locks it.
  static Result<std::unique_ptr<Journal>> Create(const std::filesystem::path& state_dir,
                                                 const std::string& run_id);
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  // Undoes whatever is still pending, then removes the file.
  ~Journal();

  // Appends an entry and makes it durable; call it before making the change.
  Result<std::uint64_t> Record(const JournalChange& change);
  // Undoes entry `seq` now and records that it is undone. Undoing twice is a no-op.
  Status Undo(std::uint64_t seq);
  // Drops entry `seq` without undoing it: the change is meant to stay (e.g. a run directory
  // kept with --keep). Recorded like an undo so that cleanup leaves it alone too.
  Status Forget(std::uint64_t seq);
  // Undoes every pending entry, newest first; carries on past failures and returns the first.
  Status UndoAll();
  // Entries not yet undone, oldest first.
  std::vector<JournalEntry> Pending() const;
  // One line per undo performed, for the report ("aborted FUSE connection 52", ...).
  const std::vector<std::string>& undo_log() const { return undo_log_; }
  const std::filesystem::path& path() const { return path_; }
  const std::string& run_id() const { return run_id_; }

 private:
  Journal(std::filesystem::path path, std::string run_id, UniqueFd fd);
  Status Append(const nlohmann::json& line);

  std::filesystem::path path_;
  std::string run_id_;
  UniqueFd fd_;
  std::vector<JournalEntry> entries_;
  std::vector<bool> undone_;
  std::vector<std::string> undo_log_;
};

// Owns one journaled change for a scope: undoes entry `seq` when it goes, or, with `keep`,
// forgets it so that the change stays (a run directory kept with --keep) and cleanup leaves it.
class JournalEntryOwner {
 public:
  JournalEntryOwner(Journal& journal, std::uint64_t seq, bool keep)
      : journal_(journal), seq_(seq), keep_(keep) {}
  JournalEntryOwner(const JournalEntryOwner&) = delete;
  JournalEntryOwner& operator=(const JournalEntryOwner&) = delete;
  ~JournalEntryOwner() { (void)(keep_ ? journal_.Forget(seq_) : journal_.Undo(seq_)); }

 private:
  Journal& journal_;
  std::uint64_t seq_;
  bool keep_;
};

// What replaying a journal may undo: only what wedge itself could have done on this host. A
// journal is data read back from disk, and undoing it kills processes, removes cgroups and
// directories, unmounts and writes sysctls as root: an entry outside this scope is refused.
struct UndoScope {
  std::filesystem::path state_dir;  // run directories: STATE_DIR/runs/RUN_ID only
  std::filesystem::path proc_sys = "/proc/sys";
  std::vector<std::string> sysctls;  // names wedge may change (wedge::AllowedSysctls)
  std::vector<std::filesystem::path> cgroup_hierarchies;  // where wedge's cgroups may be
  std::filesystem::path stack_cache;  // release root builds: STACK_CACHE/.build-... only

  // This host's scope for `state_dir`: the allowlisted sysctls, the mounted cgroup hierarchies.
  static UndoScope ForHost(const std::filesystem::path& state_dir);

  // OK when `change` is one wedge makes: a run directory under the state directory, or a
  // release root build directly in the stack cache; a cgroup
  // wedge/... of a mounted hierarchy; fusectl on its directory, or a mount under a run
  // directory; an allowlisted sysctl at its own path, back to a decimal value; a process other
  // than init and this one; a top-level cgroup tree wedge-... . Otherwise why it is not.
  Status Check(const JournalChange& change) const;
};

// Undoes one entry by kind, or returns the error of a malformed one. Appends what it did to
// `log`. Safe to repeat. Only for the changes a live journal recorded itself; what is read back
// from disk goes through ReplayEntry.
Status UndoEntry(const JournalEntry& entry, std::vector<std::string>& log);
// UndoEntry for an entry read back from a journal: refuses one outside `scope`.
Status ReplayEntry(const JournalEntry& entry, const UndoScope& scope,
                   std::vector<std::string>& log);

// Parses a journal file's text into its pending entries (those without an "undone" line), oldest
// first; never fails. A malformed line is kept as an entry with its error (seq 0 when unknown),
// so that replay reports and skips it and undoes the rest: an entry whose data lacks a key or
// holds one of the wrong type, a line that is not JSON, an "undone" line without a valid seq.
// A torn last line is dropped: a crash mid-write, whose change was never made.
std::vector<JournalEntry> ParseJournal(std::string_view text);

// What replaying the orphan journals did.
struct JournalRecovery {
  // One line per change undone ("restored fs.pipe-user-pages-soft = 16384", ...) and one per
  // journal replayed in full. Empty with the rest when the host was clean.
  std::vector<std::string> undone;
  // Journals refused (their owner, mode or directory is not root's alone) and entries skipped
  // (malformed, or outside the scope), one line each. A journal with nothing left to undo but
  // such entries is set aside as NAME.jsonl.rejected for a person to read; it is not replayed
  // again.
  std::vector<std::string> skipped;
  // Undos that failed; their journals stay, with the entries undone so far closed, for the next
  // cleanup to try again.
  std::vector<std::string> failed;
};

// Replays every journal in STATE_DIR/journal that no live wedge holds, newest entry first, and
// deletes it once all its entries are undone. Only journals that are regular files of wedge's
// uid (root) with mode 0600, in a directory of that uid with mode 0700, are read; each entry is
// checked against `scope`.
JournalRecovery RecoverOrphanJournals(const UndoScope& scope);

// An exclusive lock on STATE_DIR/run.lock held for the life of a run, so two runs never write
// the same sysctl or stack. Waits for another holder, telling `notice` once who it waits for.
class RunLock {
 public:
  static Result<RunLock> Acquire(const std::filesystem::path& state_dir,
                                 const std::function<void(const std::string&)>& notice);

 private:
  explicit RunLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace wedge::sys
