// The "wait-for-stall" step kind (WaitForStallStep in wedge/scenario/scenario.h): how a run performs it.
// Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Watches the sandbox's processes until nothing changes for the settle window (the stall)
// or every one has exited, then captures them.
Status Run(const scenario::WaitForStallStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
