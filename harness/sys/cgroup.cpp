#include "wedge/sys/cgroup.h"

#include <libcgroup.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"

namespace wedge::sys {
namespace {

constexpr long kCgroup2SuperMagic = 0x63677270;

bool IsCgroup2(const char* path) {
  struct statfs fs {};
  return ::statfs(path, &fs) == 0 && fs.f_type == kCgroup2SuperMagic;
}

Error CgroupError(const std::string& call, int code) {
  std::string text = cgroup_strerror(code);
  if (code == ECGOTHER) text += " (" + ErrnoName(cgroup_get_last_errno()) + ")";
  return Error(call + ": " + text);
}

Status InitLibcgroup() {
  static std::once_flag once;
  static int result = 0;
  std::call_once(once, [] { result = cgroup_init(); });
  if (result != 0) return CgroupError("cgroup_init()", result);
  return OkStatus();
}

struct CgroupDeleter {
  void operator()(struct cgroup* group) const { cgroup_free(&group); }
};
using CgroupHandle = std::unique_ptr<struct cgroup, CgroupDeleter>;

Result<CgroupHandle> NewPidsCgroup(const std::string& relative_path) {
  CgroupHandle group(cgroup_new_cgroup(relative_path.c_str()));
  if (!group) return Error("cgroup_new_cgroup('" + relative_path + "') failed");
  return group;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::vector<pid_t> ProcessesOf(const std::filesystem::path& directory) {
  Result<std::string> procs = ReadFile(directory / "cgroup.procs");
  return procs.ok() ? ParsePidList(*procs) : std::vector<pid_t>{};
}

// The directories of the tree at `root`, parents before children.
std::vector<std::filesystem::path> TreeTopDown(const std::filesystem::path& root) {
  std::vector<std::filesystem::path> directories = {root};
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) directories.push_back(it->path());
  }
  std::stable_sort(directories.begin(), directories.end(), [](const auto& a, const auto& b) {
    return std::distance(a.begin(), a.end()) < std::distance(b.begin(), b.end());
  });
  return directories;
}

// Frozen tasks act on SIGKILL only once thawed (v1 freezer.state, v2 cgroup.freeze); FUSE is
// aborted first, as DestroyCgroup does.
void ThawAndKill(const std::vector<std::filesystem::path>& directories, std::set<pid_t>& killed,
                 std::vector<std::string>& log) {
  for (const auto& directory : directories) {
    if (std::filesystem::exists(directory / "freezer.state"))
      (void)WriteExisting(directory / "freezer.state", "THAWED");
    if (std::filesystem::exists(directory / "cgroup.freeze"))
      (void)WriteExisting(directory / "cgroup.freeze", "0");
  }
  for (const auto& directory : directories) {
    std::vector<pid_t> pids = ProcessesOf(directory);
    AbortFuseConnectionsOf(pids, log);
    for (pid_t pid : pids) {
      if (::kill(pid, SIGKILL) == 0) killed.insert(pid);
    }
  }
}

// Waits (until `deadline`) for each directory to be empty and removes it, children first.
Status RemoveBottomUp(const std::vector<std::filesystem::path>& directories, std::int64_t deadline,
                      std::vector<std::string>& log) {
  for (auto it = directories.rbegin(); it != directories.rend(); ++it) {
    std::vector<pid_t> pids;
    while (!(pids = ProcessesOf(*it)).empty()) {
      if (MonotonicMillis() > deadline) {
        return Error("cgroup " + it->string() + " still holds " + std::to_string(pids.size()) +
                     " process(es) after SIGKILL (first: " + std::to_string(pids.front()) + ")");
      }
      AbortFuseConnectionsOf(pids, log);
      for (pid_t pid : pids) ::kill(pid, SIGKILL);
      ::usleep(2000);
    }
    // rmdir sees EBUSY for a moment while the last task's exit completes.
    while (::rmdir(it->c_str()) != 0 && errno != ENOENT) {
      if (errno != EBUSY || MonotonicMillis() > deadline) {
        return ErrnoError("rmdir('" + it->string() + "')");
      }
      ::usleep(2000);
    }
  }
  return OkStatus();
}

}  // namespace

std::vector<std::filesystem::path> CgroupMountPoints() {
  std::vector<std::filesystem::path> points;
  Result<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return points;
  for (const MountInfo& mount : ParseMountInfo(*mountinfo)) {
    if (mount.fstype != "cgroup" && mount.fstype != "cgroup2") continue;
    if (std::find(points.begin(), points.end(), mount.mount_point) == points.end()) {
      points.push_back(mount.mount_point);
    }
  }
  return points;
}

