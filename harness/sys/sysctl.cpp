#include "wedge/sys/sysctl.h"

#include <algorithm>

#include "wedge/sys/files.h"

namespace wedge::sys {

std::filesystem::path SysctlPath(const std::string& name, const std::filesystem::path& proc_sys) {
  std::string relative = name;
  std::replace(relative.begin(), relative.end(), '.', '/');
  return proc_sys / relative;
}

Result<std::string> ReadSysctl(const std::string& name, const std::filesystem::path& proc_sys) {
  WEDGE_ASSIGN_OR_RETURN(std::string value, ReadFile(SysctlPath(name, proc_sys)));
  return TrimTrailing(value);
}

Result<std::unique_ptr<ScopedSysctl>> ScopedSysctl::Set(Journal& journal, const std::string& name,
                                                        const std::string& value,
                                                        const std::filesystem::path& proc_sys) {
  std::filesystem::path path = SysctlPath(name, proc_sys);
  WEDGE_ASSIGN_OR_RETURN(std::string old_value, ReadSysctl(name, proc_sys));
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq, journal.Record(SysctlChange{name, path, old_value}));
  if (Status status = WriteExisting(path, value); !status.ok()) {
    (void)journal.Undo(seq);
    return status.error().WithContext("setting sysctl " + name);
  }
  return std::unique_ptr<ScopedSysctl>(new ScopedSysctl(journal, seq, std::move(old_value)));
}

ScopedSysctl::~ScopedSysctl() { (void)journal_.Undo(seq_); }

}  // namespace wedge::sys
