#include "wedge/stack/docker_stack.h"

#include <elf.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "wedge/base/fault_point.h"
#include "wedge/probe/task.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"
#include "wedge/sys/sandbox.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kBusybox[] = "/bin/busybox";
constexpr size_t kLogTail = 1 << 20;
constexpr std::chrono::seconds kDaemonStopTimeout{10};

// A TOML basic string: quoted, with backslash and quote escaped.
std::string Toml(const fs::path& path) {
  std::string quoted = "\"";
  for (char c : path.string()) {
    if (c == '\\' || c == '"') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted + "\"";
}

// The line of a daemon's log that explains its failure: the last one at level error or fatal,
// else the last one.
std::string ExplainLog(const std::string& text) {
  std::istringstream lines(text);
  std::string last, last_error;
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    last = line;
    if (line.find("level=error") != std::string::npos ||
        line.find("level=fatal") != std::string::npos) {
      last_error = line;
    }
  }
  if (!last_error.empty()) return last_error;
  return last.empty() ? "(its log is empty)" : last;
}

// The last `limit` bytes of a file, or "" when it does not exist.
std::string ReadTail(const fs::path& file, size_t limit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = size > static_cast<std::streamoff>(limit) ? size - limit : 0;
  in.seekg(from);
  std::string text(static_cast<size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

bool CanConnect(const fs::path& socket) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  return fd.valid() &&
         ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

// connect() to a unix socket: 0, or the errno it failed with.
int ConnectErrno(const fs::path& socket) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    return 0;
  }
  return errno;
}

// Whether a gRPC (HTTP/2) server answers on `socket` within `timeout_ms`: it must accept the
// connection and answer the client preface with a SETTINGS frame. A bare connect() is not
// enough: the kernel completes it into the listen backlog of a stopped containerd.
bool ServesHttp2(const fs::path& socket, int timeout_ms) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return false;
  }
  // RFC 9113 section 3.4: the preface, then an empty SETTINGS frame (length 0, type 4).
  static constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  constexpr size_t kPrefaceSize = sizeof kPreface - 1;
  if (::send(fd.get(), kPreface, kPrefaceSize, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kPrefaceSize)) {
    return false;
  }
  unsigned char frame[9];
  size_t have = 0;
  const std::int64_t deadline = sys::MonotonicMillis() + timeout_ms;
  while (have < sizeof frame) {
    const int left = static_cast<int>(deadline - sys::MonotonicMillis());
    if (left <= 0) return false;
    pollfd pfd{fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, left) <= 0) continue;
    const ssize_t n = ::recv(fd.get(), frame + have, sizeof frame - have, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return false;
    have += static_cast<size_t>(n);
  }
  return frame[3] == 0x4;  // the server's SETTINGS frame comes first
}

// The state letter of every thread of `pid`, e.g. "TTTT"; empty once it is gone.
std::string ThreadStates(pid_t pid) {
  std::string states;
  for (pid_t tid : probe::ListTasks(pid)) {
    Result<probe::TaskStat> stat = probe::ReadStat(pid, tid);
    if (stat.ok()) states.push_back(stat->state);
  }
  return states;
}

// Waits until the process behind `pidfd` has exited (it may stay a zombie) or `timeout` passes.
bool WaitForExit(const sys::Pidfd& pidfd, std::chrono::milliseconds timeout) {
  std::int64_t deadline = sys::MonotonicMillis() + timeout.count();
  for (;;) {
    if (pidfd.HasExited()) return true;
    int left = static_cast<int>(deadline - sys::MonotonicMillis());
    if (left <= 0) return false;
    pollfd pfd{pidfd.get(), POLLIN, 0};
    ::poll(&pfd, 1, left);
  }
}

// SIGTERM, a bounded wait, then SIGKILL and another bounded wait.
Status Terminate(const sys::Pidfd& pidfd, const std::string& name) {
  if (!pidfd.valid() || pidfd.HasExited()) return OkStatus();
  WEDGE_RETURN_IF_ERROR(pidfd.SendSignal(SIGTERM));
  if (WaitForExit(pidfd, kDaemonStopTimeout)) return OkStatus();
  WEDGE_RETURN_IF_ERROR(pidfd.SendSignal(SIGKILL));
  if (WaitForExit(pidfd, std::chrono::seconds(2))) {
    return Error(name + " (pid " + std::to_string(pidfd.pid()) + ") ignored SIGTERM for " +
                 std::to_string(kDaemonStopTimeout.count()) + " s; killed");
  }
  return Error(name + " (pid " + std::to_string(pidfd.pid()) + ") did not exit after SIGKILL");
}

// A busybox linked dynamically cannot run in a rootfs without its libc.
Status CheckStaticallyLinked(const fs::path& binary) {
  std::ifstream in(binary, std::ios::binary);
  Elf64_Ehdr header{};
  if (!in.read(reinterpret_cast<char*>(&header), sizeof header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    return Error(binary.string() + " is not a 64-bit ELF executable");
  }
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr program{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + i * header.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&program), sizeof program)) break;
    if (program.p_type == PT_INTERP) {
      return Error(binary.string() + " is dynamically linked; install busybox-static");
    }
  }
  return OkStatus();
}

