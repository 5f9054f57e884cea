// The "run-command" step kind (RunCommandStep in wedge/scenario/scenario.h): how it is read and how
// a run performs it. Its schema is documented in docs/scenario-format.md. The watched variant
// (wedge/kinds/watched_command.h) shares its preparation and its record of how a command ended.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"

namespace wedge::kinds {

// Reads and validates a "run-command" step at `element`, watched (WatchedCommandStep) when it
// has a "watch"; records its name and the containers it starts in `context`.
scenario::Step ReadRunCommandStep(const scenario::reader::Node& element,
                                  scenario::ReadContext& context);

// Runs the command under its confinement against the private stack, waits for it, and
// records how it ended, with the preconditions observed around it.
Status Run(const scenario::RunCommandStep& step, runner::RunContext& context);

// A command ready to start: its binary (from --with or the defaults), its arguments with
// "${image}" replaced by the stack's busybox image, and the stack's client environment.
struct PreparedCommand {
  scenario::RunCommandStep step;
  std::filesystem::path binary;
  std::map<std::string, std::string> env;
};
Result<PreparedCommand> PrepareCommand(const scenario::RunCommandStep& step,
                                       runner::RunContext& context);
// Says how `command` ended and adds it to the run's observed commands.
void RecordEnded(signature::ObservedCommand command, runner::RunContext& context);

}  // namespace wedge::kinds
