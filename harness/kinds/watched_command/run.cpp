#include "runner/command_watch.h"
#include "runner/observed_preconditions.h"
#include "wedge/kinds/run_command.h"
#include "wedge/kinds/watched_command.h"
#include "wedge/probe/signals.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {

Status Run(const scenario::WatchedCommandStep& step, runner::RunContext& context) {
  const scenario::RunCommandStep& command = step.command;
  const scenario::CommandWatch& watch = step.watch;
  WEDGE_ASSIGN_OR_RETURN(PreparedCommand prepared, PrepareCommand(command, context));
  WEDGE_ASSIGN_OR_RETURN(runner::ObservedPreconditions observed,
                         runner::ObservedPreconditions::Before(command.name, context));
  WEDGE_ASSIGN_OR_RETURN(runner::ContainerProcesses watched,
                         context.containers->Find(watch.container));
  WEDGE_ASSIGN_OR_RETURN(
      context.command_watch,
      runner::CommandWatch::Start(prepared.step, watch, prepared.binary, prepared.env,
                                  *context.journal, watched, context.run_dir,
                                  [&context](const std::string& line) { context.Say(line); }));
  context.clock.Begin("stall", "waiting for " + watch.comm + " to stall (settle " +
                                   std::to_string(watch.settle_ms) + " ms, poll every " +
                                   std::to_string(watch.poll_interval_ms) + " ms) or " +
                                   command.name + " to return");
  runner::CommandWatch::Outcome outcome = context.command_watch->WaitForStallOrReturn();
  // The hold (at start) and each pipe resized while watching.
  context.result.injections = context.command_watch->injections();
  if (outcome.interrupted) return Error("interrupted by " + probe::SignalName(sys::Interrupted()));
  if (outcome.stalled) {
    context.result.stall_detected_after_ms = outcome.after_ms;
    context.Say("stalled: " + watch.comm + " unchanged for " + std::to_string(watch.settle_ms) +
                " ms while " + command.name + " has not returned (" +
                std::to_string(outcome.after_ms) + " ms after it started)");
    context.clock.Begin("capture", "capturing the signature");
    context.snapshot = std::move(outcome.snapshot);
    for (const auto& [pid, label] : outcome.labels) context.labels[pid] = label;
    // What earlier steps labelled (a spawned container's init and fixture).
    for (auto& process : context.snapshot.processes) {
      if (auto label = context.labels.find(process.pid);
          process.label.empty() && label != context.labels.end()) {
        process.label = label->second;
      }
    }
    for (auto& line : observed.After(context.result.preconditions)) context.Say(line);
    signature::ObservedCommand running;
    running.command = command.name;
    running.binary = prepared.binary.string();
    running.argv.push_back(prepared.binary.string());
    for (const auto& arg : prepared.step.args) running.argv.push_back(arg);
    running.running_at_capture = true;
    running.duration_ms = outcome.after_ms;
    context.commands.push_back(std::move(running));
    context.trigger_end_ms = sys::MonotonicMillis();
    return OkStatus();
  }
  context.Say(command.name + " returned before anything stalled");
  signature::ObservedCommand ended = context.command_watch->Finish();
  for (auto& line : observed.After(context.result.preconditions)) context.Say(line);
  RecordEnded(std::move(ended), context);
  return OkStatus();
}

}  // namespace wedge::kinds