// The kernel frees a dead container's network namespace later, in its "netns" workqueue
// (cleanup_net), whose worker is named "kworker/...+netns" while it runs, in D state at times.
bool NetnsCleanupRunning() {
  for (pid_t pid : probe::ListProcesses()) {
    Result<std::string> comm = probe::ReadComm(pid);
    if (comm.ok() && comm->rfind("kworker/", 0) == 0 && comm->find("+netns") != std::string::npos) {
      return true;
    }
  }
  return false;
}

Status MakeDirectories(const std::vector<fs::path>& directories) {
  for (const auto& directory : directories) {
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec) return Error("create_directories('" + directory.string() + "'): " + ec.message());
  }
  return OkStatus();
}

Status Symlink(const fs::path& target, const fs::path& link) {
  if (::symlink(target.c_str(), link.c_str()) != 0) {
    return ErrnoError("symlink('" + target.string() + "', '" + link.string() + "')");
  }
  return OkStatus();
}

// Where a stack's files are, and what it is called.
struct Layout {
  fs::path directory;  // RUN_DIR/stack
  fs::path containerd_socket;
  std::string cgroup_parent;  // wedge-docker-RUN_ID
  const Binaries* binaries = nullptr;

  fs::path Path(const std::string& name) const { return directory / name; }
};

}  // namespace

struct DockerStack::State {
  State(sys::Journal& journal_in, StackOptions options_in)
      : journal(journal_in), options(std::move(options_in)) {
    layout.binaries = &options.binaries;
  }

  fs::path Path(const std::string& name) const { return layout.Path(name); }

  sys::Journal& journal;
  StackOptions options;
  Layout layout;
  bool created_directory = false;
  bool started = false;  // a failed start keeps the daemons' logs for the error to point at
  std::unique_ptr<sys::ScopedCgroup> cgroup;
  std::unique_ptr<sys::Sandbox> sandbox;
  std::uint64_t cgroup_tree_seq = 0;
  sys::Pidfd containerd;
  sys::Pidfd dockerd;
  std::int64_t startup_ms = 0;
  std::optional<std::string> busybox_image;
  std::map<std::string, std::string> fixture_images;  // fixture binary name -> image reference
  std::string containerd_log;                         // kept by Stop, which removes the files
  std::string dockerd_log;
  bool stopped = false;
  // What a restart of containerd needs: the same argv and environment as the first start.
  std::vector<std::string> containerd_argv;
  std::map<std::string, std::string> environment;
  sys::SpawnedProcess containerd_process;  // for reaping it through the sandbox's init
  std::optional<Outage> containerd_away;   // set between TakeContainerdAway and BringBack
};

namespace {

// containerd 1.6 with everything that would touch the host outside the stack directory turned
// off: CRI (CNI config under /etc/cni, /var/lib/cni), the opt plugin (/opt/containerd), the
// snapshotters wedge does not use. The debug and metrics listeners stay off (empty addresses).
// Shim sockets are the exception: the shim hardcodes them under /run/containerd/s whatever the
// state directory (containerd/containerd#4343, #5096), so the sandbox gives the daemons a
// private /run, as dockerd-rootless.sh does (moby/moby#41156).
std::string ContainerdConfig(const Layout& s) {
  std::ostringstream toml;
  toml << "# Written by wedge for its private stack.\n"
       << "version = 2\n"
       << "root = " << Toml(s.Path("containerd/root")) << "\n"
       << "state = " << Toml(s.Path("containerd/state")) << "\n"
       << "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\", "
          "\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", "
          "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.zfs\"]\n"
       // The socket is root's alone (containerd makes it 0660 owner uid:gid).
       << "[grpc]\n  address = " << Toml(s.containerd_socket) << "\n  uid = 0\n  gid = 0\n"
       << "[ttrpc]\n  address = " << Toml(s.Path("containerd.sock.ttrpc")) << "\n"
       << "[debug]\n  address = \"\"\n"
       << "[metrics]\n  address = \"\"\n";
  return toml.str();
}

// dockerd 20.10 writes its trust key to /etc/docker/key.json unless told otherwise; the key
// is settable only here (moby/moby#32587). Docker 23 and later ignore the key.
std::string DaemonJson(const Layout& s) {
  return nlohmann::json{{"deprecated-key-path", s.Path("docker/key.json").string()}}.dump(2) + "\n";
}

Status WriteFiles(const Layout& s) {
  WEDGE_RETURN_IF_ERROR(MakeDirectories({s.Path("containerd/root"), s.Path("containerd/state"),
                                         s.Path("docker/data"), s.Path("docker/exec"),
                                         s.Path("docker-config"), s.Path("bin"), s.Path("tmp")}));
  // Every runc and shim of this stack is the chosen one: containerd finds the shim, and the
  // shim finds runc, through PATH, which starts with this directory.
  WEDGE_RETURN_IF_ERROR(
      Symlink(s.binaries->Path("containerd-shim-runc-v2"), s.Path("bin/containerd-shim-runc-v2")));
  WEDGE_RETURN_IF_ERROR(Symlink(s.binaries->Path("runc"), s.Path("bin/runc")));
  WEDGE_RETURN_IF_ERROR(
      sys::WriteFileAtomically(s.Path("containerd.toml"), ContainerdConfig(s), 0600));
  WEDGE_RETURN_IF_ERROR(sys::WriteFileAtomically(s.Path("daemon.json"), DaemonJson(s), 0600));
  return OkStatus();
}

std::map<std::string, std::string> DaemonEnvironment(const Layout& s) {
  return {{"PATH", s.Path("bin").string() + ":" + kDefaultPath},
          {"HOME", s.directory.string()},
          {"TMPDIR", s.Path("tmp").string()}};
}

std::vector<std::string> DockerdArgv(const Layout& s) {
  const std::string runc = s.binaries->Path("runc").string();
  return {s.binaries->Path("dockerd").string(), "--containerd=" + s.containerd_socket.string(),
          "--host=unix://" + s.Path("docker.sock").string(),
          "--data-root=" + s.Path("docker/data").string(),
          "--exec-root=" + s.Path("docker/exec").string(),
          "--pidfile=" + s.Path("docker.pid").string(),
          "--config-file=" + s.Path("daemon.json").string(),
          // dockerd gives its socket to the "docker" group when one exists (the docker.io
          // package creates it): wedge's daemon is root's alone.
          "--group=root",
          // No bridge, no iptables rules, no ip_forward or masquerading: dockerd shares the
          // host's network namespace, and these would change it.
          "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
          "--ip-masq=false", "--userland-proxy=false", "--exec-opt=native.cgroupdriver=cgroupfs",
          "--cgroup-parent=/" + s.cgroup_parent, "--add-runtime=wedge-runc=" + runc,
          "--default-runtime=wedge-runc"};
}

}  // namespace

