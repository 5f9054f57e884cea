#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/kinds/run_command.h"
#include "wedge/kinds/watched_command.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {
namespace {

using scenario::Quote;
using scenario::reader::Fail;
using scenario::reader::Node;
using scenario::reader::Optional;
using scenario::reader::ReadArray;
using scenario::reader::ReadString;
using scenario::reader::Required;

// The binaries a run-command step may run, by their name in the stack's binaries table.
const std::vector<std::string_view> kCommandBinaries = {"docker", "dockerd", "containerd", "runc",
                                                        "containerd-shim-runc-v2"};
constexpr std::size_t kMaxArguments = 256;
constexpr std::size_t kMaxArgumentBytes = 4096;
constexpr std::size_t kMaxFilterLineBytes = 4096;

// The one placeholder run-command arguments may hold, replaced by the runner.
constexpr std::string_view kImagePlaceholder = "${image}";

// "${image}" is the one placeholder; anything else that looks like one is a typo.
void CheckPlaceholders(const Node& arg, const std::string& text,
                       const scenario::ReadContext& context) {
  const std::string only =
      "the only placeholder is \"${image}\", the stack's busybox image reference";
  for (std::size_t at = text.find("${"); at != std::string::npos; at = text.find("${", at)) {
    std::size_t close = text.find('}', at + 2);
    if (close == std::string::npos) {
      Fail(arg.pointer, "unterminated placeholder " + Quote(std::string_view(text).substr(at)) +
                            " (no closing \"}\"); " + only);
    }
    std::string_view placeholder = std::string_view(text).substr(at, close + 1 - at);
    if (placeholder != kImagePlaceholder) {
      Fail(arg.pointer, "unknown placeholder " + Quote(placeholder) + "; " + only);
    }
    if (!context.scenario.stack.busybox_image) {
      Fail(arg.pointer,
           "\"${image}\" is the stack's busybox image, and /stack/busybox_image is false: set "
           "it to true or drop the placeholder");
    }
    at = close + 1;
  }
}

// One SystemCallFilter= line: an optional "~", then "@group" and syscall names separated by
// spaces. Only the syntax: groups are resolved when the run builds the filter.
std::string ReadFilterLine(const Node& node) {
  std::string_view expected =
      "a SystemCallFilter= line of \"@group\" and syscall names separated by spaces, "
      "optionally starting with \"~\"";
  const std::string& line = ReadString(node, expected);
  auto refuse = [&](const std::string& why) {
    Fail(node.pointer, "expected " + std::string(expected) + ", got " +
                           scenario::reader::Describe(node.json()) + " (" + why + ")");
  };
  if (line.size() > kMaxFilterLineBytes) {
    refuse("longer than " + std::to_string(kMaxFilterLineBytes) + " bytes");
  }
  std::string_view rest = line;
  if (rest.starts_with('~')) rest.remove_prefix(1);
  std::size_t entries = 0;
  while (!rest.empty()) {
    std::size_t end = std::min(rest.find(' '), rest.size());
    std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (entry.empty()) continue;
    ++entries;
    if (entry.find(':') != std::string_view::npos) {
      refuse(Quote(entry) +
             ": the \":errno\" action is not supported, a refused syscall kills the process");
    }
    if (entry.starts_with('@') ? !scenario::reader::IsSyscallGroup(entry)
                               : !scenario::reader::IsSyscallName(entry)) {
      refuse(Quote(entry) + " is neither a \"@group\" nor a syscall name");
    }
  }
  if (entries == 0) refuse("no group or syscall");
  return line;
}

scenario::CommandConfinement ReadConfinement(const Node& node, scenario::ReadContext& context) {
  scenario::reader::ExpectObject(node, "a confinement object");
  scenario::reader::CheckKeys(
      node, {"SystemCallFilter", "SystemCallArchitectures", "NoNewPrivileges", "rlimits"});
  scenario::CommandConfinement confinement;
  if (auto filter = Optional(node, "SystemCallFilter")) {
    for (const Node& line :
         ReadArray(*filter, {"SystemCallFilter= lines", "SystemCallFilter= line", false})) {
      confinement.system_call_filter.push_back(ReadFilterLine(line));
    }
    if (context.seccomp_pointer.empty()) {
      context.seccomp_pointer = "the SystemCallFilter at " + filter->pointer;
    }
  }
  if (auto architectures = Optional(node, "SystemCallArchitectures")) {
    scenario::reader::ReadKeyword(*architectures, {"native"});
    confinement.native_architecture_only = true;
    if (context.seccomp_pointer.empty()) {
      context.seccomp_pointer = "the SystemCallArchitectures at " + architectures->pointer;
    }
  }
  // systemd implies NoNewPrivileges= for a filter in a unit without CAP_SYS_ADMIN.
  confinement.no_new_privileges = !confinement.system_call_filter.empty();
  if (auto no_new_privileges = Optional(node, "NoNewPrivileges")) {
    confinement.no_new_privileges = scenario::reader::ReadBool(*no_new_privileges);
  }
  if (auto rlimits = Optional(node, "rlimits"))
    confinement.rlimits = scenario::ReadRlimits(*rlimits);
  return confinement;
}

scenario::RunCommandStep ReadCommand(const Node& element, scenario::ReadContext& context) {
  scenario::RunCommandStep step;
  if (!context.scenario.stack.required) {
    Fail(element.pointer,
         "a \"run-command\" step runs against the private docker stack: add \"stack\": {} at "
         "the top level");
  }
  Node name = Required(element, "name");
  step.name = scenario::reader::ReadName(name, "a command name");
  if (step.name == scenario::kSandboxInit) {
    Fail(name.pointer, "\"sandbox-init\" is wedge's own init process; choose another name");
  }
  context.CheckStepNameUnused(name, step.name);
  step.binary = scenario::reader::ReadKeyword(Required(element, "binary"), kCommandBinaries);
  if (auto args = Optional(element, "args")) {
    std::vector<Node> elements = ReadArray(*args, {"argument strings", "argument", true});
    if (elements.size() > kMaxArguments) {
      Fail(args->pointer, "expected at most " + std::to_string(kMaxArguments) + " arguments, got " +
                              std::to_string(elements.size()));
    }
    std::string expected =
        "an argument string of at most " + std::to_string(kMaxArgumentBytes) + " bytes without NUL";
    for (const Node& arg : elements) {
      const std::string& text = ReadString(arg, expected);
      // argv strings end at the first NUL: the command would see another argument.
      if (text.size() > kMaxArgumentBytes || text.find('\0') != std::string::npos) {
        scenario::reader::FailExpected(arg, expected);
      }
      CheckPlaceholders(arg, text, context);
      step.args.push_back(text);
    }
  }
  if (auto confinement = Optional(element, "confinement")) {
    step.confinement = ReadConfinement(*confinement, context);
  }
  if (auto timeout = Optional(element, "timeout_ms")) {
    step.timeout_ms = static_cast<int>(scenario::reader::ReadInteger(*timeout, 100, 600000));
  }
  return step;
}

// `docker run ... --name NAME ...` (or --name=NAME) starts a container later steps may name.
void RecordContainerName(const scenario::RunCommandStep& step, scenario::ReadContext& context) {
  if (step.binary != "docker" || step.args.empty() || step.args.front() != "run") return;
  for (std::size_t i = 1; i < step.args.size(); ++i) {
    if (step.args[i] == "--name" && i + 1 < step.args.size()) {
      context.containers.emplace(step.args[i + 1], step.name);
    } else if (step.args[i].rfind("--name=", 0) == 0) {
      context.containers.emplace(step.args[i].substr(7), step.name);
    }
  }
}

}  // namespace

scenario::Step ReadRunCommandStep(const Node& element, scenario::ReadContext& context) {
  scenario::reader::CheckKeys(
      element, {"action", "name", "binary", "args", "confinement", "timeout_ms", "watch"},
      "for a \"run-command\" step");
  scenario::RunCommandStep command = ReadCommand(element, context);
  std::optional<scenario::CommandWatch> watch;
  if (auto watch_node = Optional(element, "watch")) {
    watch = ReadCommandWatch(*watch_node, command, context);
  }
  context.commands[command.name] = {element.pointer, context.scenario.steps.size()};
  RecordContainerName(command, context);
  if (watch) return scenario::WatchedCommandStep{std::move(command), std::move(*watch)};
  return command;
}

}  // namespace wedge::kinds
