// The "kill" step kind (KillStep in wedge/scenario/scenario.h): how it is read and how a run
// performs it. Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "kill" step at `element`: its target is a process spawned before it.
scenario::KillStep ReadKillStep(const scenario::reader::Node& element,
                                scenario::ReadContext& context);

// Sends the step's signal to a process of the sandbox, by label.
Status Run(const scenario::KillStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
