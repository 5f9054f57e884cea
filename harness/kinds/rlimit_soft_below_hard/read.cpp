#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wedge/kinds/rlimit_soft_below_hard.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {
namespace {

std::string RlimitValueText(std::uint64_t value) {
  return value == static_cast<std::uint64_t>(RLIM_INFINITY) ? "unlimited" : std::to_string(value);
}

}  // namespace

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::Node;
using scenario::reader::Required;

scenario::Precondition ReadRlimitSoftBelowHardPrecondition(const Node& element,
                                                           scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"name", "kind", "command", "rlimit", "why"},
                              "for a \"rlimit-soft-below-hard\" precondition");
  scenario::Precondition precondition = context.ReadPreconditionHead(element);
  const scenario::ReadContext::CommandStep& command = context.commands.at(precondition.command);
  const scenario::RunCommandStep& step =
      *scenario::CommandOf(context.scenario.steps[command.index]);
  Node rlimit = Required(element, "rlimit");
  scenario::RlimitSoftBelowHard check;
  check.rlimit =
      scenario::reader::ReadString(rlimit, "a resource limit name such as \"RLIMIT_NOFILE\"");
  std::optional<int> resource =
      scenario::reader::Lookup(scenario::reader::ResourceLimits(), check.rlimit);
  if (!resource) {
    Fail(rlimit.pointer, "unknown resource limit " + Quote(check.rlimit) + "; expected one of " +
                             scenario::reader::RlimitNames());
  }
  check.resource = *resource;
  const std::vector<scenario::Rlimit>& pinned = step.confinement.rlimits;
  auto limit = std::find_if(pinned.begin(), pinned.end(), [&](const scenario::Rlimit& candidate) {
    return candidate.name == check.rlimit;
  });
  const std::string& step_pointer = command.pointer;
  if (limit == pinned.end()) {
    Fail(rlimit.pointer, "the run-command step " + Quote(step.name) + " (" + step_pointer +
                             ") does not pin " + check.rlimit + ": add it to " + step_pointer +
                             "/confinement/rlimits (a precondition on an inherited limit "
                             "would depend on the host)");
  }
  precondition.why = scenario::reader::ReadText(Required(element, "why"));
  // Decided by the file alone: a failing one must be owned by the expectation (ReadExpect).
  if (!(limit->soft < limit->hard) && context.failed_precondition.empty()) {
    context.failed_precondition = element.pointer;
    context.failed_precondition_name = precondition.name;
    context.failed_precondition_detail = check.rlimit + " of " + Quote(step.name) + " is " +
                                         RlimitValueText(limit->soft) + ":" +
                                         RlimitValueText(limit->hard) + ", soft not below hard";
  }
  precondition.check = std::move(check);
  return precondition;
}

}  // namespace wedge::kinds
