#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>

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

report::BinaryVersion Binary(std::string name, std::string path, std::string version) {
  report::BinaryVersion binary;
  binary.name = std::move(name);
  binary.path = std::move(path);
  binary.version = std::move(version);
  return binary;
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
      Binary("wedge-init", (options.fixtures_dir / "wedge-init").string(), WEDGE_VERSION));
  host.binaries.push_back(Binary("wedge-fuse", (options.fixtures_dir / "wedge-fuse").string(),
                                 std::string("libfuse ") + WEDGE_LIBFUSE_VERSION));
  if (Result<sys::CommandOutput> fusermount = sys::RunCommand("fusermount3", {"--version"});
      fusermount.ok()) {
    host.binaries.push_back(Binary("fusermount3", "fusermount3", FirstLine(fusermount->output)));
  }
  return host;
}

std::vector<report::BinaryVersion> DescribeBinaries(
    const std::vector<scenario::Scenario>& scenarios, const stack::Binaries& binaries) {
  std::vector<report::BinaryVersion> described;
  if (std::none_of(scenarios.begin(), scenarios.end(),
                   [](const scenario::Scenario& s) { return s.stack.required; })) {
    return described;
  }
  const std::map<std::string, std::string> versions = binaries.Versions();
  const std::map<std::string, std::string> packages = binaries.PackageVersions();
  const std::map<std::string, std::string> go_versions = binaries.GoVersions();
  for (const auto& [name, version] : versions) {
    report::BinaryVersion binary;
    binary.name = name;
    binary.path = binaries.HostPath(name).string();
    binary.version = version;
    if (auto it = packages.find(name); it != packages.end()) binary.package = it->second;
    if (auto it = go_versions.find(name); it != go_versions.end()) binary.go_version = it->second;
    binary.release = binaries.ReleaseOf(name);
    described.push_back(std::move(binary));
  }
  return described;
}

}  // namespace wedge::runner
