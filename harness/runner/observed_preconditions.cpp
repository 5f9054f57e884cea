#include "observed_preconditions.h"

#include "wedge/base/overloaded.h"
#include "wedge/kinds/kinds.h"
#include "wedge/runner/run_context.h"

namespace wedge::runner {

Result<ObservedPreconditions> ObservedPreconditions::Before(const std::string& command,
                                                            RunContext& context) {
  ObservedPreconditions observed;
  for (const scenario::Precondition& precondition : context.scenario.preconditions) {
    if (precondition.command != command) continue;
    WEDGE_ASSIGN_OR_RETURN(
        std::optional<kinds::PreconditionAfter> after,
        std::visit(Overloaded{
                       // Decided before the steps run: CheckStaticPreconditions.
                       [](const scenario::RlimitSoftBelowHard&)
                           -> Result<std::optional<kinds::PreconditionAfter>> {
                         return std::optional<kinds::PreconditionAfter>();
                       },
                       [&](const auto& check) -> Result<std::optional<kinds::PreconditionAfter>> {
                         WEDGE_ASSIGN_OR_RETURN(kinds::PreconditionAfter read,
                                                kinds::ObserveBefore(precondition, check, context));
                         return std::optional<kinds::PreconditionAfter>(std::move(read));
                       },
                   },
                   precondition.check));
    if (after) observed.after_.push_back(std::move(*after));
  }
  return observed;
}

std::vector<std::string> ObservedPreconditions::After(
    std::vector<report::PreconditionResult>& results) const {
  std::vector<std::string> lines;
  for (const kinds::PreconditionAfter& after : after_) {
    report::PreconditionResult result = after();
    lines.push_back("precondition " + result.name + ": " +
                    (result.held ? "holds" : "does not hold") + " (" + result.detail + ")");
    results.push_back(std::move(result));
  }
  return lines;
}

}  // namespace wedge::runner