Result<std::unique_ptr<DockerStack>> DockerStack::Start(sys::Journal& journal,
                                                        const StackOptions& options) {
  const std::int64_t start = sys::MonotonicMillis();
  const std::int64_t deadline = start + options.start_timeout.count();
  auto state = std::make_unique<State>(journal, options);
  State& s = *state;
  Layout& layout = s.layout;
  layout.directory = options.run_directory / "stack";
  layout.containerd_socket = layout.Path("containerd.sock");
  layout.cgroup_parent = "wedge-docker-" + journal.run_id();
  for (const char* name : {"docker", "dockerd", "containerd", "runc", "containerd-shim-runc-v2"}) {
    const fs::path path = options.binaries.HostPath(name);
    if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
      return Error(std::string("private docker stack: ") + name + " binary '" + path.string() +
                   "' is not executable");
    }
  }
  // The longest socket path is libnetwork's exec-root/libnetwork/ID.sock, ID the first 12 hex
  // digits of its controller's id; sun_path holds 107 bytes and a NUL.
  if (s.Path("docker/exec/libnetwork/0123456789ab.sock").string().size() >=
      sizeof(sockaddr_un::sun_path)) {
    return Error("private docker stack: '" + layout.directory.string() +
                 "' is too long a path for the daemons' unix sockets");
  }
  if (fs::exists(layout.directory)) {
    return Error("private docker stack: '" + layout.directory.string() + "' already exists");
  }
  // From here every failure unwinds through Stop().
  std::unique_ptr<DockerStack> stack(new DockerStack(std::move(state)));
  s.created_directory = true;
  // Root's alone: the daemons' sockets, logs and configs live here.
  WEDGE_RETURN_IF_ERROR(sys::MakePrivateDirectory(layout.directory));
  WEDGE_RETURN_IF_ERROR(WriteFiles(layout));

  WEDGE_ASSIGN_OR_RETURN(
      s.cgroup, sys::ScopedCgroup::Create(journal, "wedge/" + journal.run_id() + "/stack", {}));

  sys::SandboxOptions sandbox_options;
  sandbox_options.pid_namespace = true;
  sandbox_options.mount_namespace = true;
  sandbox_options.mount_proc = true;
  sandbox_options.reap_orphans = true;
  // dockerd (/run/docker/plugins) and containerd's shims (/run/containerd/s) create hardcoded
  // paths under /run: the daemons get a private one, in which only the stack directory of the
  // host's /run is visible.
  std::error_code ec;
  const fs::path real_directory = fs::weakly_canonical(layout.directory, ec);
  const fs::path relative = real_directory.lexically_relative("/run");
  const bool under_run = !ec && !relative.empty() && *relative.begin() != "..";
  sandbox_options.temporary_filesystems.push_back(
      {"/run", under_run ? real_directory : fs::path()});
  if (!options.binaries.root.empty()) {
    // A release's daemons run in its root (read-only): the stack directory must be reachable
    // there, which it is through the private /run; /tmp is theirs alone too.
    if (!under_run) {
      return Error("private docker stack: the " + options.binaries.release +
                   " stack needs its run directory under /run (it is " + layout.directory.string() +
                   "; unset WEDGE_STATE_DIR)");
    }
    sandbox_options.root = options.binaries.root;
    for (const auto& [name, component] : options.binaries.components) {
      sandbox_options.files_bound_into_root.push_back(
          {options.binaries.HostPath(name), options.binaries.Path(name)});
    }
    sandbox_options.temporary_filesystems.push_back({"/tmp", fs::path()});
  }
  sandbox_options.init_binary = options.fixtures_dir / "wedge-init";
  sandbox_options.log_directory = layout.directory;
  WEDGE_ASSIGN_OR_RETURN(s.sandbox, sys::Sandbox::Start(journal, *s.cgroup, sandbox_options));

  s.environment = DaemonEnvironment(layout);
  const std::map<std::string, std::string>& environment = s.environment;
  s.containerd_argv = {options.binaries.Path("containerd").string(), "--config",
                       s.Path("containerd.toml").string()};
  auto failed = [&](const std::string& name, const std::string& why) {
    return Error("private docker stack: " + name + " " + why + ": " +
                 ExplainLog(ReadTail(s.Path(name + ".log"), kLogTail)) + " (in " +
                 s.Path(name + ".log").string() + ")");
  };
  // A daemon that dies at once may be gone before its pid can be looked up: that is a failed
  // start, explained by its log, not a lookup error.
  auto exec = [&](const std::string& name,
                  const std::vector<std::string>& argv) -> Result<sys::SpawnedProcess> {
    Result<sys::SpawnedProcess> process = s.sandbox->Exec(name, argv, environment);
    if (!process.ok()) return failed(name, "did not start (" + process.error().message() + ")");
    return process;
  };
  WEDGE_ASSIGN_OR_RETURN(s.containerd_process, exec("containerd", s.containerd_argv));
  WEDGE_ASSIGN_OR_RETURN(s.containerd, sys::Pidfd::Open(s.containerd_process.pid));
  for (;;) {
    if (CanConnect(layout.containerd_socket)) break;
    if (s.containerd.HasExited()) return failed("containerd", "exited before serving");
    if (sys::Interrupted()) return Error("interrupted while starting containerd");
    if (sys::MonotonicMillis() > deadline) {
      return failed("containerd", "did not serve " + layout.containerd_socket.string() +
                                      " within " + std::to_string(options.start_timeout.count()) +
                                      " ms");
    }
    // 1 ms: a connect() attempt costs microseconds, and every millisecond of the wait is the
    // suite's (bench/stack_bench, median of 9 rounds: 1.04x a by-hand start with 1 ms polls).
    ::usleep(1000);
  }
  // A kill here leaves a stack half started: containerd serving, no dockerd.
  FaultPoint("stack-containerd-up");

  // Containers' cgroups go under a parent of wedge's own in every hierarchy; dockerd creates
  // it and leaves it behind, so it is journaled first.
  WEDGE_ASSIGN_OR_RETURN(s.cgroup_tree_seq,
                         journal.Record(sys::CgroupTreeChange{layout.cgroup_parent}));
  WEDGE_ASSIGN_OR_RETURN(sys::SpawnedProcess dockerd, exec("dockerd", DockerdArgv(layout)));
  WEDGE_ASSIGN_OR_RETURN(s.dockerd, sys::Pidfd::Open(dockerd.pid));
  for (;;) {
    int left = static_cast<int>(deadline - sys::MonotonicMillis());
    auto ping = HttpGetUnix(s.Path("docker.sock"), "/_ping",
                            std::chrono::milliseconds(std::clamp(left, 1, 1000)));
    if (ping.ok() && ping->first == 200 && ping->second == "OK") break;
    if (s.dockerd.HasExited()) return failed("dockerd", "exited before answering /_ping");
    if (s.containerd.HasExited()) return failed("containerd", "exited while dockerd started");
    if (sys::Interrupted()) return Error("interrupted while starting dockerd");
    if (sys::MonotonicMillis() > deadline) {
      return failed("dockerd", "did not answer /_ping within " +
                                   std::to_string(options.start_timeout.count()) + " ms");
    }
    ::usleep(1000);
  }
  s.startup_ms = sys::MonotonicMillis() - start;
  s.started = true;
  return stack;
}

