// The "pids-limit-hit" precondition kind (PidsLimitHit in wedge/scenario/scenario.h): observed
// around its command: the container's pids cgroup refused a fork or clone while it ran.
#pragma once

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/kinds/observed_precondition.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "pids-limit-hit" precondition at `element`: its container is started
// before its command.
scenario::Precondition ReadPidsLimitHitPrecondition(const scenario::reader::Node& element,
                                                    scenario::ReadContext& context);

// Reads the container's pids.events "max" count before the command; the returned function reads
// it again and says whether it grew.
Result<PreconditionAfter> ObserveBefore(const scenario::Precondition& precondition,
                                        const scenario::PidsLimitHit& check,
                                        runner::RunContext& context);

}  // namespace wedge::kinds
