#include "wedge/vm/guest_stack.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "wedge/sys/files.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

// What wedge runs beside the stack, from the host, at the host's paths: GNU tar builds the
// images (busybox tar lacks --numeric-owner), strace is the syscall probe and the hold, ldd (a
// bash script) finds a fixture image's libraries, sha256sum names the images, unshare and
// chroot run a release root's version queries.
constexpr const char* kStackTools[] = {"/usr/bin/tar",    "/usr/bin/strace",    "/bin/bash",
                                       "/usr/bin/ldd",    "/usr/bin/sha256sum", "/usr/bin/unshare",
                                       "/usr/sbin/chroot"};

// docker run --init starts it; docker.io installs it beside the CLI.
constexpr const char* kDockerInit = "/usr/bin/docker-init";

// The guest's root is root's alone: dockerd (--group=root) and containerd look the group up.
constexpr const char* kPasswd = "root:x:0:0:root:/root:/bin/sh\n";
constexpr const char* kGroup = "root:x:0:\n";

Status AddProgram(const fs::path& program, GuestContents& contents) {
  if (::access(program.c_str(), X_OK) != 0) {
    return Error("the private stack in a guest needs " + program.string() +
                 ", which this host lacks");
  }
  if (std::find(contents.programs.begin(), contents.programs.end(), program) ==
      contents.programs.end()) {
    contents.programs.push_back(program);
  }
  return OkStatus();
}

}  // namespace

bool UsesStack(const std::vector<scenario::Scenario>& scenarios) {
  return std::any_of(scenarios.begin(), scenarios.end(),
                     [](const scenario::Scenario& scenario) { return scenario.stack.required; });
}

std::vector<std::string> StackModules(const stack::Binaries& binaries) {
  std::vector<std::string> modules = {"overlay"};
  if (!binaries.root.empty()) modules.insert(modules.end(), {"virtio_pci", "virtio_blk"});
  return modules;
}

Status AddStack(const stack::Binaries& binaries, GuestContents& contents) {
  if (!binaries.components.empty()) {
    return Error("a stack mixed from releases (" + binaries.Label() +
                 ") does not run in a guest: run the mix on this kernel");
  }
  for (const char* tool : kStackTools) WEDGE_RETURN_IF_ERROR(AddProgram(tool, contents));
  contents.switch_root = true;
  if (binaries.root.empty()) {
    for (const auto& [name, path] : binaries.paths) {
      WEDGE_RETURN_IF_ERROR(AddProgram(path, contents));
    }
    WEDGE_RETURN_IF_ERROR(AddProgram(kDockerInit, contents));
    contents.files["/etc/passwd"] = kPasswd;
    contents.files["/etc/group"] = kGroup;
    return OkStatus();
  }
  // The root's manifest beside its mount point: the guest's wedge takes the root from the cache
  // as the host's does.
  const fs::path manifest = binaries.root.string() + ".json";
  WEDGE_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(manifest));
  contents.files[manifest] = std::move(text);
  contents.stack_root = binaries.root;
  // The CLI runs outside the root, as on the host (stack/release_root.h): its libraries come
  // from the host's, as they do there.
  contents.library_users.push_back(binaries.HostPath("docker"));
  contents.environment["WEDGE_STACK_CACHE"] = binaries.root.parent_path().string();
  contents.wedge_arguments.insert(contents.wedge_arguments.end(), {"--stack", binaries.release});
  return OkStatus();
}

}  // namespace wedge::vm
