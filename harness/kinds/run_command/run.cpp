#include "runner/command_step.h"
#include "runner/command_watch.h"
#include "runner/observed_preconditions.h"
#include "wedge/kinds/run_command.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {

Result<PreparedCommand> PrepareCommand(const scenario::RunCommandStep& step,
                                       runner::RunContext& context) {
  if (context.docker_stack == nullptr) {
    return Error(step.name + " needs the private docker stack");
  }
  PreparedCommand prepared;
  // The CLI runs on the host: a release root's from its place in the root.
  prepared.binary = context.options.binaries.HostPath(step.binary);
  prepared.step = step;
  for (auto& arg : prepared.step.args) {
    for (size_t at; (at = arg.find("${image}")) != std::string::npos;) {
      WEDGE_ASSIGN_OR_RETURN(std::string image, context.docker_stack->EnsureBusyboxImage());
      arg.replace(at, 8, image);
    }
  }
  prepared.env = context.docker_stack->ClientEnvironment();
  prepared.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  context.Say("running " + step.name + ": " + prepared.binary.string() + " " +
              (step.args.empty() ? "" : step.args.front() + " ..."));
  if (!context.containers) {
    context.containers = std::make_unique<runner::Containers>(*context.docker_stack);
  }
  return prepared;
}

void RecordEnded(signature::ObservedCommand command, runner::RunContext& context) {
  std::string ended = command.timed_out ? "timed out"
                      : command.killed_by
                          ? "killed by " + *command.killed_by
                          : "exit " + std::to_string(command.exit_code.value_or(-1));
  if (command.refused_syscall) {
    ended += " (seccomp refused " + *command.refused_syscall + ", nr " +
             std::to_string(command.refused_syscall_number.value_or(-1)) + ")";
  }
  context.Say(command.command + " ended: " + ended + " after " +
              std::to_string(command.duration_ms) + " ms");
  context.commands.push_back(std::move(command));
  context.trigger_end_ms = sys::MonotonicMillis();
}

Status Run(const scenario::RunCommandStep& step, runner::RunContext& context) {
  WEDGE_ASSIGN_OR_RETURN(PreparedCommand prepared, PrepareCommand(step, context));
  WEDGE_ASSIGN_OR_RETURN(runner::ObservedPreconditions observed,
                         runner::ObservedPreconditions::Before(step.name, context));
  WEDGE_ASSIGN_OR_RETURN(
      signature::ObservedCommand command,
      runner::RunCommandStep(prepared.step, prepared.binary, prepared.env, *context.journal));
  for (auto& line : observed.After(context.result.preconditions)) context.Say(line);
  RecordEnded(std::move(command), context);
  return OkStatus();
}

}  // namespace wedge::kinds
