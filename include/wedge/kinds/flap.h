// The "flap" step kind (FlapStep in wedge/scenario/scenario.h): how it is read and how a run
// performs it. Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "flap" step at `element`: at most one, against a fresh stack.
scenario::FlapStep ReadFlapStep(const scenario::reader::Node& element,
                                scenario::ReadContext& context);

// Takes the stack's containerd away and brings it back while the syscall probe watches
// dockerd, then measures dockerd's recovery.
Status Run(const scenario::FlapStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
