// FUSE connections as the fusectl filesystem shows them.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "wedge/base/result.h"

namespace wedge::sys {

// Where fusectl is mounted when the host has it (it is not, by default, on Debian 12 without
// systemd): /sys/fs/fuse/connections.
inline constexpr const char* kFusectlDirectory = "/sys/fs/fuse/connections";

// The connection numbers fusectl lists now.
std::set<unsigned> ListFuseConnections();
// The FUSE connections mounted in the mount namespace of task `tid` (fuse and fuse.* entries
// of /proc/TID/mountinfo; the connection number is the minor of the device, major 0).
std::set<unsigned> FuseConnectionsMountedBy(pid_t tid);
// Parses mountinfo text for the FUSE connections it mounts.
std::set<unsigned> ParseFuseConnections(std::string_view mountinfo);
// Aborts a connection: every request waiting on it fails at once with ECONNABORTED, which
// frees a task stuck in request_wait_answer. Needs fusectl mounted.
Status AbortFuseConnection(unsigned connection);
// Aborts every connection that any task of the processes in `pids` mounts.
std::vector<unsigned> AbortFuseConnectionsOf(const std::vector<pid_t>& pids,
                                             std::vector<std::string>& log);

}  // namespace wedge::sys
