#include <signal.h>

#include "wedge/kinds/kill.h"
#include "wedge/probe/signals.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {

Status Run(const scenario::KillStep& step, runner::RunContext& context) {
  auto target = context.pids_by_label.find(step.target);
  if (target == context.pids_by_label.end()) return Error("no process named " + step.target);
  if (target->second == context.sandbox->init_pid()) {
    WEDGE_RETURN_IF_ERROR(context.sandbox->init().SendSignal(step.signal));
  } else if (::kill(target->second, step.signal) != 0) {
    return ErrnoError("kill(" + std::to_string(target->second) + ", " +
                      probe::SignalName(step.signal) + ")");
  }
  context.Say("sent " + probe::SignalName(step.signal) + " to " + step.target + " (pid " +
              std::to_string(target->second) + ")");
  context.trigger_end_ms = sys::MonotonicMillis();
  return OkStatus();
}

}  // namespace wedge::kinds
