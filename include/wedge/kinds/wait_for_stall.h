// The "wait-for-stall" step kind (WaitForStallStep in wedge/scenario/scenario.h): how it is read
// and how a run performs it. Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "wait-for-stall" step at `element`: the last step, and the one capture.
scenario::WaitForStallStep ReadWaitForStallStep(const scenario::reader::Node& element,
                                                scenario::ReadContext& context);

// Watches the sandbox's processes until nothing changes for the settle window (the stall)
// or every one has exited, then captures them.
Status Run(const scenario::WaitForStallStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
