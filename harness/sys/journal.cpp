#include "wedge/sys/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>
#include <variant>

#include "wedge/base/allowed_sysctls.h"
#include "wedge/base/fault_point.h"
#include "wedge/base/overloaded.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"
#include "wedge/sys/sysctl.h"

namespace wedge::sys {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Reads the keys of a journal line or of its data, keeping the first one that is missing or of
// the wrong type; what it returns for such a key is a placeholder.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  std::string String(const char* key) {
    const json* value = Find(key);
    if (value == nullptr) return {};
    if (!value->is_string()) {
      Fail(key, "is not a string");
      return {};
    }
    return value->get<std::string>();
  }
  std::optional<std::string> OptionalString(const char* key) {
    if (!object_.contains(key)) return std::nullopt;
    return String(key);
  }
  std::uint64_t Unsigned(const char* key) {
    const json* value = Find(key);
    if (value == nullptr) return 0;
    if (!value->is_number_unsigned()) {
      Fail(key, "is not an unsigned integer");
      return 0;
    }
    return value->get<std::uint64_t>();
  }
  pid_t Pid(const char* key) {
    const json* value = Find(key);
    if (value == nullptr) return 0;
    constexpr auto kMin = std::numeric_limits<pid_t>::min();
    constexpr auto kMax = std::numeric_limits<pid_t>::max();
    bool fits = value->is_number_unsigned()
                    ? value->get<std::uint64_t>() <= static_cast<std::uint64_t>(kMax)
                    : value->is_number_integer() && value->get<std::int64_t>() >= kMin &&
                          value->get<std::int64_t>() <= kMax;
    if (!fits) {
      Fail(key, "is not a pid");
      return 0;
    }
    return static_cast<pid_t>(value->get<std::int64_t>());
  }
  const json* Object(const char* key) {
    const json* value = Find(key);
    if (value == nullptr || value->is_object()) return value;
    Fail(key, "is not an object");
    return nullptr;
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  const json* Find(const char* key) {
    auto it = object_.find(key);
    if (it != object_.end()) return &*it;
    Fail(key, "is missing");
    return nullptr;
  }
  void Fail(const char* key, const char* what) {
    if (!error_) error_ = Error("\"" + std::string(key) + "\" " + what);
  }

  const json& object_;
  std::optional<Error> error_;
};

Result<JournalChange> ChangeFromJson(const std::string& kind, const json& data) {
  Fields fields(data);
  std::optional<JournalChange> change;
  // Braced initializers run left to right: the first bad key is the one reported.
  if (kind == "directory") {
    change = DirectoryChange{fields.String("path")};
  } else if (kind == "cgroup") {
    change =
        CgroupChange{fields.String("controller"), fields.String("path"), fields.String("mount")};
  } else if (kind == "mount") {
    change = MountChange{fields.String("target"), fields.String("fstype")};
  } else if (kind == "sysctl") {
    change = SysctlChange{fields.String("name"), fields.String("path"), fields.String("old")};
  } else if (kind == "process") {
    change = ProcessChange{fields.Pid("pid"), fields.Unsigned("start_time"),
                           fields.OptionalString("role")};
  } else if (kind == "cgroup-tree") {
    change = CgroupTreeChange{fields.String("name")};
  } else {
    return Error("unknown kind '" + kind + "'");
  }
  if (fields.error()) return fields.error()->WithContext("data");
  return *std::move(change);
}

