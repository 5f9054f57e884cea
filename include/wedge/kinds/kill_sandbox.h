// The "kill-sandbox" recovery action (KillSandbox in wedge/scenario/scenario.h).
#pragma once

#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads the recovery action "kill-sandbox" at `element`.
scenario::KillSandbox ReadKillSandbox(const scenario::reader::Node& element,
                                      scenario::ReadContext& context);

// SIGKILLs every process of the sandbox. What it did goes to the run's recovery lines.
void Recover(const scenario::KillSandbox& action, runner::RunContext& context);

}  // namespace wedge::kinds
