#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <sstream>
#include <vector>

#include "wedge/base/debian_releases.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/stack/go_version.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"

namespace wedge::stack {
namespace {

// Each binary and the flag that makes it print its version.
constexpr std::array<std::pair<const char*, const char*>, 5> kVersionFlags = {{
    {"docker", "--version"},
    {"dockerd", "--version"},
    {"containerd", "--version"},
    {"runc", "--version"},
    {"containerd-shim-runc-v2", "-v"},
}};

std::string FirstLine(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
  }
  return "";
}

// containerd-shim-runc-v2 -v prints its name alone on the first line, the version below:
// "containerd-shim-runc-v2:\n  Version:  1.6.20~ds1\n...".
std::string ShimVersion(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t at = line.find("Version:");
    if (at == std::string::npos) continue;
    std::string version = line.substr(at + 8);
    version.erase(0, version.find_first_not_of(" \t"));
    return "containerd-shim-runc-v2 version " + version;
  }
  return FirstLine(text);
}

// The dpkg database's owners of `paths` (as seen under `root`): for each path, the package
// whose file list names it. Each list is read once.
std::map<std::filesystem::path, std::string> OwningPackages(
    const std::filesystem::path& root, const std::vector<std::filesystem::path>& paths) {
  std::map<std::filesystem::path, std::string> owners;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root / "var/lib/dpkg/info", ec)) {
    if (entry.path().extension() != ".list") continue;
    Result<std::string> list = sys::ReadFile(entry.path());
    if (!list.ok()) continue;
    const std::string text = "\n" + *list;
    for (const auto& path : paths) {
      // The whole line: "/usr/bin/docker", not a longer path that starts with it.
      if (owners.contains(path) || text.find("\n" + path.string() + "\n") == std::string::npos) {
        continue;
      }
      std::string package = entry.path().stem().string();
      if (size_t colon = package.find(':'); colon != std::string::npos) package.resize(colon);
      owners[path] = package;
    }
  }
  return owners;
}

// The version of installed `package` in the dpkg status file under `root`.
std::optional<std::string> InstalledVersion(const std::filesystem::path& root,
                                            const std::string& package) {
  Result<std::string> status = sys::ReadFile(root / "var/lib/dpkg/status");
  if (!status.ok()) return std::nullopt;
  std::istringstream lines(*status);
  bool in_package = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) {
      in_package = false;
    } else if (line.rfind("Package: ", 0) == 0) {
      in_package = line.substr(9) == package;
    } else if (in_package && line.rfind("Version: ", 0) == 0) {
      return line.substr(9);
    }
  }
  return std::nullopt;
}

bool IsKnownBinary(const std::string& name) {
  return std::any_of(kVersionFlags.begin(), kVersionFlags.end(),
                     [&](const auto& known) { return name == known.first; });
}

Error UnknownBinary(const std::string& name) {
  return Error("--with " + name +
               ": unknown binary (one of docker, dockerd, containerd, runc, "
               "containerd-shim-runc-v2)");
}

std::string VersionFlagOf(const std::string& name) {
  for (const auto& [known, flag] : kVersionFlags) {
    if (name == known) return flag;
  }
  return "--version";
}

// Debian's docker 20.10 CLI contacts its daemon even for --version: point it at a socket that
// cannot exist, never at the host's default /var/run/docker.sock.
std::map<std::string, std::string> QueryEnvironment() {
  return {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
          {"DOCKER_HOST", "unix:///run/wedge/no-daemon-here.sock"},
          {"DOCKER_CONFIG", "/run/wedge/no-docker-config"},
          {"HOME", "/run/wedge/no-home"}};
}

}  // namespace

std::filesystem::path Binaries::HostPath(const std::string& name) const {
  if (auto component = components.find(name); component != components.end()) {
    return component->second.root / component->second.path.relative_path();
  }
  const std::filesystem::path& path = Path(name);
  if (root.empty() || path.empty()) return path;
  return root / path.relative_path();
}

std::map<std::string, std::string> Binaries::PackageVersions() const {
  // Each binary's own dpkg database: its component's root, the stack's root, or the host's.
  std::map<std::filesystem::path, std::vector<std::pair<std::string, std::filesystem::path>>>
      by_root;
  for (const auto& [name, path] : paths) {
    if (auto component = components.find(name); component != components.end()) {
      by_root[component->second.root].emplace_back(name, component->second.path);
    } else {
      by_root[root.empty() ? std::filesystem::path("/") : root].emplace_back(name, path);
    }
  }
  std::map<std::string, std::string> versions;
  for (const auto& [dpkg_root, binaries] : by_root) {
    std::vector<std::filesystem::path> wanted;
    for (const auto& [name, path] : binaries) wanted.push_back(path);
    const std::map<std::filesystem::path, std::string> owners = OwningPackages(dpkg_root, wanted);
    for (const auto& [name, path] : binaries) {
      auto owner = owners.find(path);
      std::optional<std::string> version;
      if (owner != owners.end()) version = InstalledVersion(dpkg_root, owner->second);
      versions[name] = version ? owner->second + " " + *version : "not from a Debian package";
    }
  }
  return versions;
}

std::map<std::string, std::string> Binaries::GoVersions() const {
  std::map<std::string, std::string> versions;
  for (const auto& [name, path] : paths) {
    Result<std::string> go = GoVersionOf(HostPath(name));
    versions[name] = go.ok() ? *go : "unknown: " + go.error().message();
  }
  return versions;
}