Status RemoveRunDirectory(const std::filesystem::path& path, std::vector<std::string>& log) {
  // Only ever a run directory (STATE_DIR/runs/RUN_ID) or a release root being built
  // (CACHE/.build-RUN_ID-RELEASE): absolute, without "..".
  const bool run_directory = path.parent_path().filename() == "runs";
  const bool root_build = path.filename().string().rfind(kStackBuildPrefix, 0) == 0;
  if (!path.is_absolute() || !(run_directory || root_build) || path.lexically_normal() != path) {
    return Error("refusing to remove '" + path.string() +
                 "': not a wedge run directory or release root build");
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return OkStatus();
  std::filesystem::remove_all(path, ec);
  if (ec) return Error("remove_all('" + path.string() + "'): " + ec.message());
  log.push_back("removed " + path.string());
  return OkStatus();
}

Status UndoChange(const JournalChange& change, std::vector<std::string>& log) {
  return std::visit(
      Overloaded{
          [&](const DirectoryChange& c) { return RemoveRunDirectory(c.path, log); },
          [&](const CgroupChange& c) { return DestroyCgroup(c.mount / c.path, log); },
          [&](const MountChange& c) { return UnmountIfMounted(c.target, c.fstype, log); },
          [&](const SysctlChange& c) -> Status {
            Result<std::string> now = ReadFile(c.path);
            if (now.ok() && TrimTrailing(*now) == c.old_value) return OkStatus();
            WEDGE_RETURN_IF_ERROR(WriteExisting(c.path, c.old_value));
            log.push_back("restored " + c.name + " = " + c.old_value);
            return OkStatus();
          },
          [&](const ProcessChange& c) -> Status {
            if (IsSameProcess(c.pid, c.start_time)) {
              ::kill(c.pid, SIGKILL);
              log.push_back("killed process " + std::to_string(c.pid));
            }
            return OkStatus();
          },
          [&](const CgroupTreeChange& c) { return DestroyCgroupTree(c.name, log); },
      },
      change);
}

}  // namespace

std::filesystem::path DefaultStateDirectory() {
  const char* override_dir = std::getenv("WEDGE_STATE_DIR");
  return override_dir != nullptr && *override_dir != '\0' ? override_dir : "/run/wedge";
}

std::string_view KindOf(const JournalChange& change) {
  return std::visit(Overloaded{
                        [](const DirectoryChange&) { return std::string_view("directory"); },
                        [](const CgroupChange&) { return std::string_view("cgroup"); },
                        [](const MountChange&) { return std::string_view("mount"); },
                        [](const SysctlChange&) { return std::string_view("sysctl"); },
                        [](const ProcessChange&) { return std::string_view("process"); },
                        [](const CgroupTreeChange&) { return std::string_view("cgroup-tree"); },
                    },
                    change);
}

json ToJson(std::uint64_t seq, const JournalChange& change) {
  json data = std::visit(
      Overloaded{
          [](const DirectoryChange& c) {
            return json{{"path", c.path.string()}};
          },
          [](const CgroupChange& c) {
            return json{{"controller", c.controller},
                        {"path", c.path.string()},
                        {"mount", c.mount.string()}};
          },
          [](const MountChange& c) {
            return json{{"target", c.target.string()}, {"fstype", c.fstype}};
          },
          [](const SysctlChange& c) {
            return json{{"name", c.name}, {"path", c.path.string()}, {"old", c.old_value}};
          },
          [](const ProcessChange& c) {
            json d{{"pid", c.pid}, {"start_time", c.start_time}};
            if (c.role) d["role"] = *c.role;
            return d;
          },
          [](const CgroupTreeChange& c) {
            return json{{"name", c.name}};
          },
      },
      change);
  return {{"seq", seq}, {"kind", std::string(KindOf(change))}, {"data", std::move(data)}};
}

JournalEntry FromJson(const json& line) {
  if (!line.is_object()) return {0, Error("journal entry is not a JSON object")};
  Fields fields(line);
  std::uint64_t seq = fields.Unsigned("seq");
  std::string kind = fields.String("kind");
  const json* data = fields.Object("data");
  std::string entry = "journal entry" + (seq != 0 ? " " + std::to_string(seq) : "");
  if (fields.error()) return {seq, fields.error()->WithContext(entry)};
  Result<JournalChange> change = ChangeFromJson(kind, *data);
  if (!change.ok()) return {seq, change.error().WithContext(entry + " (" + kind + ")")};
  return {seq, std::move(change)};
}

Status UndoEntry(const JournalEntry& entry, std::vector<std::string>& log) {
  if (!entry.change.ok()) return entry.change.error();
  return UndoChange(*entry.change, log);
}

std::vector<JournalEntry> ParseJournal(std::string_view text) {
  std::vector<JournalEntry> entries;
  std::istringstream lines{std::string(text)};
  std::string line;
  int line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.empty()) continue;
    const std::string where = "journal line " + std::to_string(line_number);
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      // A line torn by a crash mid-write can only be the last one; its change was never made.
      if (lines.peek() == EOF) break;
      entries.push_back({0, Error(where + " is not JSON")});
      continue;
    }
    if (record.contains("undone")) {
      // Which entry it closes must be known to close it. If it cannot be, the entry is undone
      // once more (every undo is safe to repeat), or, if it was kept, removed after all.
      Fields fields(record);
      std::uint64_t seq = fields.Unsigned("undone");
      if (fields.error()) {
        entries.push_back({0, fields.error()->WithContext(where)});
        continue;
      }
      std::erase_if(entries, [seq](const JournalEntry& e) { return e.seq == seq && seq != 0; });
      continue;
    }
    JournalEntry entry = FromJson(record);
    if (!entry.change.ok()) entry.change = entry.change.error().WithContext(where);
    entries.push_back(std::move(entry));
  }
  return entries;
}

