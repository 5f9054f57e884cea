#include "command_step.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wedge/base/unique_fd.h"
#include "wedge/inject/seccomp.h"
#include "wedge/probe/signals.h"
#include "wedge/probe/task.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/process.h"

namespace wedge::runner {
namespace {

constexpr int kCapSysResource = 24;

// Whether wedge's effective capability set has `capability` (bit number), per /proc.
bool HasCapability(int capability) {
  const pid_t self = ::getpid();
  Result<probe::TaskStatus> status = probe::ReadStatus(self, self);
  return status.ok() && ((status->cap_eff >> capability) & 1);
}

Result<std::optional<inject::SeccompProfile>> BuildProfile(const scenario::CommandConfinement& c) {
  const bool any_filter = !c.system_call_filter.empty() || c.native_architecture_only;
  if (!any_filter && !c.no_new_privileges) return std::optional<inject::SeccompProfile>();
  inject::SeccompProfileBuilder builder;
  if (any_filter) {
    // SystemCallArchitectures=native alone is an empty deny list that still kills foreign
    // architectures' syscalls.
    inject::SyscallFilter filter;
    if (!c.system_call_filter.empty()) {
      WEDGE_ASSIGN_OR_RETURN(filter, inject::CombineSystemCallFilter(
                                         c.system_call_filter, inject::SyscallGroups::Builtin()));
    }
    filter.native_architecture_only = c.native_architecture_only;
    builder.UseSystemCallFilter(filter);
  }
  // The loader makes NoNewPrivileges default to true with a filter, as systemd does for an
  // unprivileged unit; an explicit false is honoured.
  builder.SetNoNewPrivileges(c.no_new_privileges);
  WEDGE_ASSIGN_OR_RETURN(inject::SeccompProfile profile, builder.TryBuild());
  return std::optional<inject::SeccompProfile>(std::move(profile));
}

}  // namespace

Result<signature::ObservedCommand> RunCommandStep(const scenario::RunCommandStep& step,
                                                  const std::filesystem::path& binary,
                                                  const std::map<std::string, std::string>& env,
                                                  sys::Journal& journal) {
  signature::ObservedCommand observed;
  observed.command = step.name;
  observed.binary = binary.string();
  observed.argv.push_back(binary.string());
  for (const auto& arg : step.args) observed.argv.push_back(arg);

  WEDGE_ASSIGN_OR_RETURN(std::optional<inject::SeccompProfile> profile,
                         BuildProfile(step.confinement));
  sys::ChildSpec spec;
  spec.role = step.name;
  spec.argv = observed.argv;
  spec.environment = env;
  spec.stdin_stream = sys::ChildStream::Null();
  spec.stdout_stream = sys::ChildStream::Pipe();
  spec.stderr_stream = sys::ChildStream::SameAsStdout();
  for (const auto& limit : step.confinement.rlimits) {
    // Raising a hard limit needs CAP_SYS_RESOURCE, which root lacks in some containers and
    // CI machines; say so plainly instead of failing in the child.
    rlimit own{};
    if (::getrlimit(limit.resource, &own) == 0 && limit.hard > own.rlim_max &&
        !HasCapability(kCapSysResource)) {
      return Error(step.name + ": cannot pin " + limit.name + " hard limit " +
                   std::to_string(limit.hard) + " above wedge's own (" +
                   std::to_string(own.rlim_max) + ") without CAP_SYS_RESOURCE");
    }
    spec.rlimits.push_back({limit.resource, rlimit{limit.soft, limit.hard}});
  }
  // NoNewPrivileges is the profile's: set by InstallSeccompProfile just before the filter.
  if (profile)
    spec.install_seccomp = [&profile] { return inject::InstallSeccompProfile(*profile); };

  // The audit record of a seccomp kill is written after this point: read from here on.
  Result<inject::KernelLogCursor> kernel_log = inject::KernelLogCursor::OpenAtEnd();

  const std::int64_t start = sys::MonotonicMillis();
  sys::ChildSetupFailure failure;
  Result<sys::ChildProcess> started = sys::ChildProcess::Start(journal, spec, &failure);
  if (!started.ok()) {
    // Confinement that failed in the child, in the words wedge has always used.
    const char* what = nullptr;
    if (failure.error != 0) {
      if (failure.stage == sys::ChildStage::kRlimit) what = "setrlimit";
      if (failure.stage == sys::ChildStage::kSeccomp) what = "installing the seccomp filter";
      if (failure.stage == sys::ChildStage::kExec) what = "execve";
    }
    if (what == nullptr) return started.error();
    return Error("starting " + binary.string() + " failed: " + what + " failed in the child");
  }
  sys::ChildProcess& child = *started;
  const pid_t pid = child.pid();
  UniqueFd output_read = child.TakePipe(STDOUT_FILENO);

  // Read its output until it closes (the process and any children that inherited it are done)
  // or the timeout passes.
  const std::int64_t deadline = start + step.timeout_ms;
  char buffer[4096];
  for (;;) {
    int left = static_cast<int>(deadline - sys::MonotonicMillis());
    if (left <= 0 || sys::Interrupted()) {
      (void)child.Signal(SIGKILL);
      observed.timed_out = left <= 0;
      break;
    }
    pollfd pfd{output_read.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, std::min(left, 50));
    if (ready <= 0) continue;
    ssize_t n = ::read(output_read.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (observed.output.size() < (1u << 20)) observed.output.append(buffer, static_cast<size_t>(n));
  }
  const int status = child.Wait();
  observed.duration_ms = sys::MonotonicMillis() - start;
  if (sys::Interrupted()) return Error("interrupted while running " + step.name);

  if (WIFEXITED(status)) {
    observed.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status) && !observed.timed_out) {
    int signo = WTERMSIG(status);
    observed.killed_by = probe::SignalName(signo);
    if (signo == SIGSYS && kernel_log.ok()) {
      // SECCOMP_RET_KILL_PROCESS is logged by the kernel (kernel.seccomp.actions_logged) with
      // the syscall number; wait briefly, the record can trail the process's death.
      if (std::optional<inject::SeccompKill> kill = kernel_log->FindSeccompKill(pid, 2000)) {
        observed.refused_syscall = kill->syscall_name;
        observed.refused_syscall_number = kill->syscall;
        observed.audit_record = kill->record;
      }
    }
  }
  return observed;
}

}  // namespace wedge::runner
