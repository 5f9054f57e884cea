#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wedge/kinds/watched_command.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::FailExpected;
using scenario::reader::Node;
using scenario::reader::Optional;
using scenario::reader::ReadInteger;
using scenario::reader::Required;

scenario::CommandWatch ReadCommandWatch(const Node& node, const scenario::RunCommandStep& step,
                                        scenario::ReadContext& context) {
  scenario::reader::ExpectObject(node, "a watch object");
  scenario::reader::CheckKeys(
      node, {"container", "comm", "label", "parent_label", "stalled_states", "poll_interval_ms",
             "settle_ms", "hold_syscall", "hold_ms", "stderr_pipe_bytes"});
  if (!context.scenario.stack.fresh) {
    Fail(node.pointer,
         "a watched command may leave its container wedged until recovery: set "
         "/stack/fresh to true (a stack of the scenario's own)");
  }
  if (!context.watch_pointer.empty()) {
    Fail(node.pointer, "at most one watched run-command step per scenario (the first is " +
                           context.watch_pointer +
                           "): its capture is the one the tasks are matched "
                           "against");
  }
  // Not together with a "wait-for-stall" step: that is checked at the wait-for-stall step,
  // which is the last step, so always after this one.
  context.watch_pointer = node.pointer;
  scenario::CommandWatch watch;
  watch.container = context.ReadContainer(Required(node, "container"));
  Node comm = Required(node, "comm");
  std::string_view expected_comm = "a comm of 1 to 15 bytes (the kernel keeps 15)";
  watch.comm = scenario::reader::ReadString(comm, expected_comm);
  if (watch.comm.empty() || watch.comm.size() > 15 ||
      scenario::reader::HasControlCharacter(watch.comm)) {
    FailExpected(comm, expected_comm);
  }
  auto read_label = [&](const Node& label_node) {
    std::string label = scenario::reader::ReadName(label_node, "a process name");
    // Process names and step names share one namespace: selectors and reports use both.
    const std::string used = "the process name " + Quote(label) + " is already used ";
    if (label == scenario::kSandboxInit) {
      Fail(label_node.pointer, Quote(label) + " is wedge's own init process; choose another name");
    }
    if (label == step.name) Fail(label_node.pointer, used + "by this run-command step's name");
    if (auto it = context.commands.find(label); it != context.commands.end()) {
      Fail(label_node.pointer, used + "by the run-command step " + it->second.pointer);
    }
    if (auto it = context.watch_labels.find(label); it != context.watch_labels.end()) {
      Fail(label_node.pointer, used + "at " + it->second);
    }
    if (auto it = context.spawned_by.find(label); it != context.spawned_by.end()) {
      Fail(label_node.pointer, used + "by the spawn step " + it->second);
    }
    if (!context.flap_pointer.empty() &&
        scenario::StepName(context.scenario.steps[context.flap_index]) == label) {
      Fail(label_node.pointer, used + "by the flap step " + context.flap_pointer);
    }
    context.process_labels.push_back(label);
    context.watch_labels.emplace(label, label_node.pointer);
    return label;
  };
  // A container a spawn step started holds wedge's own fixture, whose processes the spawn
  // labelled; the capture is then the container's whole tree. Any other container's processes
  // are named here.
  const bool spawned = context.spawned_containers.contains(watch.container);
  if (spawned) {
    for (const char* key : {"label", "parent_label"}) {
      if (auto named = Optional(node, key)) {
        Fail(named->pointer, "the container " + Quote(watch.container) +
                                 " is started by the spawn step " +
                                 context.spawned_containers.at(watch.container).pointer +
                                 ", which names its processes: the capture is its whole tree");
      }
    }
  } else {
    watch.label = read_label(Required(node, "label"));
    if (auto parent = Optional(node, "parent_label")) watch.parent_label = read_label(*parent);
  }
  if (auto states = Optional(node, "stalled_states")) {
    watch.stalled_states = scenario::reader::ReadStateLetters(*states);
  }
  if (auto poll = Optional(node, "poll_interval_ms")) {
    watch.poll_interval_ms = static_cast<int>(ReadInteger(*poll, 1, 1000));
  }
  if (auto settle = Optional(node, "settle_ms")) {
    watch.settle_ms = static_cast<int>(ReadInteger(*settle, 10, 60000));
  }
  if (watch.settle_ms < watch.poll_interval_ms) {
    Fail(node.pointer + "/settle_ms", "settle_ms (" + std::to_string(watch.settle_ms) +
                                          ") must be at least poll_interval_ms (" +
                                          std::to_string(watch.poll_interval_ms) + ")");
  }
  if (watch.settle_ms >= step.timeout_ms) {
    Fail(node.pointer + "/settle_ms", "settle_ms (" + std::to_string(watch.settle_ms) +
                                          ") must be below the step's timeout_ms (" +
                                          std::to_string(step.timeout_ms) +
                                          "): a stall is observed while the command still runs");
  }
  std::optional<Node> hold = Optional(node, "hold_syscall");
  std::optional<Node> hold_ms = Optional(node, "hold_ms");
  if (hold) {
    std::string_view expected = "a syscall name such as \"clone3\"";
    watch.hold_syscall = scenario::reader::ReadString(*hold, expected);
    if (!scenario::reader::IsSyscallName(watch.hold_syscall)) FailExpected(*hold, expected);
    if (!hold_ms) {
      Fail(node.pointer, "\"hold_syscall\" needs \"hold_ms\": how long each entry is held");
    }
    watch.hold_ms = static_cast<int>(ReadInteger(*hold_ms, 1, 10000));
  } else if (hold_ms) {
    Fail(hold_ms->pointer, "\"hold_ms\" needs \"hold_syscall\": the syscall to hold");
  }
  if (auto pipe = Optional(node, "stderr_pipe_bytes")) {
    std::int64_t bytes = ReadInteger(*pipe, 4096, 1048576);
    if ((bytes & (bytes - 1)) != 0) {
      FailExpected(*pipe,
                   "a power of two from 4096 to 1048576 (pipe capacities are whole "
                   "pages, rounded up to a power of two)");
    }
    watch.stderr_pipe_bytes = static_cast<int>(bytes);
  }
  return watch;
}

}  // namespace wedge::kinds