DockerStack::DockerStack(std::unique_ptr<State> state) : state_(std::move(state)) {}

DockerStack::~DockerStack() { (void)Stop(); }

const fs::path& DockerStack::directory() const { return state_->layout.directory; }
const std::string& DockerStack::cgroup_parent() const { return state_->layout.cgroup_parent; }
std::string DockerStack::docker_host() const {
  return "unix://" + state_->Path("docker.sock").string();
}
const fs::path& DockerStack::containerd_socket() const { return state_->layout.containerd_socket; }
sys::Journal& DockerStack::journal() const { return state_->journal; }
pid_t DockerStack::dockerd_pid() const { return state_->dockerd.pid(); }
pid_t DockerStack::containerd_pid() const { return state_->containerd.pid(); }
std::int64_t DockerStack::startup_ms() const { return state_->startup_ms; }

std::map<std::string, std::string> DockerStack::ClientEnvironment() const {
  return {{"DOCKER_HOST", docker_host()},
          {"DOCKER_CONFIG", state_->Path("docker-config").string()},
          {"HOME", state_->layout.directory.string()},
          {"PATH", kDefaultPath}};
}

std::string DockerStack::ContainerdLog() const {
  return state_->stopped ? state_->containerd_log
                         : ReadTail(state_->Path("containerd.log"), kLogTail);
}