bool IsWedgeCgroupTreeName(const std::string& name) {
  return name.rfind("wedge-", 0) == 0 && name.find('/') == std::string::npos && name.size() >= 7;
}

Status DestroyCgroupTree(const std::string& name, std::vector<std::string>& log) {
  // Only ever a top-level cgroup of wedge's own: never a host's /docker or /system.slice.
  if (!IsWedgeCgroupTreeName(name)) {
    return Error("refusing to remove cgroup tree '" + name + "': not a wedge cgroup parent");
  }
  // Every hierarchy is thawed and killed before any is waited on: a task frozen in the freezer
  // hierarchy would otherwise keep the cpu hierarchy's copy busy until the deadline.
  std::vector<std::pair<std::filesystem::path, std::vector<std::filesystem::path>>> trees;
  for (const auto& point : CgroupMountPoints()) {
    if (std::filesystem::is_directory(point / name))
      trees.push_back({point, TreeTopDown(point / name)});
  }
  std::set<pid_t> killed;
  for (const auto& [point, directories] : trees) ThawAndKill(directories, killed, log);
  Status first;
  std::vector<std::string> removed;
  const std::int64_t deadline = MonotonicMillis() + 5000;
  for (const auto& [point, directories] : trees) {
    Status status = RemoveBottomUp(directories, deadline, log);
    if (status.ok()) {
      removed.push_back(point.filename().string());
    } else if (first.ok()) {
      first = status;
    }
  }
  if (!killed.empty()) {
    log.push_back("killed " + std::to_string(killed.size()) + " process(es) in cgroup tree " +
                  name);
  }
  if (!removed.empty()) {
    std::string hierarchies;
    for (const auto& hierarchy : removed)
      hierarchies += (hierarchies.empty() ? "" : ",") + hierarchy;
    log.push_back("removed cgroup tree " + name + " from " + hierarchies);
  }
  return first;
}

std::string CgroupMode() {
  if (IsCgroup2("/sys/fs/cgroup")) return "v2";
  if (IsCgroup2("/sys/fs/cgroup/unified")) return "hybrid";
  return "v1";
}

Result<std::filesystem::path> PidsHierarchy() {
  WEDGE_RETURN_IF_ERROR(InitLibcgroup());
  char* mount_point = nullptr;
  int rc = cgroup_get_subsys_mount_point("pids", &mount_point);
  if (rc != 0) return CgroupError("cgroup_get_subsys_mount_point('pids')", rc);
  std::filesystem::path path(mount_point);
  std::free(mount_point);
  return path;
}

Result<std::unique_ptr<ScopedCgroup>> ScopedCgroup::Create(Journal& journal,
                                                           const std::string& relative_path,
                                                           std::optional<std::int64_t> pids_max) {
  WEDGE_ASSIGN_OR_RETURN(std::filesystem::path hierarchy, PidsHierarchy());
  std::filesystem::path directory = hierarchy / relative_path;
  if (std::filesystem::exists(directory)) {
    return Error("cgroup " + directory.string() + " already exists; run `wedge cleanup`");
  }
  // Journal every level wedge creates, outermost first, so that undo removes innermost first.
  std::vector<CreatedLevel> created;
  std::filesystem::path level = hierarchy;
  for (const auto& part : std::filesystem::path(relative_path)) {
    level /= part;
    if (std::filesystem::exists(level)) continue;
    WEDGE_ASSIGN_OR_RETURN(
        std::uint64_t seq,
        journal.Record(CgroupChange{"pids", level.lexically_relative(hierarchy), hierarchy}));
    created.push_back({seq, level});
  }
  if (created.empty()) {
    return Error("cgroup " + directory.string() + " already exists; run `wedge cleanup`");
  }
  std::uint64_t own_seq = created.back().seq;
  created.pop_back();

  WEDGE_ASSIGN_OR_RETURN(CgroupHandle group, NewPidsCgroup(relative_path));
  struct cgroup_controller* controller = cgroup_add_controller(group.get(), "pids");
  if (controller == nullptr) return Error("cgroup_add_controller('pids') failed");
  if (pids_max) {
    int rc = cgroup_add_value_string(controller, "pids.max", std::to_string(*pids_max).c_str());
    if (rc != 0) return CgroupError("cgroup_add_value_string('pids.max')", rc);
  }
  if (int rc = cgroup_create_cgroup(group.get(), 0); rc != 0) {
    return CgroupError("cgroup_create_cgroup('" + relative_path + "')", rc);
  }
  return std::unique_ptr<ScopedCgroup>(
      new ScopedCgroup(journal, own_seq, std::move(created), relative_path, std::move(directory)));
}

