#include "wedge/kinds/pipe_capacity_at_most.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::reader::Node;
using scenario::reader::ReadInteger;
using scenario::reader::Required;

scenario::Precondition ReadPipeCapacityAtMostPrecondition(const Node& element,
                                                          scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element,
                              {"name", "kind", "command", "container", "fd", "max_bytes", "why"},
                              "for a \"pipe-capacity-at-most\" precondition");
  scenario::Precondition precondition = context.ReadPreconditionHead(element);
  // Observed when the command has run, so the file cannot decide it.
  scenario::PipeCapacityAtMost pipe{
      context.ReadContainerStartedBefore(Required(element, "container"), precondition.command)};
  if (auto fd = scenario::reader::Optional(element, "fd")) {
    pipe.fd = static_cast<int>(ReadInteger(*fd, 0, 1023));
  }
  pipe.max_bytes = static_cast<int>(ReadInteger(Required(element, "max_bytes"), 4096, 1048576));
  precondition.check = std::move(pipe);
  precondition.why = scenario::reader::ReadText(Required(element, "why"));
  return precondition;
}

}  // namespace wedge::kinds
