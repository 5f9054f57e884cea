// The "kill" step kind (KillStep in wedge/scenario/scenario.h): how a run performs it.
// Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Sends the step's signal to a process of the sandbox, by label.
Status Run(const scenario::KillStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