std::string DockerStack::DockerdLog() const {
  return state_->stopped ? state_->dockerd_log : ReadTail(state_->Path("dockerd.log"), kLogTail);
}

Result<std::pair<int, std::string>> DockerStack::Docker(const std::vector<std::string>& args,
                                                        std::chrono::milliseconds timeout) {
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput output,
                         sys::RunCommand(state_->options.binaries.HostPath("docker").string(), args,
                                         timeout, ClientEnvironment()));
  return std::make_pair(output.exit_code, std::move(output.output));
}

namespace {

// The first 12 hex digits of the SHA-256 of `files`' contents, in order: an image's tag.
Result<std::string> ContentTag(const std::vector<fs::path>& files, const fs::path& scratch) {
  std::vector<std::string> args;
  for (const fs::path& file : files) args.push_back(file.string());
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput sums, sys::RunCommand("sha256sum", args));
  if (sums.exit_code != 0) return Error("sha256sum: " + sums.output);
  std::string digests;  // the digests alone: the same files elsewhere give the same tag
  std::istringstream lines(sums.output);
  for (std::string line; std::getline(lines, line);) digests += line.substr(0, 64) + "\n";
  if (files.size() == 1) return digests.substr(0, 12);
  WEDGE_RETURN_IF_ERROR(sys::WriteFileAtomically(scratch, digests, 0600));
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput sum, sys::RunCommand("sha256sum", {scratch.string()}));
  std::error_code ec;
  fs::remove(scratch, ec);
  if (sum.exit_code != 0 || sum.output.size() < 12) return Error("sha256sum: " + sum.output);
  return sum.output.substr(0, 12);
}

// busybox and a symlink per applet in ROOTFS/bin, and the directories a container expects.
Status MakeBusyboxRootfs(const fs::path& rootfs) {
  WEDGE_RETURN_IF_ERROR(
      MakeDirectories({rootfs / "bin", rootfs / "dev", rootfs / "etc", rootfs / "proc",
                       rootfs / "sys", rootfs / "tmp", rootfs / "root"}));
  std::error_code ec;
  fs::copy_file(kBusybox, rootfs / "bin/busybox", fs::copy_options::overwrite_existing, ec);
  if (ec) return Error(std::string("copy_file('") + kBusybox + "'): " + ec.message());
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput applets, sys::RunCommand(kBusybox, {"--list"}));
  if (applets.exit_code != 0) return Error(std::string(kBusybox) + " --list: " + applets.output);
  std::istringstream names(applets.output);
  for (std::string name; std::getline(names, name);) {
    if (name.empty() || name == "busybox" || name.find('/') != std::string::npos) continue;
    WEDGE_RETURN_IF_ERROR(Symlink("busybox", rootfs / "bin" / name));
  }
  return OkStatus();
}

// The shared libraries `binary` loads, its ELF interpreter included, as ldd resolves them on
// this host: the lines "NAME => /PATH (ADDRESS)" and "/PATH (ADDRESS)".
Result<std::vector<fs::path>> SharedLibrariesOf(const fs::path& binary) {
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput ldd, sys::RunCommand("ldd", {binary.string()}));
  if (ldd.exit_code != 0) return Error("ldd " + binary.string() + ": " + ldd.output);
  std::vector<fs::path> libraries;
  std::istringstream lines(ldd.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("not found") != std::string::npos) {
      return Error("ldd " + binary.string() + ": " + sys::TrimTrailing(line));
    }
    const std::size_t arrow = line.find("=> ");
    const std::size_t start = line.find('/', arrow == std::string::npos ? 0 : arrow);
    if (start == std::string::npos) continue;  // linux-vdso.so.1, which the kernel provides
    libraries.emplace_back(line.substr(start, line.find(' ', start) - start));
  }
  return libraries;
}

}  // namespace

Result<std::string> DockerStack::ImportRootfs(const fs::path& rootfs, const std::string& image) {
  State& s = *state_;
  const fs::path tar = s.Path("rootfs.tar");
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput tarred,
                         sys::RunCommand("tar",
                                         {"--numeric-owner", "--owner=0", "--group=0", "-C",
                                          rootfs.string(), "-cf", tar.string(), "."},
                                         std::chrono::seconds(60)));
  std::error_code ec;
  if (tarred.exit_code != 0) {
    fs::remove_all(rootfs, ec);
    return Error("tar of the rootfs of " + image + ": " + tarred.output);
  }
  WEDGE_ASSIGN_OR_RETURN(auto imported,
                         Docker({"import", tar.string(), image}, std::chrono::seconds(120)));
  fs::remove_all(rootfs, ec);
  fs::remove(tar, ec);
  if (imported.first != 0) return Error("docker import " + image + ": " + imported.second);
  return image;
}