Result<std::unique_ptr<Journal>> Journal::Create(const std::filesystem::path& state_dir,
                                                 const std::string& run_id) {
  // The state directory and everything below it are root's alone: its runs hold the private
  // stack's sockets and the daemons' logs.
  for (const auto& directory : {state_dir, state_dir / "journal", state_dir / "runs"}) {
    WEDGE_RETURN_IF_ERROR(MakePrivateDirectory(directory));
  }
  std::filesystem::path path = state_dir / "journal" / (run_id + ".jsonl");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "', O_CREAT|O_EXCL)");
  // Exactly 0600 whatever the umask: replay reads no journal of another mode.
  if (::fchmod(fd.get(), 0600) != 0) return ErrnoError("fchmod('" + path.string() + "', 0600)");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return ErrnoError("flock('" + path.string() + "')");
  return std::unique_ptr<Journal>(new Journal(std::move(path), run_id, std::move(fd)));
}

Journal::Journal(std::filesystem::path path, std::string run_id, UniqueFd fd)
    : path_(std::move(path)), run_id_(std::move(run_id)), fd_(std::move(fd)) {}

Journal::~Journal() {
  (void)UndoAll();
  if (Pending().empty()) ::unlink(path_.c_str());
}

Status Journal::Append(const nlohmann::json& line) {
  std::string text = line.dump() + "\n";
  if (::write(fd_.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError("write('" + path_.string() + "')");
  }
  if (::fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync('" + path_.string() + "')");
  return OkStatus();
}

Result<std::uint64_t> Journal::Record(const JournalChange& change) {
  std::uint64_t seq = entries_.size() + 1;
  WEDGE_RETURN_IF_ERROR(Append(ToJson(seq, change)));
  entries_.push_back({seq, change});
  undone_.push_back(false);
  return seq;
}

Status Journal::Undo(std::uint64_t seq) {
  if (seq == 0 || seq > entries_.size() || undone_[seq - 1]) return OkStatus();
  WEDGE_RETURN_IF_ERROR(UndoEntry(entries_[seq - 1], undo_log_));
  undone_[seq - 1] = true;
  return Append({{"undone", seq}});
}

Status Journal::Forget(std::uint64_t seq) {
  if (seq == 0 || seq > entries_.size() || undone_[seq - 1]) return OkStatus();
  undone_[seq - 1] = true;
  return Append({{"undone", seq}, {"kept", true}});
}

Status Journal::UndoAll() {
  Status first;
  bool newest_undone = false;
  for (std::uint64_t seq = entries_.size(); seq >= 1; --seq) {
    const bool pending = !undone_[seq - 1];
    Status status = Undo(seq);
    if (!status.ok() && first.ok()) first = status;
    // A fault test's kill point: the newest pending change undone, older ones still journaled.
    if (pending && !std::exchange(newest_undone, true) && !Pending().empty()) FaultPoint("undo");
  }
  return first;
}

std::vector<JournalEntry> Journal::Pending() const {
  std::vector<JournalEntry> pending;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!undone_[i]) pending.push_back(entries_[i]);
  }
  return pending;
}

std::filesystem::path DefaultStackCacheDirectory() {
  const char* override_dir = std::getenv("WEDGE_STACK_CACHE");
  return override_dir != nullptr && *override_dir != '\0' ? fs::path(override_dir)
                                                          : fs::path("/var/cache/wedge/stacks");
}

UndoScope UndoScope::ForHost(const fs::path& state_dir) {
  return {state_dir, "/proc/sys", AllowedSysctls(), CgroupMountPoints(),
          DefaultStackCacheDirectory()};
}

