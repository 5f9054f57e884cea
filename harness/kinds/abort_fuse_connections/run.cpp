#include "wedge/kinds/abort_fuse_connections.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/fuse.h"

namespace wedge::kinds {

void Recover(const scenario::AbortFuseConnections& /*action*/, runner::RunContext& context) {
  if (!context.sandbox) return;  // the loader allows it only with a sandbox's fixture
  std::vector<unsigned> aborted =
      sys::AbortFuseConnectionsOf(context.SandboxProcesses(), context.result.recovery);
  if (aborted.empty()) context.result.recovery.push_back("no FUSE connection left to abort");
}

}  // namespace wedge::kinds