Result<bool> DockerStack::HasImage(const std::string& image) {
  WEDGE_ASSIGN_OR_RETURN(auto inspect, Docker({"image", "inspect", "--format", "{{.Id}}", image},
                                              std::chrono::seconds(30)));
  return inspect.first == 0;
}

Result<std::string> DockerStack::EnsureBusyboxImage() {
  State& s = *state_;
  if (s.busybox_image) return *s.busybox_image;
  WEDGE_RETURN_IF_ERROR(CheckStaticallyLinked(kBusybox));
  WEDGE_ASSIGN_OR_RETURN(std::string tag, ContentTag({kBusybox}, s.Path("image.sums")));
  const std::string image = "wedge/busybox:" + tag;
  WEDGE_ASSIGN_OR_RETURN(bool present, HasImage(image));
  if (present) return *(s.busybox_image = image);
  const fs::path rootfs = s.Path("rootfs");
  WEDGE_RETURN_IF_ERROR(MakeBusyboxRootfs(rootfs));
  WEDGE_ASSIGN_OR_RETURN(std::string imported, ImportRootfs(rootfs, image));
  return *(s.busybox_image = imported);
}

Result<std::string> DockerStack::EnsureFixtureImage(const fs::path& binary) {
  State& s = *state_;
  const std::string name = binary.filename().string();
  if (auto known = s.fixture_images.find(name); known != s.fixture_images.end()) {
    return known->second;
  }
  WEDGE_RETURN_IF_ERROR(CheckStaticallyLinked(kBusybox));
  WEDGE_ASSIGN_OR_RETURN(std::vector<fs::path> libraries, SharedLibrariesOf(binary));
  std::vector<fs::path> contents = {kBusybox, binary};
  contents.insert(contents.end(), libraries.begin(), libraries.end());
  WEDGE_ASSIGN_OR_RETURN(std::string tag, ContentTag(contents, s.Path("image.sums")));
  const std::string image = "wedge/" + name + ":" + tag;
  WEDGE_ASSIGN_OR_RETURN(bool present, HasImage(image));
  if (present) return s.fixture_images[name] = image;
  // busybox, the fixture in /wedge, and each library at its own path, as the loader looks.
  const fs::path rootfs = s.Path("rootfs");
  WEDGE_RETURN_IF_ERROR(MakeBusyboxRootfs(rootfs));
  WEDGE_RETURN_IF_ERROR(MakeDirectories({rootfs / "wedge"}));
  std::error_code ec;
  fs::copy_file(binary, rootfs / "wedge" / name, fs::copy_options::overwrite_existing, ec);
  if (ec) return Error("copy_file('" + binary.string() + "'): " + ec.message());
  for (const fs::path& library : libraries) {
    const fs::path inside = rootfs / library.relative_path();
    WEDGE_RETURN_IF_ERROR(MakeDirectories({inside.parent_path()}));
    // The file itself, not the symbolic link ldd names (libc.so.6 -> libc-2.36.so).
    fs::copy_file(fs::canonical(library, ec), inside, fs::copy_options::overwrite_existing, ec);
    if (ec) return Error("copy_file('" + library.string() + "'): " + ec.message());
  }
  WEDGE_ASSIGN_OR_RETURN(std::string imported, ImportRootfs(rootfs, image));
  return s.fixture_images[name] = imported;
}

namespace {

using Outage = DockerStack::Outage;

const char* OutageName(Outage how) {
  switch (how) {
    case Outage::kSigkill:
      return "SIGKILL";
    case Outage::kSigstop:
      return "SIGSTOP";
    case Outage::kUnlinkSocket:
      return "unlinked socket";
    case Outage::kRestart:
      return "restart";
  }
  return "?";
}

// Polls `observed` (a Result<bool>) every 2 ms until it holds, fails, or `deadline`
// (CLOCK_MONOTONIC ms) passes.
template <typename Observed>
Status PollUntil(std::int64_t deadline, const std::string& what, Observed observed) {
  const std::int64_t since = sys::MonotonicMillis();
  for (;;) {
    Result<bool> held = observed();
    if (!held.ok()) return held.error();
    if (*held) return OkStatus();
    if (sys::Interrupted()) return Error("interrupted while waiting for " + what);
    if (sys::MonotonicMillis() >= deadline) {
      return Error(what + ": not observed within " +
                   std::to_string(sys::MonotonicMillis() - since) + " ms");
    }
    ::usleep(2000);
  }
}

bool Refused(const fs::path& socket) {
  const int error = ConnectErrno(socket);
  return error == ECONNREFUSED || error == ENOENT;
}

bool AllStopped(const std::string& states) {
  return !states.empty() && states.find_first_not_of('T') == std::string::npos;
}

std::uintmax_t FileSize(const fs::path& file) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

}  // namespace

