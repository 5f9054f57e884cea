// The "flap" step kind (FlapStep in wedge/scenario/scenario.h): how a run performs it.
// Its schema is documented in docs/scenario-format.md.
#pragma once

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {
struct RunContext;
}

namespace wedge::kinds {

// Takes the stack's containerd away and brings it back while the syscall probe watches
// dockerd, then measures dockerd's recovery.
Status Run(const scenario::FlapStep& step, runner::RunContext& context);

}  // namespace wedge::kinds
