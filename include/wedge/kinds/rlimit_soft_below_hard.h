// The "rlimit-soft-below-hard" precondition kind (RlimitSoftBelowHard in
// wedge/scenario/scenario.h): decided before the steps run, from the limits the command runs with.
#pragma once

#include "wedge/kinds/contexts.h"
#include "wedge/report/report.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates a "rlimit-soft-below-hard" precondition at `element`: its step pins the
// rlimit. The file decides it, so a failing one is recorded in `context` for the expectation.
scenario::Precondition ReadRlimitSoftBelowHardPrecondition(const scenario::reader::Node& element,
                                                           scenario::ReadContext& context);

// Whether the command's rlimit (pinned by its step, else inherited from wedge) has soft < hard.
report::PreconditionResult CheckBeforeRun(const scenario::Precondition& precondition,
                                          const scenario::RlimitSoftBelowHard& check,
                                          const scenario::Scenario& scenario);

}  // namespace wedge::kinds
