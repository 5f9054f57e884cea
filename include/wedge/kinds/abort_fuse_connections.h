// The "abort-fuse-connections" recovery action (AbortFuseConnections in wedge/scenario/scenario.h).
#pragma once

#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads the recovery action "abort-fuse-connections" at `element`.
scenario::AbortFuseConnections ReadAbortFuseConnections(const scenario::reader::Node& element,
                                                        scenario::ReadContext& context);

// Aborts, through fusectl, every FUSE connection the sandbox's processes mount. What it did goes to
// the run's recovery lines.
void Recover(const scenario::AbortFuseConnections& action, runner::RunContext& context);

}  // namespace wedge::kinds
