// A Debian release's docker stack, as a root directory built once from Debian's archive.
//
// `wedge run --stack RELEASE` runs the private stack on that release's own dockerd, containerd,
// shim, runc and docker-init, with that release's libraries: the stack's sandbox pivots its
// mount namespace into the release root (read-only; /dev and /sys bound in, a fresh /proc, a
// private /run holding the stack directory, a tmpfs /tmp), so every daemon, and every runc the
// shim starts, resolves its paths and its libraries there. Nothing is installed on the host.
// The docker CLI, which links nothing but libc, runs on the host from the root (the command
// steps confine it as they confine the host's CLI).
//
// The root is built by mmdebstrap (--variant=essential plus the stack's packages, at exactly
// the versions the archive offers now) into CACHE/.build-RUN_ID, journaled so that a killed
// build is removed by `wedge cleanup`, in a mount and pid namespace of its own so that nothing
// it mounts can outlive it; it is renamed to CACHE/RELEASE-KEY when complete, and only then is
// its manifest CACHE/RELEASE-KEY.json written. KEY is a hash of the package versions, so a new
// upload to the archive makes a new root. A root without its manifest is never used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/stack/release_archive.h"
#include "wedge/sys/journal.h"

namespace wedge::stack {

// The releases wedge builds stacks of are wedge::DebianReleases() (base/debian_releases.h).

// The packages of `release`'s stack: docker.io, containerd, runc (docker.io brings tini, whose
// docker-init `--init` runs); from trixie on the CLI is its own package, docker-cli.
std::vector<std::string> StackPackages(const std::string& release);

// Where release roots are kept: sys::DefaultStackCacheDirectory() (sys/journal.h).

// The mirror and each release's archive: stack/release_archive.h.

// Package -> version from `apt-cache show --no-all-versions` output (stanzas of "Package:" and
// "Version:" lines).
std::map<std::string, std::string> ParseCandidateVersions(std::string_view text);

// The directory name of a root: "bullseye-" and 12 hex digits of a hash of its packages.
std::string RootName(const std::string& release,
                     const std::map<std::string, std::string>& packages);

struct ReleaseRoot {
  std::string release;
  std::filesystem::path root;                   // CACHE/RELEASE-KEY
  std::map<std::string, std::string> packages;  // package -> Debian version
  std::int64_t build_ms = -1;                   // this call's build; -1 when it was cached
  std::uint64_t size_bytes = 0;

  // The stack's binaries inside the root, with `root` and `release` set.
  Binaries StackBinaries() const;
};

// The root of `release`'s stack at the versions its archive offers now: resolved with apt-get
// on a list of that release alone (kept in CACHE/apt/RELEASE; a resolution less than an hour
// old is used again, so one suite never mixes roots), then taken from the cache or built
// (journaled in `journal`). `say` (may be null) gets a line per step. An unreachable archive
// falls back to the newest cached root of the release, and says so; without one it is an error
// naming the release, as is a package the archive lacks or a failed build.
Result<ReleaseRoot> EnsureReleaseRoot(const std::string& release, sys::Journal& journal,
                                      const std::filesystem::path& cache, std::ostream* say);

}  // namespace wedge::stack
