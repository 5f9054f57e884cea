// What the observed precondition kinds (pids-limit-hit, pipe-capacity-at-most) share: a baseline
// read before their command runs, and a result read once it has returned or stalled.
#pragma once

#include <functional>

#include "wedge/report/report.h"

namespace wedge::kinds {

// Reads what the precondition observes after its command, against the baseline it captured.
using PreconditionAfter = std::function<report::PreconditionResult()>;

}  // namespace wedge::kinds
