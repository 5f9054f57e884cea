#include "command_step.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wedge/base/unique_fd.h"
#include "wedge/inject/seccomp.h"
#include "wedge/probe/signals.h"
#include "wedge/probe/task.h"
#include "wedge/sys/files.h"
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

// Exit statuses the child uses when confinement fails before exec; the parent reports them.
constexpr int kSetrlimitFailed = 121;
constexpr int kSeccompFailed = 122;
constexpr int kExecFailed = 123;

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

Result<signature::ObservedCommand> RunCommandStep(const scenario::Step& step,
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
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& arg : observed.argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::pair<int, rlimit>> limits;
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
    limits.push_back({limit.resource, rlimit{limit.soft, limit.hard}});
  }

  // The audit record of a seccomp kill is written after this point: read from here on.
  Result<inject::KernelLogCursor> kernel_log = inject::KernelLogCursor::OpenAtEnd();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("pipe2()");
  UniqueFd output_read(pipe_fds[0]);
  UniqueFd output_write(pipe_fds[1]);
  const std::int64_t start = sys::MonotonicMillis();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork()");
  if (pid == 0) {
    ::dup2(output_write.get(), STDOUT_FILENO);
    ::dup2(output_write.get(), STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    for (const auto& [resource, limit] : limits) {
      if (::setrlimit(resource, &limit) != 0) ::_exit(kSetrlimitFailed);
    }
    if (profile && inject::InstallSeccompProfile(*profile) != 0) ::_exit(kSeccompFailed);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(kExecFailed);
  }
  output_write.Reset();
  std::optional<std::uint64_t> start_time = sys::ProcessStartTime(pid);
  (void)journal.Record(sys::ProcessChange{pid, start_time.value_or(0), step.name});

  // Read its output until it closes (the process and any children that inherited it are done)
  // or the timeout passes.
  const std::int64_t deadline = start + step.timeout_ms;
  char buffer[4096];
  for (;;) {
    int left = static_cast<int>(deadline - sys::MonotonicMillis());
    if (left <= 0 || sys::Interrupted()) {
      ::kill(pid, SIGKILL);
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
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  observed.duration_ms = sys::MonotonicMillis() - start;
  if (sys::Interrupted()) return Error("interrupted while running " + step.name);

  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    observed.exit_code = code;
    switch (code) {
      case kSetrlimitFailed:
      case kSeccompFailed:
      case kExecFailed:
        // Not the command's own status unless its output says otherwise: report it plainly.
        if (observed.output.empty()) {
          return Error(std::string("starting ") + binary.string() + " failed: " +
                       (code == kSetrlimitFailed ? "setrlimit"
                        : code == kSeccompFailed ? "installing the seccomp filter"
                                                 : "execve") +
                       " failed in the child");
        }
        break;
      default:
        break;
    }
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
