// The "kill-sandbox" recovery action (KillSandbox in wedge/scenario/scenario.h).
#pragma once

#include "wedge/scenario/scenario.h"

namespace wedge::scenario {
struct ReadContext;
namespace reader {
struct Node;
}
}  // namespace wedge::scenario

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Reads the recovery action "kill-sandbox" at `element`.
scenario::KillSandbox ReadKillSandbox(const scenario::reader::Node& element,
                                      scenario::ReadContext& context);

// SIGKILLs every process of the sandbox. What it did goes to the run's recovery lines.
void Recover(const scenario::KillSandbox& action, runner::RunContext& context);

}  // namespace wedge::kinds
