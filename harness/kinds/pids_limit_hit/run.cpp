#include "runner/command_watch.h"
#include "wedge/kinds/pids_limit_hit.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/files.h"

namespace wedge::kinds {

Result<PreconditionAfter> ObserveBefore(const scenario::Precondition& precondition,
                                        const scenario::PidsLimitHit& check,
                                        runner::RunContext& context) {
  WEDGE_ASSIGN_OR_RETURN(runner::ContainerProcesses container,
                         context.containers->Find(check.container));
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t max_before,
                         runner::ReadPidsEventsMax(container.pids_cgroup));
  return PreconditionAfter([&precondition, container, max_before] {
    report::PreconditionResult result;
    result.name = precondition.name;
    result.why = precondition.why;
    Result<std::uint64_t> after = runner::ReadPidsEventsMax(container.pids_cgroup);
    Result<std::string> limit = sys::ReadFile(container.pids_cgroup / "pids.max");
    const std::string limit_text = limit.ok() ? sys::TrimTrailing(*limit) : "(unreadable)";
    if (!after.ok()) {
      result.detail = "pids.events of " + container.pids_cgroup.string() +
                      " unreadable: " + after.error().message();
      return result;
    }
    const std::uint64_t delta = *after - max_before;
    result.held = delta > 0;
    result.detail = "pids.events \"max\" of container " + container.name + " (pids.max " +
                    limit_text + ") went from " + std::to_string(max_before) + " to " +
                    std::to_string(*after) + " while " + precondition.command + " ran: " +
                    (result.held ? std::to_string(delta) + " fork(s) or clone(s) refused"
                                 : "no fork or clone was refused");
    return result;
  });
}

}  // namespace wedge::kinds
