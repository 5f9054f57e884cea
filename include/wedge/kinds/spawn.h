// The "spawn" step kind (SpawnStep in wedge/scenario/scenario.h): how it is read and how a run
// performs it. Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "spawn" step at `element`; records its process and fixture in `context`.
scenario::SpawnStep ReadSpawnStep(const scenario::reader::Node& element,
                                  scenario::ReadContext& context);

// Starts the fixture the step names inside the sandbox, labelled with the step's name.
Status Run(const scenario::SpawnStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
