#include "wedge/kinds/fuse_daemon.h"
#include "wedge/kinds/spawn.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

Status Run(const scenario::SpawnStep& step, runner::RunContext& context) {
  const scenario::Fixture* fixture = context.scenario.FindFixture(step.fixture);
  if (fixture == nullptr) return Error("no fixture named " + step.fixture);
  const std::vector<std::string> argv =
      std::visit([&](const auto& kind) { return Argv(kind, context); }, fixture->kind);
  WEDGE_ASSIGN_OR_RETURN(sys::SpawnedProcess spawned,
                         context.sandbox->Spawn(step.name, argv, 10000));
  context.labels[spawned.pid] = spawned.label;
  context.pids_by_label[spawned.label] = spawned.pid;
  context.Say("started " + step.name + " (" + fixture->name + ") as pid " +
              std::to_string(spawned.pid) + ": " + spawned.ready_line);
  return OkStatus();
}

}  // namespace wedge::kinds
