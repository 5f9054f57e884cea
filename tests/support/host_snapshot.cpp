#include "host_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace wedge::testing {
namespace {

namespace fs = std::filesystem;

constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h

// The whole of a (small, /proc or /sys) file, or nullopt if it cannot be read.
std::optional<std::string> ReadText(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return text;
}

std::optional<std::string> ReadLink(const fs::path& path) {
  char buffer[4096];
  const ssize_t length = ::readlink(path.c_str(), buffer, sizeof buffer);
  if (length < 0) return std::nullopt;
  return std::string(buffer, static_cast<size_t>(length));
}

std::string TrimNewline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The names of `directory`'s entries; a directory that vanishes midway (a process exiting)
// yields what was read so far.
std::vector<std::string> EntryNames(const fs::path& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  return names;
}

bool IsNumber(const std::string& name) {
  return !name.empty() && name.find_first_not_of("0123456789") == std::string::npos;
}

std::vector<std::string> NumericEntries(const fs::path& directory) {
  std::vector<std::string> names = EntryNames(directory);
  std::erase_if(names, [](const std::string& name) { return !IsNumber(name); });
  return names;
}

// A task's fd table: fd number -> link target. Reading links never calls into a filesystem
// (stat would, and a file on a stuck FUSE mount would then put this process in D).
std::map<int, std::string> FdTable(const fs::path& fd_directory) {
  std::map<int, std::string> table;
  for (const std::string& fd : NumericEntries(fd_directory)) {
    if (std::optional<std::string> link = ReadLink(fd_directory / fd)) {
      table[std::atoi(fd.c_str())] = *link;
    }
  }
  return table;
}

// mountinfo writes space, tab, newline and backslash in a path as \ooo.
std::string UnescapeOctal(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool escape = text[i] == '\\' && i + 3 < text.size() &&
                        std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                    text.begin() + static_cast<std::ptrdiff_t>(i) + 4,
                                    [](char c) { return c >= '0' && c <= '7'; });
    if (escape) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Mount points of cgroup and cgroup2 filesystems in `mountinfo`, each once.
std::vector<std::string> CgroupHierarchies(std::string_view mountinfo) {
  std::vector<std::string> hierarchies;
  for (const MountEntry& mount : ParseMountInfo(mountinfo)) {
    if (mount.fstype != "cgroup" && mount.fstype != "cgroup2") continue;
    if (std::find(hierarchies.begin(), hierarchies.end(), mount.mount_point) == hierarchies.end()) {
      hierarchies.push_back(mount.mount_point);
    }
  }
  return hierarchies;
}

void AddWedgeCgroups(const fs::path& hierarchy, std::set<std::string>& cgroups) {
  for (const std::string& name : EntryNames(hierarchy)) {
    const fs::path top = hierarchy / name;
    std::error_code ec;
    if (name.rfind("wedge", 0) != 0 || !fs::is_directory(fs::symlink_status(top, ec))) continue;
    cgroups.insert(top.string());
    for (fs::recursive_directory_iterator it(top, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code inner;
      if (it->is_directory(inner) && !it->is_symlink(inner)) cgroups.insert(it->path().string());
    }
  }
}

// What one mount namespace holds: its FUSE entries and whatever is mounted under `state_dir`.
void AddNamespaceMounts(std::string_view mountinfo, const std::string& ns,
                        const fs::path& state_dir, HostSnapshot& snapshot) {
  for (const MountEntry& mount : ParseMountInfo(mountinfo)) {
    const std::string entry = mount.mount_point + " (" + mount.fstype + ") in " + ns;
    if (IsFuseType(mount.fstype)) snapshot.fuse_mounts.insert(entry);
    if (IsUnder(mount.mount_point, state_dir)) snapshot.state_dir_mounts.insert(entry);
  }
}

void AddNew(const std::set<std::string>& before, const std::set<std::string>& after,
            const std::string& kind, std::vector<std::string>& lines) {
  for (const std::string& item : after) {
    if (!before.contains(item)) lines.push_back(kind + " " + item);
  }
}

}  // namespace

std::optional<TaskStat> ParseTaskStat(std::string_view text) {
  // TID (COMM) STATE PPID PGRP SESSION TTY_NR TPGID FLAGS ...
  const size_t open = text.find(" (");
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  TaskStat stat;
  std::istringstream head{std::string(text.substr(0, open))};
  if (!(head >> stat.tid)) return std::nullopt;
  stat.comm = std::string(text.substr(open + 2, close - open - 2));
  std::istringstream rest{std::string(text.substr(close + 1))};
  std::string pgrp, session, tty, tpgid;
  if (!(rest >> stat.state >> stat.ppid >> pgrp >> session >> tty >> tpgid >> stat.flags)) {
    return std::nullopt;
  }
  return stat;
}

bool IsKernelThread(const TaskStat& stat) { return (stat.flags & kPfKthread) != 0; }

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
  std::vector<MountEntry> mounts;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, field;
    if (!(fields >> id >> parent >> device >> root >> mount_point)) continue;
    while (fields >> field && field != "-") {
    }
    MountEntry mount;
    if (field != "-" || !(fields >> mount.fstype)) continue;
    fields >> mount.source;
    mount.mount_point = UnescapeOctal(mount_point);
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

bool IsFuseType(std::string_view fstype) {
  return fstype == "fuse" || fstype == "fuseblk" || fstype == "fusectl" ||
         fstype.rfind("fuse.", 0) == 0;
}

bool IsUnder(const std::string& path, const fs::path& directory) {
  std::string root = directory.lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty()) return false;
  if (path == root) return true;
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         (root == "/" || path[root.size()] == '/');
}

