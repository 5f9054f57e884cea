// A private docker stack: wedge's own containerd and dockerd, never the host's.
//
// Both daemons run in a sandbox of their own (new pid and mount namespaces, a fresh /proc, a
// pids cgroup) under the run directory: containerd with its own root, state, socket and
// config; dockerd with its own data-root, exec-root, pidfile, socket and config file, with
// --bridge=none --iptables=false, and containers' cgroups under a parent of wedge's own.
// Mounts the daemons make vanish with their mount namespace; killing the sandbox's init ends
// every daemon, shim and container at once. Everything is journaled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/journal.h"

namespace wedge::stack {

// A binary taken from another release's root than the stack's (`--with runc=bullseye`).
struct Component {
  std::string release;         // "bullseye"
  std::filesystem::path root;  // that release's root (stack/release_root.h)
  std::filesystem::path path;  // where the binary is inside it: "/usr/sbin/runc"
};

// Which binaries a stack and its scenarios use, by name: "docker", "dockerd", "containerd",
// "runc", "containerd-shim-runc-v2". `--with NAME=PATH` overrides a default.
struct Binaries {
  // As the daemons see them: under `root` when there is one.
  std::map<std::string, std::filesystem::path> paths;
  // The release root the stack runs in (stack/release_root.h); empty: the host's own /.
  std::filesystem::path root;
  std::string release;  // the root's Debian release; empty for the host's binaries
  // Binaries from other releases' roots, by name. In a release root the component's file is
  // bound over paths[name] in the stack's mount namespace, so that it runs there with the
  // root's libraries, as a newer or older package installed into that release would; on the
  // host's stack paths[name] is the file itself, run with the host's libraries.
  std::map<std::string, Component> components;
  // Debian's packages: /usr/bin/docker, /usr/sbin/dockerd, /usr/bin/containerd, /usr/sbin/runc,
  // /usr/bin/containerd-shim-runc-v2.
  static Binaries Defaults();
  // Parses "NAME=PATH"; the name must be one of the five and the path an executable file. Not
  // for a release root, whose daemons cannot see the host's files.
  Status Override(std::string_view assignment);
  // Takes binary `name` from `component_root` (the root of `component_release`), at the path
  // the stack expects it. An unknown name, or a release whose root lacks that binary, is an
  // error naming both.
  Status UseComponent(const std::string& name, const std::string& component_release,
                      const std::filesystem::path& component_root);
  // Each component's version query run as the stack will run it (bound into the release root,
  // or on the host); an error quoting the binary's own complaint (a library or a symbol version
  // that the stack's root lacks) for one that does not run. Changes nothing on the host: a
  // bind is made in a mount namespace of the query's own.
  Status CheckComponentsRun() const;
  // "bookworm", "bookworm+runc=bullseye", "host+runc=bullseye"; "" for the host's binaries.
  std::string Label() const;
  // The release binary `name` comes from: its component's, else the stack's ("" for the host).
  const std::string& ReleaseOf(const std::string& name) const;
  const std::filesystem::path& Path(const std::string& name) const;
  // Where binary `name` is on the host: in its component's root, or under the stack's root, if
  // there is one.
  std::filesystem::path HostPath(const std::string& name) const;
  // The first line of each binary's version output ("runc version 1.1.5", ...); for the shim,
  // whose first line is only its name, "containerd-shim-runc-v2 version 1.6.20~ds1". A release
  // root's binaries are asked inside the root (chroot), with its libraries.
  std::map<std::string, std::string> Versions() const;
  // Per binary: the Debian package that installed it and that package's version ("docker.io
  // 20.10.24+dfsg1-1+deb12u1"), from the dpkg database of the root (or of the host), or
  // "not from a Debian package"; and the Go version that built it (stack/go_version.h).
  std::map<std::string, std::string> PackageVersions() const;
  std::map<std::string, std::string> GoVersions() const;

 private:
  // How binary `name` is asked for its version: as the stack runs it.
  struct VersionQuery {
    std::string program;
    std::vector<std::string> args;
  };
  VersionQuery QueryVersionOf(const std::string& name) const;
};

struct StackOptions {
  Binaries binaries;
  std::filesystem::path run_directory;  // the stack's files go in RUN_DIR/stack
  std::filesystem::path fixtures_dir;   // where wedge-init is
  std::chrono::milliseconds start_timeout{20000};
};

// A running private stack.
class DockerStack {
 public:
  // Starts containerd, waits until its socket serves; starts dockerd, waits until GET /_ping
  // answers OK. On failure the error names the log line that explains it (the last line of the
  // failing daemon's log with "level=error" or "level=fatal", else its last line); everything is
  // undone but the two logs, left in RUN_DIR/stack. The stack's pids cgroup is
  // wedge/RUN_ID/stack; Stop also removes the levels above it that Start created, if empty.
  static Result<std::unique_ptr<DockerStack>> Start(sys::Journal& journal,
                                                    const StackOptions& options);
  DockerStack(const DockerStack&) = delete;
  DockerStack& operator=(const DockerStack&) = delete;
  // Stops everything (see Stop) if it still runs.
  ~DockerStack();

