// ScopedSysctl: a sysctl override that is journaled and restored.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "wedge/base/result.h"
#include "wedge/sys/journal.h"

namespace wedge::sys {

// "fs.pipe-user-pages-soft" -> PROC_SYS/fs/pipe-user-pages-soft.
std::filesystem::path SysctlPath(const std::string& name,
                                 const std::filesystem::path& proc_sys = "/proc/sys");
// The current value, trailing newline removed.
Result<std::string> ReadSysctl(const std::string& name,
                               const std::filesystem::path& proc_sys = "/proc/sys");

class ScopedSysctl {
 public:
  // Journals the current value, then writes `value`.
  static Result<std::unique_ptr<ScopedSysctl>> Set(
      Journal& journal, const std::string& name, const std::string& value,
      const std::filesystem::path& proc_sys = "/proc/sys");
  ScopedSysctl(const ScopedSysctl&) = delete;
  ScopedSysctl& operator=(const ScopedSysctl&) = delete;
  // Writes the old value back.
  ~ScopedSysctl();

  const std::string& old_value() const { return old_value_; }

 private:
  ScopedSysctl(Journal& journal, std::uint64_t seq, std::string old_value)
      : journal_(journal), seq_(seq), old_value_(std::move(old_value)) {}
  Journal& journal_;
  std::uint64_t seq_;
  std::string old_value_;
};

}  // namespace wedge::sys
