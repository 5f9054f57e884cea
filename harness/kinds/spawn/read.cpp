#include <algorithm>
#include <cctype>

#include "wedge/kinds/spawn.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::Node;

namespace {

// docker's rule for container names, [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 63 bytes here.
bool IsContainerName(const std::string& name) {
  if (name.size() < 2 || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

scenario::ContainerSpawn ReadContainerSpawn(const Node& node, const scenario::SpawnStep& step,
                                            scenario::ReadContext& context) {
  scenario::reader::ExpectObject(node, "a container object");
  scenario::reader::CheckKeys(node, {"name", "init_label"});
  if (!context.scenario.stack.fresh) {
    Fail(node.pointer,
         "a fixture in a container may wedge it until recovery: set /stack/fresh to true (a "
         "stack of the scenario's own)");
  }
  scenario::ContainerSpawn container;
  Node name = scenario::reader::Required(node, "name");
  std::string_view expected =
      "a container name matching [a-zA-Z0-9][a-zA-Z0-9_.-]+ (2 to 63 bytes)";
  container.name = scenario::reader::ReadString(name, expected);
  if (!IsContainerName(container.name)) scenario::reader::FailExpected(name, expected);
  if (auto it = context.containers.find(container.name); it != context.containers.end()) {
    Fail(name.pointer,
         "the container " + Quote(container.name) + " is already started by " + Quote(it->second));
  }
  Node init = scenario::reader::Required(node, "init_label");
  container.init_label = scenario::reader::ReadName(init, "a process name");
  if (container.init_label == scenario::kSandboxInit || container.init_label == step.name) {
    Fail(init.pointer,
         "the process name " + Quote(container.init_label) + " is already used (by " +
             (container.init_label == step.name ? "this spawn step" : "wedge's own sandbox init") +
             ")");
  }
  context.CheckStepNameUnused(init, container.init_label);
  context.spawned_by[container.init_label] = node.pointer;
  context.process_labels.push_back(container.init_label);
  context.containers.emplace(container.name, step.name);
  context.spawned_containers.emplace(
      container.name,
      scenario::ReadContext::CommandStep{node.pointer, context.scenario.steps.size()});
  return container;
}

}  // namespace

scenario::SpawnStep ReadSpawnStep(const Node& element, scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"action", "name", "fixture", "container"},
                              "for a \"spawn\" step");
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
  if (auto container = scenario::reader::Optional(element, "container")) {
    step.container = ReadContainerSpawn(*container, step, context);
  }
  return step;
}

}  // namespace wedge::kinds
