// The "kill-sandbox" recovery action (KillSandbox in wedge/scenario/scenario.h).
#pragma once

#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// SIGKILLs every process of the sandbox. What it did goes to the run's recovery lines.
void Recover(const scenario::KillSandbox& action, runner::RunContext& context);

}  // namespace wedge::kinds
