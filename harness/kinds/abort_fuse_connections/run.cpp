#include "wedge/kinds/abort_fuse_connections.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/fuse.h"

namespace wedge::kinds {

void Recover(const scenario::AbortFuseConnections& /*action*/, runner::RunContext& context) {
  // The FUSE daemons are in the sandbox, or in the containers spawn steps started (the loader
  // allows the action only with a fuse-daemon fixture).
  std::vector<pid_t> pids = context.SpawnedContainerProcesses();
  if (context.sandbox) {
    for (pid_t pid : context.SandboxProcesses()) pids.push_back(pid);
  }
  std::vector<unsigned> aborted = sys::AbortFuseConnectionsOf(pids, context.result.recovery);
  if (aborted.empty()) context.result.recovery.push_back("no FUSE connection left to abort");
}

}  // namespace wedge::kinds