  // RUN_DIR/stack: configs, sockets, the daemons' roots and logs.
  const std::filesystem::path& directory() const;
  // The top-level cgroup (in every hierarchy) containers' cgroups go under:
  // "wedge-docker-RUN_ID", i.e. /sys/fs/cgroup/CONTROLLER/wedge-docker-RUN_ID/CONTAINER_ID.
  const std::string& cgroup_parent() const;
  // unix:///.../docker.sock, for DOCKER_HOST.
  std::string docker_host() const;
  const std::filesystem::path& containerd_socket() const;
  // The whole environment a docker CLI needs to talk to this stack (DOCKER_HOST, DOCKER_CONFIG,
  // HOME, PATH): use it instead of wedge's own, which may point at another daemon.
  std::map<std::string, std::string> ClientEnvironment() const;
  // The journal the stack records in; a tracer of its daemons is journaled here too.
  sys::Journal& journal() const;
  pid_t dockerd_pid() const;
  pid_t containerd_pid() const;
  std::int64_t startup_ms() const;  // from start until /_ping answered

  // Imports a busybox-static rootfs as image "wedge/busybox:HASH" (HASH: the busybox binary's
  // content) unless this stack already has it; returns the image reference.
  Result<std::string> EnsureBusyboxImage();
  // Imports an image of wedge's fixture `binary` ("wedge/NAME:HASH"): busybox, the fixture as
  // /wedge/NAME, and the shared libraries it loads at their own paths (as ldd resolves them
  // here), HASH being the content of all of them; unless this stack already has it. Returns
  // the image reference.
  Result<std::string> EnsureFixtureImage(const std::filesystem::path& binary);
  // Runs the docker CLI of this stack's binaries with `args`; output is stdout and stderr.
  Result<std::pair<int, std::string>> Docker(const std::vector<std::string>& args,
                                             std::chrono::milliseconds timeout);

  // The daemons' logs (their last MiB), for the evidence bundle; still available after Stop.
  std::string ContainerdLog() const;
  std::string DockerdLog() const;

  // How containerd goes away in a flap (see scenario::FlapSpec):
  //   kSigkill       SIGKILL: the socket file stays, connects are refused (ECONNREFUSED);
  //   kSigstop       SIGSTOP: connects still land in the listen backlog, nothing answers;
  //   kUnlinkSocket  the socket file is removed under a running containerd: new connects get
  //                  ENOENT, established connections live on;
  //   kRestart       SIGTERM: containerd exits and removes its socket (ENOENT).
  enum class Outage { kSigkill, kSigstop, kUnlinkSocket, kRestart };
  // Takes containerd away as `how` says and returns once that is observed: it has exited, its
  // socket refuses connections and it is reaped (for SIGSTOP: every thread is in state T; for
  // kUnlinkSocket: connect() gets ENOENT). dockerd must stay up. Bounded by `timeout`.
  Status TakeContainerdAway(Outage how, std::chrono::milliseconds timeout);
  // Brings it back and returns once its socket serves again: SIGCONT after SIGSTOP, otherwise a
  // new containerd with the first one's binary, config, environment (PATH) and log (appended to),
  // after stopping the old one if it still runs (kUnlinkSocket: as `systemctl restart` would).
  // Serving: the socket accepts a connection and answers the HTTP/2 client preface with a
  // SETTINGS frame, which containerd does once every plugin is loaded. Bounded by `timeout`.
  Status BringContainerdBack(std::chrono::milliseconds timeout);

  // Brings containerd back if a flap left it away, removes containers, stops dockerd then
  // containerd (SIGTERM, bounded wait, then SIGKILL), kills whatever is left in the sandbox,
  // removes containers' cgroups and the stack's files.
  // Every step is bounded and attempted; returns the first failure. Stopping twice is a no-op.
  // Then waits (at most 1 s) for the kernel to finish freeing the containers' network
  // namespaces, so that the host is at rest when it returns.
  Status Stop();

 private:
  struct State;
  explicit DockerStack(std::unique_ptr<State> state);
  // Tars `rootfs` and imports it as `image`, removing both afterwards; returns `image`.
  Result<std::string> ImportRootfs(const std::filesystem::path& rootfs, const std::string& image);
  Result<bool> HasImage(const std::string& image);
  std::unique_ptr<State> state_;
};

// GET `path` over the unix socket `socket`; returns the status code and body.
Result<std::pair<int, std::string>> HttpGetUnix(const std::filesystem::path& socket,
                                                const std::string& path,
                                                std::chrono::milliseconds timeout);

}  // namespace wedge::stack
