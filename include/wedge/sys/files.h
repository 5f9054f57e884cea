// Small, exact file helpers for /proc, /sys and wedge's state directory.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "wedge/base/result.h"

namespace wedge::sys {

// Reads a whole file (a /proc or /sys file, or a small regular file).
Result<std::string> ReadFile(const std::filesystem::path& path);
// Reads `fd` from its current offset to the end; `name` says what it is in an error.
Result<std::string> ReadDescriptor(int fd, std::string_view name);
// Writes `contents` to an existing file with a single write(2), as sysctl and cgroup files need.
Status WriteExisting(const std::filesystem::path& path, std::string_view contents);
// Creates or replaces `path` atomically: `contents` go to a temporary file mkstemp makes in the
// same directory, which is fsync'd, given exactly `mode` (not filtered by the umask) and renamed
// over `path`; the directory is then fsync'd. A reader sees the old file or the whole new one;
// on failure the temporary is removed and `path` is left as it was.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode = 0644);
// Creates directory `path` (and missing parents) and makes it root's alone: mode 0700, owned by
// wedge's euid. Refuses a symbolic link or a directory another user owns: wedge's state and run
// directories hold the private stack's sockets and logs.
Status MakePrivateDirectory(const std::filesystem::path& path);
// Why `directory` cannot hold what wedge reads back as root (journals, the held-run marker), or
// OK: it must be a directory (not a symbolic link) of wedge's uid that no one else may enter.
Status CheckPrivateDirectory(const std::filesystem::path& directory);
// Creates directory `path` (and missing parents) for what wedge runs or reads back as root but
// others may read (release roots, kernels, apt state): then checks it with CheckSharedDirectory.
Status MakeSharedDirectory(const std::filesystem::path& path);
// Why `directory` cannot hold what wedge runs as root, or OK: a directory (not a symbolic link)
// of wedge's uid that no one else may write.
Status CheckSharedDirectory(const std::filesystem::path& directory);
// Why the open file `fd` is not one wedge wrote for itself, or OK: a regular file of wedge's
// uid, mode 0600, with no other name.
Status CheckPrivateFile(int fd);
// `text` without trailing newlines and spaces.
std::string TrimTrailing(std::string_view text);

}  // namespace wedge::sys
