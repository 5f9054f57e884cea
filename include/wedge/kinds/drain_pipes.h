// The "drain-pipes" recovery action (DrainPipes in wedge/scenario/scenario.h).
#pragma once

#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads the recovery action "drain-pipes" at `element`: it needs a watched run-command step.
scenario::DrainPipes ReadDrainPipes(const scenario::reader::Node& element,
                                    scenario::ReadContext& context);

// Drains the stderr pipe the watched processes share until they exit, and records how the
// watched command then ended. What it did goes to the run's recovery lines.
void Recover(const scenario::DrainPipes& action, runner::RunContext& context);

}  // namespace wedge::kinds
