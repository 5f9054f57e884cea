// The "spawn" step kind (SpawnStep in wedge/scenario/scenario.h): how a run performs it.
// Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Starts the fixture the step names inside the sandbox, labelled with the step's name.
Status Run(const scenario::SpawnStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
