// The preconditions a scenario observes around one run-command step (the kinds of
// wedge/kinds/observed_precondition.h): baselines read before it runs, results after it returned
// or stalled.
#pragma once

#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/kinds/observed_precondition.h"
#include "wedge/report/report.h"

namespace wedge::runner {

struct RunContext;

class ObservedPreconditions {
 public:
  // Reads the baseline of every observed precondition about command `command`.
  static Result<ObservedPreconditions> Before(const std::string& command, RunContext& context);
  // Appends one result per precondition about the command; returns a progress line for each.
  std::vector<std::string> After(std::vector<report::PreconditionResult>& results) const;

 private:
  std::vector<kinds::PreconditionAfter> after_;
};

}  // namespace wedge::runner
