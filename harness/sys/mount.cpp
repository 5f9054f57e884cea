#include "wedge/sys/mount.h"

#include <sys/mount.h>

#include <cctype>
#include <sstream>

#include "wedge/sys/files.h"

namespace wedge::sys {

namespace {

std::string UnescapeMountPath(std::string_view text) {
  std::string path;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && std::isdigit(text[i + 1]) &&
        std::isdigit(text[i + 2]) && std::isdigit(text[i + 3])) {
      path.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 3)), nullptr, 8)));
      i += 3;
    } else {
      path.push_back(text[i]);
    }
  }
  return path;
}

}  // namespace

std::vector<MountInfo> ParseMountInfo(std::string_view text) {
  // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
  std::vector<MountInfo> mounts;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, field, type;
    if (!(fields >> id >> parent >> device >> root >> mount_point)) continue;
    while (fields >> field && field != "-") {
    }
    if (field != "-" || !(fields >> type)) continue;
    mounts.push_back({device, UnescapeMountPath(mount_point), type});
  }
  return mounts;
}

bool IsMountedAs(const std::filesystem::path& target, const std::string& fstype) {
  Result<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return false;
  for (const MountInfo& mount : ParseMountInfo(*mountinfo)) {
    if (mount.mount_point == target && mount.fstype == fstype) return true;
  }
  return false;
}

Result<std::unique_ptr<ScopedMount>> ScopedMount::EnsureMounted(
    Journal& journal, const std::string& fstype, const std::filesystem::path& target) {
  if (IsMountedAs(target, fstype)) return std::unique_ptr<ScopedMount>(new ScopedMount(journal, 0));
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq, journal.Record(MountChange{target, fstype}));
  if (::mount(fstype.c_str(), target.c_str(), fstype.c_str(), MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0) {
    Error error = ErrnoError("mount('" + fstype + "', '" + target.string() + "')");
    (void)journal.Undo(seq);
    return error;
  }
  return std::unique_ptr<ScopedMount>(new ScopedMount(journal, seq));
}

ScopedMount::~ScopedMount() {
  if (seq_ != 0) (void)journal_.Undo(seq_);
}

Status UnmountIfMounted(const std::filesystem::path& target, const std::string& fstype,
                        std::vector<std::string>& log) {
  if (!IsMountedAs(target, fstype)) return OkStatus();
  if (::umount2(target.c_str(), 0) != 0) {
    return ErrnoError("umount2('" + target.string() + "')");
  }
  log.push_back("unmounted " + fstype + " from " + target.string());
  return OkStatus();
}

}  // namespace wedge::sys
