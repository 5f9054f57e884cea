#include <algorithm>
#include <string_view>
#include <vector>

#include "wedge/kinds/flap.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {
namespace {

// What a flap step can take away.
const std::vector<std::string_view> kFlapTargets = {"containerd"};

}  // namespace

using scenario::reader::Fail;
using scenario::reader::Node;
using scenario::reader::Optional;
using scenario::reader::ReadInteger;
using scenario::reader::Required;

scenario::FlapStep ReadFlapStep(const Node& element, scenario::ReadContext& context) {
  scenario::reader::CheckKeys(
      element,
      {"action", "name", "target", "how", "cycles", "down_ms", "up_ms", "recovery_timeout_ms"},
      "for a \"flap\" step");
  scenario::FlapStep step;
  if (!context.flap_pointer.empty()) {
    Fail(element.pointer, "at most one \"flap\" step per scenario (the first is " +
                              context.flap_pointer +
                              "): the syscall probe measures one outage window per run");
  }
  if (!context.scenario.stack.required) {
    Fail(element.pointer,
         "a \"flap\" step takes the private docker stack's containerd away: add \"stack\": "
         "{\"fresh\": true} at the top level");
  }
  if (!context.scenario.stack.fresh) {
    Fail(context.root.Child("stack").Has("fresh") ? "/stack/fresh" : "/stack",
         "the \"flap\" step at " + element.pointer +
             " breaks the private docker stack on purpose: set \"fresh\": true (a stack of "
             "the scenario's own, never shared with other scenarios)");
  }
  Node name = Required(element, "name");
  step.name = scenario::reader::ReadName(name, "a step name");
  if (step.name == scenario::kSandboxInit) {
    Fail(name.pointer, "\"sandbox-init\" is wedge's own init process; choose another name");
  }
  context.CheckStepNameUnused(name, step.name);
  Node target = Required(element, "target");
  const std::string_view expected_target =
      "\"containerd\" (the only component a flap step can take away)";
  if (!target.json().is_string() ||
      std::find(kFlapTargets.begin(), kFlapTargets.end(), target.json().get<std::string>()) ==
          kFlapTargets.end()) {
    scenario::reader::FailExpected(target, expected_target);
  }
  step.target = target.json().get<std::string>();
  using How = scenario::FlapSpec::How;
  static const scenario::reader::NameTable<How> kHows = {
      {"sigkill", How::kSigkill},
      {"sigstop", How::kSigstop},
      {"unlink-socket", How::kUnlinkSocket},
      {"restart", How::kRestart},
  };
  scenario::FlapSpec& flap = step.flap;
  flap.how = scenario::reader::ReadChoice(Required(element, "how"), kHows);
  if (auto cycles = Optional(element, "cycles")) {
    flap.cycles = static_cast<int>(ReadInteger(*cycles, 1, 100));
  }
  if (auto down = Optional(element, "down_ms")) {
    flap.down_ms = static_cast<int>(ReadInteger(*down, 100, 600000));
  }
  if (auto up = Optional(element, "up_ms")) {
    flap.up_ms = static_cast<int>(ReadInteger(*up, 0, 600000));
  }
  if (auto recovery = Optional(element, "recovery_timeout_ms")) {
    flap.recovery_timeout_ms = static_cast<int>(ReadInteger(*recovery, 1000, 600000));
  }
  context.flap_pointer = element.pointer;
  context.flap_index = context.scenario.steps.size();
  return step;
}

}  // namespace wedge::kinds
