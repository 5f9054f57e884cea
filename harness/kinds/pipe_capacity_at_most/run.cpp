#include "runner/command_watch.h"
#include "wedge/kinds/pipe_capacity_at_most.h"
#include "wedge/probe/pipe.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

Result<PreconditionAfter> ObserveBefore(const scenario::Precondition& precondition,
                                        const scenario::PipeCapacityAtMost& check,
                                        runner::RunContext& context) {
  WEDGE_ASSIGN_OR_RETURN(runner::ContainerProcesses container,
                         context.containers->Find(check.container));
  return PreconditionAfter([&precondition, check, container] {
    report::PreconditionResult result;
    result.name = precondition.name;
    result.why = precondition.why;
    Result<probe::HeldPipe> pipe = probe::MeasureHeldPipe(container.init, check.fd);
    if (!pipe.ok()) {
      result.detail = "fd " + std::to_string(check.fd) + " of container " + container.name +
                      "'s init unmeasurable: " + pipe.error().message();
      return result;
    }
    result.held = pipe->fill.capacity_bytes <= check.max_bytes;
    result.detail = "fd " + std::to_string(check.fd) + " of container " + container.name +
                    "'s init (pid " + std::to_string(container.init) + ", " + pipe->target +
                    ", created by its containerd-shim as every " + "exec's pipes are) holds " +
                    std::to_string(pipe->fill.capacity_bytes) + " bytes, " +
                    (result.held ? "at most " : "above ") + std::to_string(check.max_bytes) +
                    "; the shim (pid " + std::to_string(container.shim) +
                    "): " + runner::DescribePipeCreatorPrivilege(container.shim);
    return result;
  });
}

}  // namespace wedge::kinds
