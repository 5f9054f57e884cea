#include <signal.h>

#include "wedge/kinds/kill_sandbox.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

void Recover(const scenario::KillSandbox& /*action*/, runner::RunContext& context) {
  if (!context.sandbox) return;
  std::vector<pid_t> pids = context.SandboxProcesses();
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  context.result.recovery.push_back("sent SIGKILL to " + std::to_string(pids.size()) +
                                    " process(es) of the sandbox");
}

}  // namespace wedge::kinds
