// The "watched-command" step kind (WatchedCommandStep in wedge/scenario/scenario.h): how a run performs it.
// Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Runs the command in the background and watches the processes the stack starts for it
// until they stall (then captures them, the command still running) or the command returns.
Status Run(const scenario::WatchedCommandStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
