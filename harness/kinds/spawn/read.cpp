#include "wedge/kinds/spawn.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::Node;

scenario::SpawnStep ReadSpawnStep(const Node& element, scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"action", "name", "fixture"}, "for a \"spawn\" step");
  scenario::SpawnStep step;
  Node name = scenario::reader::Required(element, "name");
  step.name = scenario::reader::ReadName(name, "a process name");
  if (step.name == scenario::kSandboxInit) {
    Fail(name.pointer, "\"sandbox-init\" is wedge's own init process; choose another name");
  }
  if (auto it = context.spawned_by.find(step.name); it != context.spawned_by.end()) {
    Fail(name.pointer,
         "duplicate process name " + Quote(step.name) + " (already spawned by " + it->second + ")");
  }
  context.CheckStepNameUnused(name, step.name);
  Node fixture = scenario::reader::Required(element, "fixture");
  step.fixture = scenario::reader::ReadString(fixture, "a fixture name");
  if (context.scenario.FindFixture(step.fixture) == nullptr) {
    std::vector<std::string> defined;
    for (const scenario::Fixture& defined_fixture : context.scenario.fixtures) {
      defined.push_back(Quote(defined_fixture.name));
    }
    Fail(fixture.pointer, "no fixture named " + Quote(step.fixture) + " in /fixtures; defined: " +
                              (defined.empty() ? "(none)" : scenario::reader::Join(defined, ", ")));
  }
  if (auto it = context.fixture_spawned_by.find(step.fixture);
      it != context.fixture_spawned_by.end()) {
    Fail(fixture.pointer, "fixture " + Quote(step.fixture) + " is already spawned by " +
                              it->second + " (a fixture runs once)");
  }
  context.spawned_by[step.name] = element.pointer;
  context.fixture_spawned_by[step.fixture] = element.pointer;
  context.process_labels.push_back(step.name);
  return step;
}

}  // namespace wedge::kinds
