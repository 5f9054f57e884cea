#include "command_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "command_step.h"
#include "wedge/base/unique_fd.h"
#include "wedge/probe/pipe.h"
#include "wedge/stack/strace_process.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::runner {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kHoldAttachTimeout{10000};
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysResource = 24;
constexpr std::size_t kDrainedHeadBytes = 512;
constexpr ino_t kInitialUserNamespaceInode = 0xEFFFFFFDU;  // include/linux/proc_ns.h

std::string CommOf(pid_t pid) {
  Result<std::string> comm = probe::ReadComm(pid);
  return comm.ok() ? *comm : std::string();
}

pid_t ParentOf(pid_t pid) {
  Result<pid_t> parent = probe::ReadParent(pid);
  return parent.ok() ? *parent : 0;
}

// The pid of the process whose argv holds "-id" followed by `id`: a containerd shim.
pid_t FindShimOf(const std::string& id) {
  for (pid_t pid : probe::ListProcesses()) {
    Result<std::vector<std::string>> argv = probe::ReadCmdline(pid);
    if (!argv.ok()) continue;
    if (argv->empty() ||
        fs::path(argv->front()).filename().string().rfind("containerd-shim", 0) != 0) {
      continue;
    }
    for (std::size_t i = 0; i + 1 < argv->size(); ++i) {
      if ((*argv)[i] == "-id" && (*argv)[i + 1] == id) return pid;
    }
  }
  return 0;
}

// The pids cgroup directory of `pid`: the v1 "pids" line of /proc/PID/cgroup, else the v2 line.
Result<fs::path> PidsCgroupOf(pid_t pid) {
  WEDGE_ASSIGN_OR_RETURN(std::vector<probe::CgroupMembership> cgroups, probe::ReadCgroups(pid));
  WEDGE_ASSIGN_OR_RETURN(fs::path hierarchy, sys::PidsHierarchy());
  const std::optional<std::string> path = probe::PidsCgroupPath(cgroups);
  if (!path) return Error("no pids cgroup in /proc/" + std::to_string(pid) + "/cgroup");
  return hierarchy / fs::path(*path).relative_path();
}

// A pidfd for `pid` if, once it is open (so the pid can no longer be reused), `still_ours` says
// the process is still the one that was found: between finding a pid in /proc and acting on it,
// the process may have exited and its pid gone to another.
template <typename Check>
std::optional<sys::Pidfd> Pin(pid_t pid, Check still_ours) {
  Result<sys::Pidfd> pidfd = sys::Pidfd::Open(pid);
  if (!pidfd.ok() || pidfd->HasExited() || !still_ours(pid)) return std::nullopt;
  return std::move(*pidfd);
}

}  // namespace

Result<ContainerProcesses> FindContainer(stack::DockerStack& stack, const std::string& name) {
  ContainerProcesses container;
  container.name = name;
  WEDGE_ASSIGN_OR_RETURN(auto inspect, stack.Docker({"inspect", "--format", "{{.Id}}", name},
                                                    std::chrono::seconds(30)));
  if (inspect.first != 0) {
    return Error("docker inspect " + name + " failed: " + sys::TrimTrailing(inspect.second));
  }
  container.id = sys::TrimTrailing(inspect.second);
  container.shim = FindShimOf(container.id);
  if (container.shim == 0) {
    return Error("no containerd-shim process with -id " + container.id + " (container " + name +
                 ")");
  }
  const std::vector<pid_t> children = probe::ReadChildren(container.shim);
  if (children.size() != 1) {
    return Error("the shim of container " + name + " (pid " + std::to_string(container.shim) +
                 ") has " + std::to_string(children.size()) +
                 " children; expected only the container's init");
  }
  container.init = children.front();
  WEDGE_ASSIGN_OR_RETURN(container.pids_cgroup, PidsCgroupOf(container.init));
  return container;
}

Result<std::uint64_t> ReadPidsEventsMax(const fs::path& pids_cgroup) {
  WEDGE_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(pids_cgroup / "pids.events"));
  const std::size_t at = text.find("max ");
  if (at == std::string::npos || (at != 0 && text[at - 1] != '\n')) {
    return Error("no \"max\" line in " + (pids_cgroup / "pids.events").string());
  }
  return std::strtoull(text.c_str() + at + 4, nullptr, 10);
}