Binaries Binaries::Defaults() {
  Binaries binaries;
  binaries.paths = {
      {"docker", "/usr/bin/docker"},
      {"dockerd", "/usr/sbin/dockerd"},
      {"containerd", "/usr/bin/containerd"},
      {"runc", "/usr/sbin/runc"},
      {"containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"},
  };
  return binaries;
}

Status Binaries::Override(std::string_view assignment) {
  if (!root.empty()) {
    return Error("--with " + std::string(assignment) + ": the " + release +
                 " stack runs in its release root, where a host path is not visible");
  }
  size_t equals = assignment.find('=');
  if (equals == std::string_view::npos) {
    return Error("--with '" + std::string(assignment) + "': expected NAME=PATH");
  }
  std::string name(assignment.substr(0, equals));
  std::filesystem::path path(assignment.substr(equals + 1));
  if (!IsKnownBinary(name)) return UnknownBinary(name);
  const std::string value = path.string();
  std::error_code ec;
  path = std::filesystem::absolute(path, ec);
  if (ec || !std::filesystem::is_regular_file(path, ec)) {
    if (value.find('/') == std::string::npos) {
      return Error("--with " + name + "=" + value + ": neither a release (" + DebianReleaseList() +
                   ") nor a file");
    }
    return Error("--with " + name + "=" + path.string() + ": not a regular file");
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return ErrnoError("--with " + name + "=" + path.string() + ": access(X_OK)");
  }
  paths[name] = path.lexically_normal();
  return OkStatus();
}

Status Binaries::UseComponent(const std::string& name, const std::string& component_release,
                              const std::filesystem::path& component_root) {
  if (!IsKnownBinary(name)) return UnknownBinary(name);
  const std::filesystem::path path = Defaults().Path(name);
  const std::filesystem::path file = component_root / path.relative_path();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec) || ::access(file.c_str(), X_OK) != 0) {
    return Error("--with " + name + "=" + component_release + ": the " + component_release +
                 " stack has no " + name + " (no executable " + path.string() + " in its root " +
                 component_root.string() + ")");
  }
  components[name] = Component{component_release, component_root, path};
  // On the host's stack the daemons run the file where it is; in a release root it is bound
  // over the root's own at `path` (DockerStack::Start).
  paths[name] = root.empty() ? file : path;
  return OkStatus();
}

const std::string& Binaries::ReleaseOf(const std::string& name) const {
  auto component = components.find(name);
  return component == components.end() ? release : component->second.release;
}

std::string Binaries::Label() const {
  if (root.empty() && components.empty()) return "";
  std::string label = release.empty() ? "host" : release;
  for (const auto& [name, component] : components) {
    label += "+" + name + "=" + component.release;
  }
  return label;
}

Status Binaries::CheckComponentsRun() const {
  for (const auto& [name, component] : components) {
    const VersionQuery query = QueryVersionOf(name);
    Result<sys::CommandOutput> output =
        sys::RunCommand(query.program, query.args, std::chrono::seconds(10), QueryEnvironment());
    std::string why;
    if (!output.ok()) {
      why = output.error().message();
    } else if (output->exit_code != 0) {
      why = FirstLine(output->output);
      if (why.empty()) why = "it exited with status " + std::to_string(output->exit_code);
    } else {
      continue;
    }
    const std::string where = root.empty() ? "on this host" : "in the " + release + " root";
    return Error("--with " + name + "=" + component.release + ": " + component.release + "'s " +
                 name + " does not run " + where + ": " + why);
  }
  return OkStatus();
}

const std::filesystem::path& Binaries::Path(const std::string& name) const {
  static const std::filesystem::path kNone;
  auto it = paths.find(name);
  return it == paths.end() ? kNone : it->second;
}

Binaries::VersionQuery Binaries::QueryVersionOf(const std::string& name) const {
  const std::filesystem::path& path = Path(name);
  const std::string flag = VersionFlagOf(name);
  // The docker CLI runs on the host, from wherever its file is.
  if (name == "docker" || root.empty()) return {HostPath(name).string(), {flag}};
  if (!components.contains(name)) return {"chroot", {root.string(), path.string(), flag}};
  // A component runs in the stack's root over the root's own binary: bound there in a mount
  // namespace that ends with the query.
  return {"unshare",
          {"--mount", "--propagation", "private", "--", "/bin/sh", "-c",
           R"(mount --bind -o ro "$1" "$2$3" && exec chroot "$2" "$3" "$4")", "sh",
           HostPath(name).string(), root.string(), path.string(), flag}};
}

std::map<std::string, std::string> Binaries::Versions() const {
  std::map<std::string, std::string> versions;
  for (const auto& [name, flag] : kVersionFlags) {
    const std::filesystem::path& path = Path(name);
    if (path.empty()) continue;
    const VersionQuery query = QueryVersionOf(name);
    Result<sys::CommandOutput> output =
        sys::RunCommand(query.program, query.args, std::chrono::seconds(5), QueryEnvironment());
    if (!output.ok()) {
      versions[name] = "unavailable: " + output.error().message();
    } else if (output->exit_code != 0) {
      versions[name] = "unavailable: " + path.string() + " " + flag + " exited with status " +
                       std::to_string(output->exit_code);
    } else {
      versions[name] = std::string(name) == "containerd-shim-runc-v2" ? ShimVersion(output->output)
                                                                      : FirstLine(output->output);
    }
  }
  return versions;
}

}  // namespace wedge::stack