bool IsStackOrWedgeProgram(std::string_view comm) {
  static const std::set<std::string_view> kExact = {"dockerd",    "containerd", "runc", "strace",
                                                    "wedge-fuse", "wedge-init", "wedge"};
  return kExact.contains(comm) || comm.rfind("containerd-shim", 0) == 0 ||
         comm.rfind("runc:[", 0) == 0 || comm.rfind("qemu-system", 0) == 0;
}

const std::vector<std::string>& WatchedSysctls() {
  static const std::vector<std::string> kSysctls = {"fs.pipe-user-pages-soft",
                                                    "fs.pipe-user-pages-hard", "fs.pipe-max-size"};
  return kSysctls;
}

fs::path StateDirectory() {
  const char* state_dir = std::getenv("WEDGE_STATE_DIR");
  return state_dir != nullptr && *state_dir != '\0' ? fs::path(state_dir) : fs::path("/run/wedge");
}

HostSnapshot CaptureHostSnapshot(const fs::path& state_dir, const fs::path& proc) {
  HostSnapshot snapshot;
  const std::string self = std::to_string(::getpid());
  std::set<std::string> namespaces_read;
  for (const std::string& pid : NumericEntries(proc)) {
    const fs::path process = proc / pid;
    std::string comm = TrimNewline(ReadText(process / "comm").value_or(""));
    bool alive = false;
    pid_t parent = 0;
    std::vector<std::map<int, std::string>> tables;
    int fuse_descriptors = 0;
    for (const std::string& tid : NumericEntries(process / "task")) {
      const fs::path task = process / "task" / tid;
      std::optional<std::string> stat_text = ReadText(task / "stat");
      std::optional<TaskStat> stat = stat_text ? ParseTaskStat(*stat_text) : std::nullopt;
      if (!stat) continue;
      if (IsKernelThread(*stat)) continue;
      if (tid == pid) {
        parent = stat->ppid;
        if (comm.empty()) comm = stat->comm;
      }
      if (stat->state != 'Z' && stat->state != 'X') alive = true;
      if (stat->state == 'D') snapshot.d_state_tasks.insert(tid + "(" + stat->comm + ")");
      // Each mount namespace once, read through the first task found in it.
      if (std::optional<std::string> ns = ReadLink(task / "ns" / "mnt");
          ns && namespaces_read.insert(*ns).second) {
        if (std::optional<std::string> mountinfo = ReadText(task / "mountinfo")) {
          AddNamespaceMounts(*mountinfo, *ns, state_dir, snapshot);
        }
      }
      // Threads that share a table list the same descriptors: it counts once. A table
      // unshared and not changed since would count once too, which never hides a holder.
      std::map<int, std::string> table = FdTable(task / "fd");
      if (table.empty() || std::find(tables.begin(), tables.end(), table) != tables.end()) continue;
      fuse_descriptors += static_cast<int>(std::count_if(
          table.begin(), table.end(), [](const auto& fd) { return fd.second == "/dev/fuse"; }));
      tables.push_back(std::move(table));
    }
    const std::string name = pid + "(" + comm + ")";
    if (fuse_descriptors > 0) snapshot.fuse_device_holders[name] = fuse_descriptors;
    const bool our_child = std::to_string(parent) == self;
    if (pid != self && IsStackOrWedgeProgram(comm) && (alive || our_child) &&
        !(comm == "wedge" && our_child)) {
      snapshot.processes.insert(name);
    }
  }
  snapshot.mount_namespaces = static_cast<int>(namespaces_read.size());

  if (std::optional<std::string> mountinfo = ReadText(proc / "self" / "mountinfo")) {
    for (const std::string& hierarchy : CgroupHierarchies(*mountinfo)) {
      AddWedgeCgroups(hierarchy, snapshot.wedge_cgroups);
    }
  }
  for (const std::string& name : WatchedSysctls()) {
    std::string file = name;
    std::replace(file.begin(), file.end(), '.', '/');
    if (std::optional<std::string> value = ReadText(proc / "sys" / file)) {
      snapshot.sysctls[name] = TrimNewline(*value);
    }
  }
  for (const std::string& name : EntryNames(state_dir / "journal")) {
    snapshot.journal_files.insert(name);
  }
  for (const std::string& name : EntryNames(state_dir / "runs")) {
    snapshot.run_directories.insert((state_dir / "runs" / name).string());
  }
  return snapshot;
}

