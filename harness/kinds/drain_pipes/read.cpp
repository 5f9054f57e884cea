#include "wedge/kinds/drain_pipes.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

scenario::DrainPipes ReadDrainPipes(const scenario::reader::Node& element,
                                    scenario::ReadContext& context) {
  if (context.watch_pointer.empty()) {
    scenario::reader::Fail(element.pointer,
                           "\"drain-pipes\" drains the pipes of a watched run-command step's "
                           "processes, and /steps has no run-command step with a \"watch\"");
  }
  return scenario::DrainPipes{};
}

}  // namespace wedge::kinds