Status DockerStack::TakeContainerdAway(Outage how, std::chrono::milliseconds timeout) {
  State& s = *state_;
  if (!s.started || s.stopped) return Error("containerd flap: the stack is not running");
  if (s.containerd_away) {
    return Error(std::string("containerd flap: containerd is already away (") +
                 OutageName(*s.containerd_away) + ")");
  }
  const std::int64_t deadline = sys::MonotonicMillis() + timeout.count();
  const fs::path& socket = s.layout.containerd_socket;
  const std::string who = "containerd (pid " + std::to_string(s.containerd.pid()) + ")";
  if (s.containerd.HasExited()) {
    return Error("containerd flap: " + who + " had already exited: " +
                 ExplainLog(ReadTail(s.Path("containerd.log"), kLogTail)));
  }
  // Every observation also checks that dockerd still runs: the flap must not take it down.
  auto dockerd_running = [&s]() -> Status {
    if (!s.dockerd.HasExited()) return OkStatus();
    return Error("containerd flap: dockerd exited: " +
                 ExplainLog(ReadTail(s.Path("dockerd.log"), kLogTail)));
  };
  WEDGE_RETURN_IF_ERROR(dockerd_running());
  // Gone means exited, its socket refusing, and reaped: a killed containerd must not linger
  // as a zombie of the sandbox's init (which reaps only the shims it inherits by itself).
  auto gone = [&]() -> Result<bool> {
    WEDGE_RETURN_IF_ERROR(dockerd_running());
    if (!s.containerd.HasExited() || !Refused(socket)) return false;
    return s.sandbox->Reap(s.containerd_process);
  };
  switch (how) {
    case Outage::kSigkill:
      WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGKILL));
      s.containerd_away = how;
      return PollUntil(deadline, who + " gone after SIGKILL", gone);
    case Outage::kRestart:
      // On SIGTERM containerd closes its listener, which removes the socket file: dockerd's
      // redials then fail with ENOENT, which containerd's dialer retries every 10 ms for as long
      // as gRPC lets a dial last, instead of ECONNREFUSED, which gRPC backs off from
      // (https://github.com/containerd/containerd/blob/v1.6.20/pkg/dialer/dialer.go).
      WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGTERM));
      s.containerd_away = how;
      return PollUntil(deadline, who + " gone after SIGTERM", gone);
    case Outage::kSigstop:
      WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGSTOP));
      s.containerd_away = how;
      return PollUntil(deadline, "every thread of " + who + " stopped", [&]() -> Result<bool> {
        WEDGE_RETURN_IF_ERROR(dockerd_running());
        return AllStopped(ThreadStates(s.containerd.pid()));
      });
    case Outage::kUnlinkSocket:
      if (::unlink(socket.c_str()) != 0) return ErrnoError("unlink('" + socket.string() + "')");
      s.containerd_away = how;
      return PollUntil(deadline, who + "'s socket gone", [&]() -> Result<bool> {
        WEDGE_RETURN_IF_ERROR(dockerd_running());
        if (s.containerd.HasExited()) return Error("containerd flap: " + who + " exited");
        return ConnectErrno(socket) == ENOENT;
      });
  }
  return Error("containerd flap: unknown outage");
}

Status DockerStack::BringContainerdBack(std::chrono::milliseconds timeout) {
  State& s = *state_;
  if (!s.started || s.stopped) return Error("containerd flap: the stack is not running");
  if (!s.containerd_away) return Error("containerd flap: containerd is not away");
  const Outage how = *s.containerd_away;
  const std::int64_t deadline = sys::MonotonicMillis() + timeout.count();
  const fs::path& socket = s.layout.containerd_socket;
  const fs::path log = s.Path("containerd.log");
  std::uintmax_t log_from = FileSize(log);
  auto dockerd_running = [&s]() -> Status {
    if (!s.dockerd.HasExited()) return OkStatus();
    return Error("containerd flap: dockerd exited: " +
                 ExplainLog(ReadTail(s.Path("dockerd.log"), kLogTail)));
  };
  auto containerd_running = [&]() -> Status {
    if (!s.containerd.HasExited()) return OkStatus();
    const std::uintmax_t size = FileSize(log);
    return Error(
        "containerd flap: containerd (pid " + std::to_string(s.containerd.pid()) +
        ") exited: " + ExplainLog(ReadTail(log, size > log_from ? size - log_from : kLogTail)));
  };
  auto reaped = [&]() -> Result<bool> {
    if (!s.containerd.HasExited()) return false;
    return s.sandbox->Reap(s.containerd_process);
  };
  if (how == Outage::kSigstop) {
    WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGCONT));
    Status resumed = PollUntil(deadline, "containerd running after SIGCONT", [&]() -> Result<bool> {
      WEDGE_RETURN_IF_ERROR(containerd_running());
      return ThreadStates(s.containerd.pid()).find('T') == std::string::npos;
    });
    if (!resumed.ok()) return resumed;
  } else {
    if (!s.containerd.HasExited()) {
      // The old containerd still runs (behind its unlinked socket, or slow to exit after
      // SIGTERM) and holds the lock on its metadata database: it goes first, as in `systemctl
      // restart containerd`. It must be gone before the new one binds, or its exit would unlink
      // the new socket.
      WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGTERM));
      const std::int64_t term_deadline =
          std::min(deadline, sys::MonotonicMillis() + 1000 * kDaemonStopTimeout.count());
      if (!PollUntil(term_deadline, "containerd exiting after SIGTERM", reaped).ok()) {
        WEDGE_RETURN_IF_ERROR(s.containerd.SendSignal(SIGKILL));
      }
    }
    WEDGE_RETURN_IF_ERROR(PollUntil(deadline, "the old containerd reaped", reaped));
    log_from = FileSize(log);
    const int left = static_cast<int>(deadline - sys::MonotonicMillis());
    // Exactly as Start ran it: same binary, config, environment (PATH) and log, appended to.
    WEDGE_ASSIGN_OR_RETURN(
        s.containerd_process,
        s.sandbox->Exec("containerd", s.containerd_argv, s.environment, std::clamp(left, 1, 5000)));
    WEDGE_ASSIGN_OR_RETURN(s.containerd, sys::Pidfd::Open(s.containerd_process.pid));
  }
  Status serving =
      PollUntil(deadline, "containerd serving " + socket.string(), [&]() -> Result<bool> {
        WEDGE_RETURN_IF_ERROR(dockerd_running());
        WEDGE_RETURN_IF_ERROR(containerd_running());
        const int left = static_cast<int>(deadline - sys::MonotonicMillis());
        return ServesHttp2(socket, std::clamp(left, 1, 250));
      });
  if (!serving.ok()) return serving;
  s.containerd_away.reset();
  return OkStatus();
}