std::string DescribePipeCreatorPrivilege(pid_t pid) {
  Result<probe::TaskStatus> status = probe::ReadStatus(pid, pid);
  if (!status.ok()) return "capabilities unreadable";
  const std::uint64_t caps = status->cap_eff;
  char hex[32];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(caps));
  const bool admin = (caps >> kCapSysAdmin) & 1;
  const bool resource = (caps >> kCapSysResource) & 1;
  std::string text = std::string("CapEff ") + hex + " (" +
                     (admin ? "CAP_SYS_ADMIN" : "no CAP_SYS_ADMIN") + ", " +
                     (resource ? "CAP_SYS_RESOURCE" : "no CAP_SYS_RESOURCE") + ")";
  // The initial user namespace has a fixed inode number (PROC_USER_INIT_INO); pid 1's link is
  // not always readable, so compare with that.
  struct stat user_ns {};
  if (::stat(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), &user_ns) == 0) {
    text += user_ns.st_ino == kInitialUserNamespaceInode ? ", in the initial user namespace"
                                                         : ", in a user namespace of its own";
  }
  return text;
}

Result<ContainerProcesses> Containers::Find(const std::string& name) {
  if (auto known = found_.find(name); known != found_.end()) return known->second;
  WEDGE_ASSIGN_OR_RETURN(ContainerProcesses container, FindContainer(stack_, name));
  found_.emplace(name, container);
  return container;
}

struct CommandWatch::State {
  scenario::RunCommandStep step;
  scenario::CommandWatch watch;
  Say say;
  ContainerProcesses container;
  std::unique_ptr<stack::StraceProcess> hold;
  std::vector<std::string> injections;

  std::thread runner;
  std::atomic<bool> returned{false};
  std::mutex mutex;
  std::optional<Result<signature::ObservedCommand>> result;  // guarded by mutex
  std::int64_t started_ms = 0;

  bool stalled = false;
  // The watched processes and their parents, pinned by pidfd when the stall was captured.
  std::vector<sys::Pidfd> drain_targets;
  bool drained = false;
  std::optional<signature::ObservedCommand> finished;

  bool IsWatched(pid_t pid) const { return CommOf(pid) == watch.comm; }

  // Whether there are watched processes and each one's state is one of watch.stalled_states
  // (any state when none is listed).
  bool InStalledStates(const std::vector<pid_t>& watched) const {
    if (watch.stalled_states.empty()) return true;
    return !watched.empty() && std::all_of(watched.begin(), watched.end(), [&](pid_t pid) {
      Result<probe::TaskStat> stat = probe::ReadStat(pid, pid);
      return stat.ok() && std::find(watch.stalled_states.begin(), watch.stalled_states.end(),
                                    stat->state) != watch.stalled_states.end();
    });
  }

  // The descendants of the shim whose comm is the watched one.
  std::vector<pid_t> WatchedProcesses() const {
    std::vector<pid_t> found;
    for (pid_t pid : probe::ListDescendants(container.shim)) {
      if (pid != container.shim && IsWatched(pid)) found.push_back(pid);
    }
    return found;
  }

  // The watched processes found now and their parents (below the shim), pinned.
  void PinDrainTargets(const std::vector<pid_t>& watched) {
    for (pid_t pid : watched) {
      std::optional<sys::Pidfd> pinned = Pin(pid, [&](pid_t p) { return IsWatched(p); });
      if (!pinned) continue;
      const pid_t parent = ParentOf(pid);
      drain_targets.push_back(std::move(*pinned));
      if (parent <= 0 || parent == container.shim) continue;
      // Still the parent once pinned: the child's PPid has not changed.
      if (auto parent_pinned = Pin(parent, [&](pid_t) { return ParentOf(pid) == parent; })) {
        drain_targets.push_back(std::move(*parent_pinned));
      }
    }
  }

  void ShrinkStderrPipe(pid_t pid) {
    std::optional<sys::Pidfd> pinned = Pin(pid, [&](pid_t p) { return IsWatched(p); });
    if (!pinned) return;  // gone already: nothing of ours to resize
    Result<UniqueFd> copy = probe::CopyDescriptor(pinned->get(), pid, 2);
    if (!copy.ok()) {
      injections.push_back("could not shrink the stderr pipe of pid " + std::to_string(pid) + ": " +
                           copy.error().message());
      return;
    }
    Result<probe::PipeFill> measured = probe::MeasurePipe(copy->get(), "stderr of " + watch.comm);
    const int before = measured.ok() ? measured->capacity_bytes : -1;
    const int after = ::fcntl(copy->get(), F_SETPIPE_SZ, *watch.stderr_pipe_bytes);
    std::string line = "injected: stderr pipe of " + watch.comm + " (pid " + std::to_string(pid) +
                       ") resized from " + std::to_string(before) + " to ";
    line += after < 0 ? "(refused: " + std::string(std::strerror(errno)) + ")"
                      : std::to_string(after) + " bytes with F_SETPIPE_SZ";
    injections.push_back(line);
    say(line);
  }
};

