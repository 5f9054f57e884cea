#include "wedge/sys/mount.h"

#include <sys/mount.h>

#include <sstream>

#include "wedge/sys/files.h"

namespace wedge::sys {

bool IsMountedAs(const std::filesystem::path& target, const std::string& fstype) {
  Result<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return false;
  std::istringstream lines(*mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, field, type;
    fields >> id >> parent >> device >> root >> mount_point;
    while (fields >> field && field != "-") {
    }
    fields >> type;
    if (mount_point == target.string() && type == fstype) return true;
  }
  return false;
}

Result<std::unique_ptr<ScopedMount>> ScopedMount::EnsureMounted(
    Journal& journal, const std::string& fstype, const std::filesystem::path& target) {
  if (IsMountedAs(target, fstype)) return std::unique_ptr<ScopedMount>(new ScopedMount(journal, 0));
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq,
                         journal.Record("mount", {{"target", target}, {"fstype", fstype}}));
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
