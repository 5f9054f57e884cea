#include <sys/resource.h>

#include "wedge/kinds/rlimit_soft_below_hard.h"

namespace wedge::kinds {
namespace {

// The rlimit a command step runs with: pinned by the step, else inherited from wedge.
rlimit EffectiveRlimit(const scenario::Scenario& scenario, const std::string& command,
                       int resource) {
  for (const scenario::Step& step : scenario.steps) {
    const scenario::RunCommandStep* run = scenario::CommandOf(step);
    if (run == nullptr || run->name != command) continue;
    for (const auto& limit : run->confinement.rlimits) {
      if (limit.resource == resource) return rlimit{limit.soft, limit.hard};
    }
  }
  rlimit own{};
  ::getrlimit(resource, &own);
  return own;
}

std::string RlimitValue(rlim_t value) {
  return value == RLIM_INFINITY ? "unlimited" : std::to_string(value);
}

}  // namespace

report::PreconditionResult CheckBeforeRun(const scenario::Precondition& precondition,
                                          const scenario::RlimitSoftBelowHard& check,
                                          const scenario::Scenario& scenario) {
  report::PreconditionResult result;
  result.name = precondition.name;
  result.why = precondition.why;
  rlimit limit = EffectiveRlimit(scenario, precondition.command, check.resource);
  result.held = limit.rlim_cur < limit.rlim_max;
  result.detail = check.rlimit + " of " + precondition.command + " is " +
                  RlimitValue(limit.rlim_cur) + ":" + RlimitValue(limit.rlim_max) +
                  (result.held ? " (soft below hard)" : " (soft not below hard)");
  return result;
}

}  // namespace wedge::kinds
