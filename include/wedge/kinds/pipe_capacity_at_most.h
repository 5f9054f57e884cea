// The "pipe-capacity-at-most" precondition kind (PipeCapacityAtMost in
// wedge/scenario/scenario.h): observed once its command has run: the pipe the container's init
// holds as fd N (made by the containerd-shim, as every exec's pipes are) holds at most M bytes.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/kinds/observed_precondition.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "pipe-capacity-at-most" precondition at `element`: its container is
// started before its command.
scenario::Precondition ReadPipeCapacityAtMostPrecondition(const scenario::reader::Node& element,
                                                          scenario::ReadContext& context);

// Finds the container before the command; the returned function measures the pipe and names the
// privilege of the shim that made it (CAP_SYS_RESOURCE exempts it from the pipe sysctls).
Result<PreconditionAfter> ObserveBefore(const scenario::Precondition& precondition,
                                        const scenario::PipeCapacityAtMost& check,
                                        runner::RunContext& context);

}  // namespace wedge::kinds
