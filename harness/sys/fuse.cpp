#include "wedge/sys/fuse.h"

#include <filesystem>
#include <sstream>

#include "wedge/sys/files.h"
#include "wedge/sys/mount.h"

namespace wedge::sys {

std::set<unsigned> ListFuseConnections() {
  std::set<unsigned> connections;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kFusectlDirectory, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      connections.insert(static_cast<unsigned>(std::stoul(name)));
    }
  }
  return connections;
}

std::set<unsigned> ParseFuseConnections(std::string_view mountinfo) {
  std::set<unsigned> connections;
  for (const MountInfo& mount : ParseMountInfo(mountinfo)) {
    if (mount.fstype != "fuse" && mount.fstype.rfind("fuse.", 0) != 0) continue;
    size_t colon = mount.device.find(':');
    if (colon == std::string::npos || mount.device.substr(0, colon) != "0") continue;
    // fusectl names a connection by its superblock's dev_t; with major 0 that is the minor.
    connections.insert(static_cast<unsigned>(std::stoul(mount.device.substr(colon + 1))));
  }
  return connections;
}

std::set<unsigned> FuseConnectionsMountedBy(pid_t tid) {
  Result<std::string> mountinfo = ReadFile("/proc/" + std::to_string(tid) + "/mountinfo");
  if (!mountinfo.ok()) return {};
  return ParseFuseConnections(*mountinfo);
}

Status AbortFuseConnection(unsigned connection) {
  std::filesystem::path abort =
      std::filesystem::path(kFusectlDirectory) / std::to_string(connection) / "abort";
  return WriteExisting(abort, "1");
}

std::vector<unsigned> AbortFuseConnectionsOf(const std::vector<pid_t>& pids,
                                             std::vector<std::string>& log) {
  std::set<unsigned> connections;
  for (pid_t pid : pids) {
    // Read every thread: a thread stuck in exit_files still has its mount namespace, while
    // its zombie leader and a pid-namespace init already in exit_notify have none.
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
      for (unsigned c : FuseConnectionsMountedBy(tid)) connections.insert(c);
    }
  }
  std::vector<unsigned> aborted;
  for (unsigned connection : connections) {
    Status status = AbortFuseConnection(connection);
    if (status.ok()) {
      log.push_back("aborted FUSE connection " + std::to_string(connection) + " through fusectl");
      aborted.push_back(connection);
    } else {
      log.push_back("could not abort FUSE connection " + std::to_string(connection) + ": " +
                    status.error().message());
    }
  }
  return aborted;
}

}  // namespace wedge::sys
