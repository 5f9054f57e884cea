#include <sys/resource.h>
#include <sys/utsname.h>

#include "wedge/runner/runner.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/command.h"
#include "wedge/sys/sysctl.h"

namespace wedge::runner {
namespace {

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string RlimitText(int resource) {
  rlimit limit{};
  if (::getrlimit(resource, &limit) != 0) return "?";
  auto text = [](rlim_t value) {
    return value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(value);
  };
  return text(limit.rlim_cur) + ":" + text(limit.rlim_max);
}

}  // namespace

report::HostInfo CollectHostInfo(const RunOptions& options) {
  report::HostInfo host;
  utsname name{};
  if (::uname(&name) == 0) {
    host.kernel_release = name.release;
    host.kernel_version = name.version;
    host.machine = name.machine;
  }
  host.cgroup_mode = sys::CgroupMode();
  for (const auto& sysctl : scenario::AllowedSysctls()) {
    if (Result<std::string> value = sys::ReadSysctl(sysctl); value.ok()) {
      host.sysctls[sysctl] = *value;
    }
  }
  host.rlimits["RLIMIT_NOFILE"] = RlimitText(RLIMIT_NOFILE);
  host.rlimits["RLIMIT_NPROC"] = RlimitText(RLIMIT_NPROC);
  host.wedge_version = WEDGE_VERSION;
  host.binaries.push_back(
      {"wedge-init", (options.fixtures_dir / "wedge-init").string(), WEDGE_VERSION});
  host.binaries.push_back({"wedge-fuse", (options.fixtures_dir / "wedge-fuse").string(),
                           std::string("libfuse ") + WEDGE_LIBFUSE_VERSION});
  if (Result<sys::CommandOutput> fusermount = sys::RunCommand("fusermount3", {"--version"});
      fusermount.ok()) {
    host.binaries.push_back({"fusermount3", "fusermount3", FirstLine(fusermount->output)});
  }
  return host;
}

}  // namespace wedge::runner
