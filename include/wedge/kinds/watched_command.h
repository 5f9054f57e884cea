// The "watched-command" step kind (WatchedCommandStep in wedge/scenario/scenario.h): how it is read
// and how a run performs it. Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates the "watch" of the run-command step `command`, at `node`; records its
// pointer and process labels in `context`.
scenario::CommandWatch ReadCommandWatch(const scenario::reader::Node& node,
                                        const scenario::RunCommandStep& command,
                                        scenario::ReadContext& context);

// Runs the command in the background and watches the processes the stack starts for it
// until they stall (then captures them, the command still running) or the command returns.
Status Run(const scenario::WatchedCommandStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
