// ScopedMount: a mount wedge makes on the host, journaled and unmounted at the end.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/journal.h"

namespace wedge::sys {

// One line of /proc/PID/mountinfo (proc(5)), the fields wedge uses.
struct MountInfo {
  std::string device;                 // "MAJOR:MINOR"
  std::filesystem::path mount_point;  // octal escapes ("\040" for a space) decoded
  std::string fstype;                 // "fuse.wedge", "cgroup2", ...
};
// Parses mountinfo text; malformed lines are skipped.
std::vector<MountInfo> ParseMountInfo(std::string_view text);

// True when `target` is a mount point of a filesystem of type `fstype` (per /proc/self/mountinfo).
bool IsMountedAs(const std::filesystem::path& target, const std::string& fstype);

class ScopedMount {
 public:
  // Mounts `fstype` on `target`, unless it is already mounted there: then nothing is changed,
  // nothing is journaled, and nothing is unmounted later (the host had it).
  static Result<std::unique_ptr<ScopedMount>> EnsureMounted(Journal& journal,
                                                            const std::string& fstype,
                                                            const std::filesystem::path& target);
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  ~ScopedMount();

  bool mounted_by_wedge() const { return seq_ != 0; }

 private:
  ScopedMount(Journal& journal, std::uint64_t seq) : journal_(journal), seq_(seq) {}
  Journal& journal_;
  std::uint64_t seq_;
};

// Undo of a "mount" entry: unmounts `target` if it is still mounted as `fstype`.
Status UnmountIfMounted(const std::filesystem::path& target, const std::string& fstype,
                        std::vector<std::string>& log);

}  // namespace wedge::sys