CommandWatch::CommandWatch(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<CommandWatch>> CommandWatch::Start(
    const scenario::RunCommandStep& step, const scenario::CommandWatch& spec,
    const fs::path& binary, const std::map<std::string, std::string>& env, sys::Journal& journal,
    const ContainerProcesses& container, const fs::path& run_dir, Say say) {
  auto state = std::make_unique<State>();
  State& s = *state;
  s.step = step;
  s.watch = spec;
  s.say = std::move(say);
  s.container = container;
  s.say("watching " + s.watch.comm + " under the shim (pid " + std::to_string(s.container.shim) +
        ") of container " + s.container.name);
  if (!s.watch.hold_syscall.empty()) {
    // strace's delay_enter keeps each entry of the syscall in a tracing stop for hold_ms, in
    // the shim and every process it starts from now on (-f): runc, then runc init.
    WEDGE_ASSIGN_OR_RETURN(
        s.hold, stack::StraceProcess::Attach(
                    journal,
                    {"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + s.watch.hold_syscall, "-e",
                     "signal=none", "-e",
                     "inject=" + s.watch.hold_syscall +
                         ":delay_enter=" + std::to_string(s.watch.hold_ms * 1000)},
                    s.container.shim, run_dir / "hold-strace.log", kHoldAttachTimeout));
    std::string line = "injected: every " + s.watch.hold_syscall + " entry of the shim (pid " +
                       std::to_string(s.container.shim) + ") and its descendants held " +
                       std::to_string(s.watch.hold_ms) + " ms (" + s.hold->Describe() + ")";
    s.injections.push_back(line);
    s.say(line);
  }
  std::unique_ptr<CommandWatch> watch(new CommandWatch(std::move(state)));
  s.started_ms = sys::MonotonicMillis();
  s.runner = std::thread([&s, binary, env, &journal] {
    Result<signature::ObservedCommand> result = RunCommandStep(s.step, binary, env, journal);
    std::lock_guard lock(s.mutex);
    s.result = std::move(result);
    s.returned = true;
  });
  return watch;
}

CommandWatch::Outcome CommandWatch::WaitForStallOrReturn() {
  State& s = *state_;
  Outcome outcome;
  std::set<pid_t> seen;
  probe::SettleWatch settle(s.watch.settle_ms, sys::MonotonicMillis());
  for (;;) {
    const std::int64_t now = sys::MonotonicMillis();
    if (s.returned) break;
    if (sys::Interrupted()) {
      outcome.interrupted = true;
      break;
    }
    std::vector<pid_t> watched = s.WatchedProcesses();
    for (pid_t pid : watched) {
      if (!seen.insert(pid).second) continue;
      s.say("seen " + s.watch.comm + " as pid " + std::to_string(pid) + " after " +
            std::to_string(now - s.started_ms) + " ms");
      if (s.watch.stderr_pipe_bytes) s.ShrinkStderrPipe(pid);
    }
    // An idle process is quiet too: until every watched one is in a state the stall needs (a
    // killed daemon's Z), quiet does not count.
    if (!s.InStalledStates(watched)) {
      settle = probe::SettleWatch(s.watch.settle_ms, now);
    } else if (settle.Settled(probe::ReadActivity(watched), now) && !s.returned) {
      s.stalled = true;
      outcome.stalled = true;
      outcome.after_ms = now - s.started_ms;
      // A spawned container's processes are labelled by its spawn step: the capture is its
      // whole tree under the shim. Otherwise the watched processes (and their parents).
      std::vector<pid_t> captured = watched;
      if (s.watch.label.empty()) {
        captured.clear();
        for (pid_t pid : probe::ListDescendants(s.container.shim)) {
          if (pid != s.container.shim) captured.push_back(pid);
        }
      }
      if (!s.watch.parent_label.empty()) {
        for (pid_t pid : watched) {
          const pid_t parent = ParentOf(pid);
          if (parent > 0 && parent != s.container.shim &&
              std::find(captured.begin(), captured.end(), parent) == captured.end()) {
            captured.push_back(parent);
            outcome.labels[parent] = s.watch.parent_label;
          }
        }
      }
      if (!s.watch.label.empty()) {
        for (pid_t pid : watched) outcome.labels[pid] = s.watch.label;
      }
      outcome.snapshot = probe::ReadProcesses(captured, /*peek_pipes=*/true);
      for (auto& process : outcome.snapshot.processes) {
        if (auto label = outcome.labels.find(process.pid); label != outcome.labels.end()) {
          process.label = label->second;
        }
      }
      s.PinDrainTargets(watched);
      return outcome;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(s.watch.poll_interval_ms));
  }
  outcome.after_ms = sys::MonotonicMillis() - s.started_ms;
  return outcome;
}

std::vector<std::string> CommandWatch::DrainPipes(std::chrono::milliseconds timeout) {
  State& s = *state_;
  std::vector<std::string> lines;
  if (s.hold) {
    Status detached = s.hold->Detach();
    lines.push_back("detached the " + s.watch.hold_syscall + " hold: " +
                    (detached.ok() ? s.hold->detach_outcome() : detached.error().message()));
  }
  s.drained = true;
  if (s.drain_targets.empty()) {
    lines.push_back("no stalled process to drain");
    return lines;
  }
  const std::int64_t start = sys::MonotonicMillis();
  // A reader of our own per distinct pipe, opened through /proc/PID/fd/2: a new open file
  // description, so O_NONBLOCK here never changes how the writers' descriptors behave.
  std::vector<sys::Pidfd> targets;
  std::vector<UniqueFd> readers;
  std::set<std::string> pipes;
  for (sys::Pidfd& pidfd : s.drain_targets) {
    // While its pidfd says it runs, the pid is still this process's.
    if (pidfd.HasExited()) continue;
    const pid_t pid = pidfd.pid();
    const fs::path fd_path = "/proc/" + std::to_string(pid) + "/fd/2";
    std::error_code ec;
    const std::string target = fs::read_symlink(fd_path, ec).string();
    if (!ec && target.rfind("pipe:", 0) == 0 && pipes.insert(target).second) {
      UniqueFd reader(::open(fd_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
      if (reader.valid()) readers.push_back(std::move(reader));
    }
    targets.push_back(std::move(pidfd));
  }
  std::size_t drained = 0;
  std::string head;
  char buffer[65536];
  const std::int64_t deadline = start + timeout.count();
  auto all_exited = [&] {
    return std::all_of(targets.begin(), targets.end(),
                       [](const sys::Pidfd& target) { return target.HasExited(); });
  };
  while (!all_exited() && sys::MonotonicMillis() < deadline) {
    std::vector<pollfd> fds;
    for (const UniqueFd& reader : readers) fds.push_back({reader.get(), POLLIN, 0});
    for (const sys::Pidfd& target : targets) fds.push_back({target.get(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 10);
    for (const UniqueFd& reader : readers) {
      for (;;) {
        const ssize_t n = ::read(reader.get(), buffer, sizeof buffer);
        if (n <= 0) break;
        if (head.size() < kDrainedHeadBytes) {
          head.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n),
                                                    kDrainedHeadBytes - head.size()));
        }
        drained += static_cast<std::size_t>(n);
      }
    }
  }
  std::string line = "drained " + std::to_string(drained) + " bytes from the stderr pipe of";
  for (const sys::Pidfd& target : targets) line += " " + std::to_string(target.pid());
  line += all_exited() ? "; all exited " : "; NOT all exited ";
  line += std::to_string(sys::MonotonicMillis() - start) + " ms after draining began";
  lines.push_back(line);
  if (!head.empty())
    lines.push_back("drained bytes began: \"" + signature::EscapeOneLine(head.substr(0, 160)) +
                    "\"");
  return lines;
}

bool CommandWatch::Returned() const { return state_->returned; }

signature::ObservedCommand CommandWatch::Finish() {
  State& s = *state_;
  if (s.finished) return *s.finished;
  if (s.runner.joinable()) s.runner.join();
  std::lock_guard lock(s.mutex);
  signature::ObservedCommand command;
  if (s.result && s.result->ok()) {
    command = **s.result;
  } else {
    command.command = s.step.name;
    command.output = s.result ? "(wedge could not run it: " + s.result->error().message() + ")"
                              : std::string("(not run)");
  }
  command.running_at_capture = s.stalled;
  s.finished = command;
  return command;
}

const std::vector<std::string>& CommandWatch::injections() const { return state_->injections; }

CommandWatch::~CommandWatch() {
  State& s = *state_;
  // Whatever path got here, nothing wedge started may stay blocked on a pipe nobody reads.
  if (!s.drained && !s.returned) {
    if (s.drain_targets.empty()) s.PinDrainTargets(s.WatchedProcesses());
    (void)DrainPipes(std::chrono::seconds(5));
  }
  if (s.hold) (void)s.hold->Detach();
  if (s.runner.joinable()) s.runner.join();
}

}  // namespace wedge::runner