ScopedCgroup::ScopedCgroup(Journal& journal, std::uint64_t seq,
                           std::vector<CreatedLevel> created_parents, std::string relative_path,
                           std::filesystem::path directory)
    : journal_(journal),
      seq_(seq),
      created_parents_(std::move(created_parents)),
      relative_path_(std::move(relative_path)),
      directory_(std::move(directory)) {}

ScopedCgroup::~ScopedCgroup() { (void)Remove(); }

Status ScopedCgroup::Remove() {
  if (removed_) return OkStatus();
  removed_ = true;
  return journal_.Undo(seq_);
}

Status ScopedCgroup::RemoveCreatedParentsIfUnused() {
  Status first;
  for (auto level = created_parents_.rbegin(); level != created_parents_.rend(); ++level) {
    std::error_code ec;
    bool in_use = false;
    for (const auto& child : std::filesystem::directory_iterator(level->directory, ec)) {
      in_use |= child.is_directory(ec);
    }
    if (in_use) continue;
    Status status = journal_.Undo(level->seq);
    if (!status.ok() && first.ok()) first = status;
  }
  return first;
}

Status ScopedCgroup::Attach(pid_t pid) {
  WEDGE_ASSIGN_OR_RETURN(CgroupHandle group, NewPidsCgroup(relative_path_));
  if (cgroup_add_controller(group.get(), "pids") == nullptr) {
    return Error("cgroup_add_controller('pids') failed");
  }
  if (int rc = cgroup_attach_task_pid(group.get(), pid); rc != 0) {
    return CgroupError(
        "cgroup_attach_task_pid('" + relative_path_ + "', " + std::to_string(pid) + ")", rc);
  }
  return OkStatus();
}

std::vector<pid_t> ScopedCgroup::Processes() const {
  Result<std::string> procs = ReadFile(directory_ / "cgroup.procs");
  return procs.ok() ? ParsePidList(*procs) : std::vector<pid_t>{};
}

Result<std::string> ScopedCgroup::ReadValue(const std::string& file) const {
  WEDGE_ASSIGN_OR_RETURN(std::string value, ReadFile(directory_ / file));
  return TrimTrailing(value);
}

Status DestroyCgroup(const std::filesystem::path& directory, std::vector<std::string>& log) {
  if (!std::filesystem::exists(directory)) return OkStatus();
  auto processes = [&] {
    Result<std::string> procs = ReadFile(directory / "cgroup.procs");
    return procs.ok() ? ParsePidList(*procs) : std::vector<pid_t>{};
  };
  std::vector<pid_t> pids = processes();
  if (!pids.empty()) {
    // Abort FUSE first: killing a FUSE daemon whose own thread is flushing is how the
    // deadlock forms; with the connection aborted every flush fails at once instead.
    AbortFuseConnectionsOf(pids, log);
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    log.push_back("killed " + std::to_string(pids.size()) + " process(es) in " +
                  directory.string());
  }
  // Bounded: tasks freed from FUSE exit within milliseconds; anything slower is reported.
  std::int64_t deadline = MonotonicMillis() + 5000;
  while (!(pids = processes()).empty()) {
    if (MonotonicMillis() > deadline) {
      return Error("cgroup " + directory.string() + " still holds " + std::to_string(pids.size()) +
                   " process(es) after SIGKILL (first: " + std::to_string(pids.front()) + ")");
    }
    AbortFuseConnectionsOf(pids, log);
    ::usleep(2000);
  }
  // rmdir can see EBUSY for a moment while the last task's exit completes.
  for (int attempt = 0;; ++attempt) {
    if (::rmdir(directory.c_str()) == 0 || errno == ENOENT) break;
    if (errno != EBUSY || attempt >= 2500) return ErrnoError("rmdir('" + directory.string() + "')");
    ::usleep(2000);
  }
  log.push_back("removed cgroup " + directory.string());
  return OkStatus();
}

}  // namespace wedge::sys
