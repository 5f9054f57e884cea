#include "wedge/kinds/kill.h"
#include "wedge/probe/signals.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::Node;

scenario::KillStep ReadKillStep(const Node& element, scenario::ReadContext& context) {
  scenario::reader::CheckKeys(element, {"action", "target", "signal"}, "for a \"kill\" step");
  scenario::KillStep step;
  Node target = scenario::reader::Required(element, "target");
  step.target = scenario::reader::ReadString(target, "a process name");
  if (step.target == scenario::kSandboxInit) {
    if (!context.scenario.isolation.pid_namespace) {
      Fail(target.pointer,
           "killing \"sandbox-init\" needs the pid namespace: add \"pid\" to " +
               (context.namespaces_pointer.empty() ? std::string("/isolation/namespaces")
                                                   : context.namespaces_pointer));
    }
  } else if (auto command = context.commands.find(step.target); command != context.commands.end()) {
    Fail(target.pointer, Quote(step.target) + " is the run-command step " +
                             command->second.pointer +
                             ", not a process: a command has ended before the next step "
                             "starts, so it cannot be killed");
  } else if (context.spawned_by.find(step.target) == context.spawned_by.end()) {
    Fail(target.pointer, "no process named " + Quote(step.target) +
                             " is spawned before this step; known: " + context.KnownLabels());
  }
  step.signal = *probe::SignalNumber(
      scenario::reader::ReadSignalName(scenario::reader::Required(element, "signal")));
  return step;
}

}  // namespace wedge::kinds
