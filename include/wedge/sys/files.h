// Small, exact file helpers for /proc, /sys and wedge's state directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "wedge/base/result.h"

namespace wedge::sys {

// Reads a whole file (a /proc or /sys file, or a small regular file).
Result<std::string> ReadFile(const std::filesystem::path& path);
// Writes `contents` to an existing file with a single write(2), as sysctl and cgroup files need.
Status WriteExisting(const std::filesystem::path& path, std::string_view contents);
// Creates or replaces `path` atomically (temp file in the same directory, fsync, rename).
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);
// `text` without trailing newlines and spaces.
std::string TrimTrailing(std::string_view text);

}  // namespace wedge::sys