Status DockerStack::Stop() {
  State& s = *state_;
  if (s.stopped) return OkStatus();
  Status first;
  auto note = [&first](Status status) {
    if (!status.ok() && first.ok()) first = status;
  };
  // Containers are removed, and dockerd stops, through containerd: it comes back first.
  if (s.containerd_away) {
    Status back = BringContainerdBack(std::chrono::seconds(10));
    if (!back.ok()) note(back.error().WithContext("bringing containerd back to stop the stack"));
  }
  s.stopped = true;
  if (s.dockerd.valid() && !s.dockerd.HasExited()) {
    // Containers first: dockerd stopping with containers running waits out their stop timeout.
    Result<std::pair<int, std::string>> listed =
        Docker({"ps", "--all", "--quiet", "--no-trunc"}, std::chrono::seconds(10));
    std::vector<std::string> remove = {"rm", "--force"};
    if (listed.ok() && listed->first == 0) {
      std::istringstream ids(listed->second);
      for (std::string id; ids >> id;) remove.push_back(id);
    }
    if (remove.size() > 2) {
      Result<std::pair<int, std::string>> removed = Docker(remove, std::chrono::seconds(15));
      if (!removed.ok()) {
        note(removed.error().WithContext("removing the stack's containers"));
      } else if (removed->first != 0) {
        note(Error("docker rm --force: " + removed->second));
      }
    }
  }
  note(Terminate(s.dockerd, "dockerd"));
  note(Terminate(s.containerd, "containerd"));
  s.containerd_log = ReadTail(s.Path("containerd.log"), kLogTail);
  s.dockerd_log = ReadTail(s.Path("dockerd.log"), kLogTail);
  // The containers' cgroup tree before the sandbox: a frozen container (docker pause) would hold
  // the init's pid-namespace teardown until it is thawed, which the tree's undo does.
  if (s.cgroup_tree_seq != 0) note(s.journal.Undo(s.cgroup_tree_seq));
  // Killing the init ends every shim and runc left in the pid namespace, and the daemons'
  // mounts go with the mount namespace.
  s.sandbox.reset();
  if (s.cgroup) {
    note(s.cgroup->Remove());
    // The levels above the stack's cgroup that Start created, unless something else (the run's
    // own sandbox) now lives in them: those the journal undoes at the end of the run.
    note(s.cgroup->RemoveCreatedParentsIfUnused());
    s.cgroup.reset();
  }
  // So that the host is at rest when Stop returns (bounded: other namespaces may be dying too).
  for (std::int64_t until = sys::MonotonicMillis() + 1000;
       NetnsCleanupRunning() && sys::MonotonicMillis() < until;) {
    ::usleep(5000);
  }
  if (s.created_directory) {
    std::error_code ec;
    if (s.started) {
      fs::remove_all(s.layout.directory, ec);
    } else {
      for (const auto& entry : fs::directory_iterator(s.layout.directory, ec)) {
        const std::string name = entry.path().filename().string();
        if (name != "containerd.log" && name != "dockerd.log") fs::remove_all(entry.path(), ec);
        if (ec) break;
      }
    }
    if (ec) note(Error("removing '" + s.layout.directory.string() + "': " + ec.message()));
  }
  return first;
}

}  // namespace wedge::stack