namespace {

// An absolute path without "." or ".." components or a trailing slash.
bool IsNormalAbsolute(const fs::path& path) {
  return path.is_absolute() && path.lexically_normal() == path && path.has_filename();
}

// Whether `path` lies strictly below `directory` (both normal and absolute).
bool IsBelow(const fs::path& path, const fs::path& directory) {
  const fs::path relative = path.lexically_relative(directory);
  return !relative.empty() && *relative.begin() != ".." && relative != ".";
}

bool IsDecimal(const std::string& text) {
  return !text.empty() && text.size() <= 19 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Status UndoScope::Check(const JournalChange& change) const {
  const fs::path runs = (state_dir / "runs").lexically_normal();
  return std::visit(
      Overloaded{
          [&](const DirectoryChange& c) -> Status {
            if (IsNormalAbsolute(c.path) && c.path.parent_path() == runs) return OkStatus();
            if (IsNormalAbsolute(c.path) && !stack_cache.empty() &&
                c.path.parent_path() == stack_cache.lexically_normal() &&
                c.path.filename().string().rfind(kStackBuildPrefix, 0) == 0) {
              return OkStatus();
            }
            return Error(
                "directory '" + c.path.string() + "' is not a run directory in " + runs.string() +
                " or a release root build in " +
                (stack_cache.empty() ? std::string("the stack cache") : stack_cache.string()));
          },
          [&](const CgroupChange& c) -> Status {
            if (std::find(cgroup_hierarchies.begin(), cgroup_hierarchies.end(), c.mount) ==
                cgroup_hierarchies.end()) {
              return Error("cgroup mount '" + c.mount.string() +
                           "' is not a mounted cgroup hierarchy");
            }
            if (c.path.is_relative() && c.path.lexically_normal() == c.path && !c.path.empty() &&
                *c.path.begin() == "wedge") {
              return OkStatus();
            }
            return Error("cgroup '" + c.path.string() + "' is not under wedge's own tree wedge/");
          },
          [&](const MountChange& c) -> Status {
            if (c.fstype == "fusectl" && c.target == kFusectlDirectory) return OkStatus();
            if (IsNormalAbsolute(c.target) && IsBelow(c.target.parent_path(), runs)) {
              return OkStatus();
            }
            return Error("mount " + c.fstype + " on '" + c.target.string() +
                         "' is neither fusectl on " + kFusectlDirectory +
                         " nor inside a run directory in " + runs.string());
          },
          [&](const SysctlChange& c) -> Status {
            if (std::find(sysctls.begin(), sysctls.end(), c.name) == sysctls.end()) {
              return Error("sysctl '" + c.name + "' is not one wedge changes");
            }
            if (c.path != SysctlPath(c.name, proc_sys)) {
              return Error("sysctl " + c.name + " at '" + c.path.string() + "', not at '" +
                           SysctlPath(c.name, proc_sys).string() + "'");
            }
            if (!IsDecimal(c.old_value)) {
              return Error("sysctl " + c.name + " back to '" + c.old_value +
                           "', not a decimal value");
            }
            return OkStatus();
          },
          [&](const ProcessChange& c) -> Status {
            if (c.pid > 1 && c.pid != ::getpid()) return OkStatus();
            return Error("process " + std::to_string(c.pid) + " is init or wedge itself");
          },
          [&](const CgroupTreeChange& c) -> Status {
            if (IsWedgeCgroupTreeName(c.name)) return OkStatus();
            return Error("cgroup tree '" + c.name + "' is not one of wedge's (wedge-...)");
          },
      },
      change);
}

namespace {

// Why `entry`, read back from a journal, is not to be undone at all (it is malformed, or outside
// `scope`), or OK.
Status Replayable(const JournalEntry& entry, const UndoScope& scope) {
  if (!entry.change.ok()) return entry.change.error();
  if (Status in_scope = scope.Check(*entry.change); !in_scope.ok()) {
    return in_scope.error().WithContext("journal entry " + std::to_string(entry.seq) + " (" +
                                        std::string(KindOf(*entry.change)) + ") refused");
  }
  return OkStatus();
}

}  // namespace

Status ReplayEntry(const JournalEntry& entry, const UndoScope& scope,
                   std::vector<std::string>& log) {
  WEDGE_RETURN_IF_ERROR(Replayable(entry, scope));
  return UndoChange(*entry.change, log);
}

namespace {

// Moves a journal that is not to be replayed (again) out of the way, for a person to read.
void SetAside(const fs::path& path, JournalRecovery& recovery) {
  fs::path aside = path;
  aside += ".rejected";
  if (::rename(path.c_str(), aside.c_str()) == 0) {
    recovery.skipped.push_back("set " + path.filename().string() + " aside as " +
                               aside.filename().string());
  } else {
    recovery.failed.push_back(ErrnoError("rename('" + path.string() + "')").message());
  }
}

void ReplayJournal(const fs::path& path, const UndoScope& scope, JournalRecovery& recovery) {
  const std::string name = path.filename().string();
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return;  // a run that ended meanwhile removed it
    recovery.skipped.push_back(
        "refusing to replay " + path.string() + ": " +
        (errno == ELOOP ? std::string("a symbolic link") : ErrnoError("open").message()));
    SetAside(path, recovery);
    return;
  }
  if (Status trusted = CheckPrivateFile(fd.get()); !trusted.ok()) {
    recovery.skipped.push_back("refusing to replay " + path.string() + ": " +
                               trusted.error().message());
    SetAside(path, recovery);
    return;
  }
  // A live wedge holds its journal's lock: leave its journal alone. A killed wedge's lock can
  // outlive it for a moment, in a child it cloned that has not yet run to drop its copy of
  // the descriptor: give the lock a little while before deciding its owner is alive.
  bool locked = false;
  for (int attempt = 0; attempt < 30 && !locked; ++attempt) {
    locked = ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
    if (!locked) ::usleep(10000);
  }
  if (!locked) return;
  // A run that ended while this one waited for the lock removed its journal before letting go
  // of it: the lock is then on an unlinked file, with nothing left to undo.
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_nlink == 0) return;
  // Read through the descriptor checked above, not by name again: fresh, its offset is 0.
  Result<std::string> text = ReadDescriptor(fd.get(), path.string());
  if (!text.ok()) {
    recovery.failed.push_back(text.error().WithContext(path.string()).message());
    return;
  }
  std::vector<JournalEntry> entries = ParseJournal(*text);
  bool failed = false;
  bool skipped = false;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (Status replayable = Replayable(*it, scope); !replayable.ok()) {
      skipped = true;
      recovery.skipped.push_back(name + ": skipped " + replayable.error().message());
      continue;
    }
    Status status = UndoChange(*it->change, recovery.undone);
    if (status.ok()) {
      std::string line = json{{"undone", it->seq}}.dump() + "\n";
      (void)!::write(fd.get(), line.data(), line.size());
    } else {
      failed = true;
      recovery.failed.push_back(name + ": " + status.error().message());
    }
  }
  if (failed) return;  // kept, for the next cleanup to try again
  if (skipped) {
    SetAside(path, recovery);
    return;
  }
  ::unlink(path.c_str());
  recovery.undone.push_back("replayed journal " + name);
}

}  // namespace

