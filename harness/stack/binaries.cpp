#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <sstream>
#include <vector>

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

}  // namespace

std::filesystem::path Binaries::HostPath(const std::string& name) const {
  const std::filesystem::path& path = Path(name);
  if (root.empty() || path.empty()) return path;
  return root / path.relative_path();
}

std::map<std::string, std::string> Binaries::PackageVersions() const {
  const std::filesystem::path dpkg_root = root.empty() ? std::filesystem::path("/") : root;
  std::vector<std::filesystem::path> wanted;
  for (const auto& [name, path] : paths) wanted.push_back(path);
  const std::map<std::filesystem::path, std::string> owners = OwningPackages(dpkg_root, wanted);
  std::map<std::string, std::string> versions;
  for (const auto& [name, path] : paths) {
    auto owner = owners.find(path);
    std::optional<std::string> version;
    if (owner != owners.end()) version = InstalledVersion(dpkg_root, owner->second);
    versions[name] = version ? owner->second + " " + *version : "not from a Debian package";
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
  if (std::none_of(kVersionFlags.begin(), kVersionFlags.end(),
                   [&](const auto& known) { return name == known.first; })) {
    return Error("--with " + name +
                 ": unknown binary (one of docker, dockerd, containerd, runc, "
                 "containerd-shim-runc-v2)");
  }
  std::error_code ec;
  path = std::filesystem::absolute(path, ec);
  if (ec || !std::filesystem::is_regular_file(path, ec)) {
    return Error("--with " + name + "=" + path.string() + ": not a regular file");
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return ErrnoError("--with " + name + "=" + path.string() + ": access(X_OK)");
  }
  paths[name] = path.lexically_normal();
  return OkStatus();
}

const std::filesystem::path& Binaries::Path(const std::string& name) const {
  static const std::filesystem::path kNone;
  auto it = paths.find(name);
  return it == paths.end() ? kNone : it->second;
}

std::map<std::string, std::string> Binaries::Versions() const {
  std::map<std::string, std::string> versions;
  for (const auto& [name, flag] : kVersionFlags) {
    const std::filesystem::path& path = Path(name);
    if (path.empty()) continue;
    // Debian's docker 20.10 CLI contacts its daemon even for --version: point it at a socket
    // that cannot exist, never at the host's default /var/run/docker.sock.
    // A release root's binary runs there, with its own libraries.
    const std::string program = root.empty() ? path.string() : "chroot";
    std::vector<std::string> args = {flag};
    if (!root.empty()) args = {root.string(), path.string(), flag};
    Result<sys::CommandOutput> output =
        sys::RunCommand(program, args, std::chrono::seconds(5),
                        {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                         {"DOCKER_HOST", "unix:///run/wedge/no-daemon-here.sock"},
                         {"DOCKER_CONFIG", "/run/wedge/no-docker-config"},
                         {"HOME", "/run/wedge/no-home"}});
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
