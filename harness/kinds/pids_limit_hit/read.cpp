#include "wedge/kinds/pids_limit_hit.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::reader::Node;
using scenario::reader::Required;

scenario::Precondition ReadPidsLimitHitPrecondition(const Node& element,
                                                    scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"name", "kind", "command", "container", "why"},
                              "for a \"pids-limit-hit\" precondition");
  scenario::Precondition precondition = context.ReadPreconditionHead(element);
  // Observed while the scenario runs, so the file cannot decide it.
  precondition.check = scenario::PidsLimitHit{
      context.ReadContainerStartedBefore(Required(element, "container"), precondition.command)};
  precondition.why = scenario::reader::ReadText(Required(element, "why"));
  return precondition;
}

}  // namespace wedge::kinds
