// The "drain-pipes" recovery action (DrainPipes in wedge/scenario/scenario.h).
#pragma once

#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Drains the stderr pipe the watched processes share until they exit, and records how the
// watched command then ended. What it did goes to the run's recovery lines.
void Recover(const scenario::DrainPipes& action, runner::RunContext& context);

}  // namespace wedge::kinds
