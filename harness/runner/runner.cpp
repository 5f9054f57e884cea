#include "wedge/runner/runner.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "wedge/probe/task.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"
#include "wedge/sys/sysctl.h"

namespace wedge::runner {

using scenario::Scenario;

std::vector<std::string> UnmetRequirements(const Scenario& scenario) {
  std::vector<std::string> unmet;
  for (scenario::Requirement requirement : scenario.requires_) {
    switch (requirement) {
      case scenario::Requirement::kRoot:
        if (::geteuid() != 0) unmet.push_back("root: wedge must run as root (euid 0)");
        break;
      case scenario::Requirement::kFuseDevice: {
        struct stat st {};
        if (::stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
          unmet.push_back(
              "fuse-device: /dev/fuse is missing (modprobe fuse; apt-get install fuse3)");
        }
        break;
      }
      case scenario::Requirement::kFusectl: {
        Result<std::string> filesystems = sys::ReadFile("/proc/filesystems");
        if (!filesystems.ok() || filesystems->find("\tfusectl\n") == std::string::npos) {
          unmet.push_back(
              "fusectl: the kernel has no fusectl filesystem to abort FUSE connections");
        }
        break;
      }
      case scenario::Requirement::kPidsCgroup:
        if (Result<std::filesystem::path> pids = sys::PidsHierarchy(); !pids.ok()) {
          unmet.push_back("pids-cgroup: no pids cgroup controller is mounted (" +
                          pids.error().message() + ")");
        }
        break;
      case scenario::Requirement::kSeccomp: {
        Result<std::string> status = sys::ReadFile("/proc/self/status");
        Result<std::string> actions = sys::ReadFile("/proc/sys/kernel/seccomp/actions_avail");
        if (!status.ok() || status->find("\nSeccomp:") == std::string::npos || !actions.ok() ||
            actions->find("kill_process") == std::string::npos) {
          unmet.push_back(
              "seccomp: the kernel lacks seccomp filters with kill_process "
              "(CONFIG_SECCOMP_FILTER)");
        }
        break;
      }
      case scenario::Requirement::kKernelStacks:
        if (!sys::ReadFile("/proc/self/stack").ok()) {
          unmet.push_back(
              "kernel-stacks: /proc/PID/stack is not readable (needs root and "
              "CONFIG_STACKTRACE)");
        }
        break;
    }
  }
  return unmet;
}

Suite::Suite(RunOptions options) : options_(std::move(options)) {}

Suite::~Suite() { TearDown(); }

Result<stack::DockerStack*> Suite::SharedStack() {
  if (stack_) return stack_.get();
  if (!journal_) {
    WEDGE_ASSIGN_OR_RETURN(journal_, sys::Journal::Create(options_.state_dir, NewRunId("suite")));
  }
  const std::filesystem::path run_dir = options_.state_dir / "runs" / journal_->run_id();
  WEDGE_RETURN_IF_ERROR(journal_->Record(sys::DirectoryChange{run_dir}));
  WEDGE_RETURN_IF_ERROR(sys::MakePrivateDirectory(run_dir));
  stack::StackOptions stack_options;
  stack_options.binaries = options_.binaries;
  stack_options.run_directory = run_dir;
  stack_options.fixtures_dir = options_.fixtures_dir;
  WEDGE_ASSIGN_OR_RETURN(stack_, stack::DockerStack::Start(*journal_, stack_options));
  WEDGE_RETURN_IF_ERROR(stack_->EnsureBusyboxImage());
  return stack_.get();
}

std::vector<std::string> Suite::TearDown() {
  std::vector<std::string> lines;
  if (stack_) {
    if (Status stopped = stack_->Stop(); !stopped.ok()) {
      lines.push_back("stopping the shared stack: " + stopped.error().message());
    }
    stack_.reset();
    lines.push_back("stopped the shared private docker stack");
  }
  if (journal_) {
    if (Status undone = journal_->UndoAll(); !undone.ok()) {
      lines.push_back("undoing the suite's journal: " + undone.error().message());
    }
    for (const auto& line : journal_->undo_log()) lines.push_back(line);
    journal_.reset();
  }
  return lines;
}

HostState CaptureHostState(const std::filesystem::path& state_dir) {
  HostState state;
  std::error_code ec;
  for (pid_t number : probe::ListProcesses()) {
    const std::string pid = std::to_string(number);
    if (Result<std::string> comm = probe::ReadComm(number); comm.ok()) {
      const std::string& name = *comm;
      if (name == "dockerd" || name == "containerd" || name.rfind("containerd-shim", 0) == 0 ||
          name == "runc" || name.rfind("runc:[", 0) == 0) {
        state.stack_processes.insert(pid + "(" + name + ")");
      }
      // wedge's own helpers: a tracer, a sandbox's init, a guest. None may outlive its run,
      // wherever it sits (an exiting pid-namespace init has already left its cgroup).
      // A zombie is left out: it holds nothing but its pid, and reaping it is its parent's job
      // (after wedge dies, the machine's init, which may take its time).
      if (name == "strace" || name == "wedge-init" || name.rfind("qemu-system", 0) == 0) {
        Result<probe::TaskStat> stat = probe::ReadStat(number, number);
        if (!stat.ok() || stat->state != 'Z') {
          state.helper_processes.insert(pid + "(" + name + ")");
        }
      }
    }
    for (pid_t tid : probe::ListTasks(number)) {
      Result<probe::TaskStat> stat = probe::ReadStat(number, tid);
      // Kernel threads are not wedge's to leave behind: a netns cleanup worker, for one, is
      // briefly in D after a stack stops.
      if (stat.ok() && stat->state == 'D' &&
          (stat->flags & *probe::TaskFlagBit("PF_KTHREAD")) == 0) {
        state.d_state_tasks.insert(std::to_string(tid) + "(" + stat->comm + ")");
      }
    }
  }
  state.fuse_connections = sys::ListFuseConnections();
  state.fusectl_mounted = sys::IsMountedAs(sys::kFusectlDirectory, "fusectl");
  if (Result<std::string> mounts = sys::ReadFile("/proc/self/mounts"); mounts.ok()) {
    std::istringstream lines(*mounts);
    std::string source, target, type, rest;
    while (lines >> source >> target >> type && std::getline(lines, rest)) {
      if (type == "fuse" || type.rfind("fuse.", 0) == 0) state.fuse_mounts.insert(target);
      state.mounts.insert(target + " (" + type + ")");
    }
  }
  // wedge's cgroups (wedge/...) and its containers' (wedge-docker-...), in every hierarchy.
  for (const auto& hierarchy : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    std::error_code inner;
    for (const auto& top : std::filesystem::directory_iterator(hierarchy.path(), inner)) {
      const std::string name = top.path().filename().string();
      if (!top.is_directory(inner) || name.rfind("wedge", 0) != 0) continue;
      state.wedge_cgroups.insert(top.path().string());
      for (const auto& entry : std::filesystem::recursive_directory_iterator(top.path(), inner)) {
        if (entry.is_directory(inner)) state.wedge_cgroups.insert(entry.path().string());
      }
    }
  }
  for (const auto& name : scenario::AllowedSysctls()) {
    if (Result<std::string> value = sys::ReadSysctl(name); value.ok()) state.sysctls[name] = *value;
  }
  for (const auto& entry : std::filesystem::directory_iterator(state_dir / "journal", ec)) {
    state.journals.insert(entry.path().filename().string());
  }
  for (const auto& entry : std::filesystem::directory_iterator(state_dir / "runs", ec)) {
    state.journals.insert("run directory " + entry.path().string());
  }
  return state;
}

std::vector<std::string> DescribeLeftovers(const HostState& before, const HostState& after) {
  std::vector<std::string> lines;
  for (const auto& task : after.d_state_tasks) {
    if (!before.d_state_tasks.contains(task)) lines.push_back("D-state task " + task);
  }
  for (unsigned c : after.fuse_connections) {
    if (!before.fuse_connections.contains(c)) {
      lines.push_back("FUSE connection " + std::to_string(c) + " still open");
    }
  }
  for (const auto& m : after.fuse_mounts) {
    if (!before.fuse_mounts.contains(m)) lines.push_back("FUSE mount " + m);
  }
  if (after.fusectl_mounted != before.fusectl_mounted) {
    lines.push_back(std::string("fusectl ") +
                    (after.fusectl_mounted ? "left mounted" : "unmounted"));
  }
  for (const auto& cg : after.wedge_cgroups) {
    if (!before.wedge_cgroups.contains(cg)) lines.push_back("cgroup " + cg);
  }
  for (const auto& [name, value] : after.sysctls) {
    auto was = before.sysctls.find(name);
    if (was != before.sysctls.end() && was->second != value) {
      lines.push_back("sysctl " + name + " is " + value + ", was " + was->second);
    }
  }
  for (const auto& process : after.helper_processes) {
    if (!before.helper_processes.contains(process)) lines.push_back("helper process " + process);
  }
  for (const auto& process : after.stack_processes) {
    if (!before.stack_processes.contains(process)) lines.push_back("stack process " + process);
  }
  for (const auto& mount : after.mounts) {
    if (!before.mounts.contains(mount)) lines.push_back("mount " + mount);
  }
  for (const auto& journal : after.journals) {
    if (!before.journals.contains(journal)) {
      lines.push_back(journal.rfind("run directory", 0) == 0 ? journal : "journal " + journal);
    }
  }
  return lines;
}

std::vector<std::string> SettledLeftovers(const HostState& before,
                                          const std::filesystem::path& state_dir,
                                          std::chrono::milliseconds settle) {
  const std::int64_t deadline = sys::MonotonicMillis() + settle.count();
  for (;;) {
    std::vector<std::string> leftovers = DescribeLeftovers(before, CaptureHostState(state_dir));
    if (leftovers.empty() || sys::MonotonicMillis() >= deadline) return leftovers;
    ::usleep(20000);
  }
}

sys::JournalRecovery Cleanup(const std::filesystem::path& state_dir) {
  return sys::RecoverOrphanJournals(sys::UndoScope::ForHost(state_dir));
}

}  // namespace wedge::runner
