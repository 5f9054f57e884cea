#include "wedge/kinds/wait_for_stall.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::reader::Fail;
using scenario::reader::Node;

scenario::WaitForStallStep ReadWaitForStallStep(const Node& element,
                                                scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"action"}, "for a \"wait-for-stall\" step");
  if (context.scenario.steps.size() + 1 != context.step_count) {
    Fail(element.pointer, "\"wait-for-stall\" must be the last step (at most one per scenario)");
  }
  // A watched run-command step comes first (wait-for-stall is last), so the rule is checked
  // here, at the second capture.
  if (!context.watch_pointer.empty()) {
    Fail(element.pointer,
         "a scenario captures tasks either by \"wait-for-stall\" or by one watched "
         "run-command step, not both (the watch is " +
             context.watch_pointer + ")");
  }
  context.has_wait_for_stall = true;
  return scenario::WaitForStallStep{};
}

}  // namespace wedge::kinds
