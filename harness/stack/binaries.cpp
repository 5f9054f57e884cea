#include <unistd.h>

#include <algorithm>
#include <array>
#include <sstream>

#include "wedge/stack/docker_stack.h"
#include "wedge/sys/command.h"

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

}  // namespace

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
    Result<sys::CommandOutput> output =
        sys::RunCommand(path.string(), {flag}, std::chrono::seconds(5),
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