std::vector<std::string> Diff(const HostSnapshot& before, const HostSnapshot& after) {
  std::vector<std::string> lines;
  AddNew(before.d_state_tasks, after.d_state_tasks, "D-state task", lines);
  for (const auto& [holder, count] : after.fuse_device_holders) {
    auto was = before.fuse_device_holders.find(holder);
    const int held = was == before.fuse_device_holders.end() ? 0 : was->second;
    if (count > held) {
      lines.push_back("/dev/fuse held by " + holder + ": " + std::to_string(count) +
                      " descriptor(s), " + std::to_string(held) + " before");
    }
  }
  AddNew(before.fuse_mounts, after.fuse_mounts, "FUSE mount", lines);
  AddNew(before.wedge_cgroups, after.wedge_cgroups, "cgroup", lines);
  for (const auto& [name, value] : after.sysctls) {
    auto was = before.sysctls.find(name);
    if (was != before.sysctls.end() && was->second != value) {
      lines.push_back("sysctl " + name + " is " + value + ", was " + was->second);
    }
  }
  for (const auto& [name, value] : before.sysctls) {
    if (!after.sysctls.contains(name)) lines.push_back("sysctl " + name + " no longer readable");
  }
  AddNew(before.processes, after.processes, "process", lines);
  AddNew(before.state_dir_mounts, after.state_dir_mounts, "mount under the state directory", lines);
  AddNew(before.journal_files, after.journal_files, "journal", lines);
  AddNew(before.run_directories, after.run_directories, "run directory", lines);
  return lines;
}

std::vector<std::string> SettledDiff(const HostSnapshot& before, const fs::path& state_dir,
                                     std::chrono::milliseconds settle) {
  const auto deadline = std::chrono::steady_clock::now() + settle;
  for (;;) {
    std::vector<std::string> lines = Diff(before, CaptureHostSnapshot(state_dir));
    if (lines.empty() || std::chrono::steady_clock::now() >= deadline) return lines;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace wedge::testing