JournalRecovery RecoverOrphanJournals(const UndoScope& scope) {
  JournalRecovery recovery;
  const fs::path directory = scope.state_dir / "journal";
  std::error_code ec;
  if (!fs::exists(directory, ec)) return recovery;
  for (const fs::path& trusted : {scope.state_dir, directory}) {
    if (Status status = CheckPrivateDirectory(trusted); !status.ok()) {
      recovery.skipped.push_back("refusing to replay the journals in " + directory.string() + ": " +
                                 status.error().message());
      return recovery;
    }
  }
  std::vector<fs::path> journals;
  for (const auto& file : fs::directory_iterator(directory, ec)) {
    if (file.path().extension() == ".jsonl") journals.push_back(file.path());
  }
  std::sort(journals.begin(), journals.end());
  for (const auto& path : journals) ReplayJournal(path, scope, recovery);
  return recovery;
}

Result<RunLock> RunLock::Acquire(const std::filesystem::path& state_dir,
                                 const std::function<void(const std::string&)>& notice) {
  WEDGE_RETURN_IF_ERROR(MakePrivateDirectory(state_dir));
  std::filesystem::path path = state_dir / "run.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "')");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError("flock('" + path.string() + "')");
    Result<std::string> holder = ReadFile(path);
    notice("another wedge run (pid " + (holder.ok() ? TrimTrailing(*holder) : "?") + ") holds " +
           path.string() + "; waiting for it to finish");
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoError("flock('" + path.string() + "')");
      if (Interrupted()) return Error("interrupted while waiting for " + path.string());
    }
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(fd.get(), 0);
  (void)!::pwrite(fd.get(), pid.data(), pid.size(), 0);
  return RunLock(std::move(fd));
}

}  // namespace wedge::sys
