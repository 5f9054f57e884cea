#include "wedge/scenario/read_context.h"

#include <sys/resource.h>

#include <cstdint>
#include <limits>
#include <optional>

namespace wedge::scenario {
namespace {

using reader::ExpectObject;
using reader::Fail;
using reader::FailExpected;
using reader::Node;

std::uint64_t ReadRlimitValue(const Node& node) {
  if (node.json() == "unlimited") return static_cast<std::uint64_t>(RLIM_INFINITY);
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const Json& value = node.json();
  bool in_range = (value.is_number_unsigned() && value.get<std::uint64_t>() <= kMax) ||
                  (value.is_number_integer() && value.get<std::int64_t>() >= 0);
  if (!in_range) {
    FailExpected(node, "an integer from 0 to " + std::to_string(kMax) + " or \"unlimited\"");
  }
  return value.get<std::uint64_t>();
}

}  // namespace

void ReadContext::CheckStepNameUnused(const Node& name, const std::string& step_name) const {
  if (auto it = spawned_by.find(step_name); it != spawned_by.end()) {
    Fail(name.pointer, "duplicate name " + Quote(step_name) + " (already used by the spawn step " +
                           it->second + ")");
  }
  if (auto it = commands.find(step_name); it != commands.end()) {
    Fail(name.pointer, "duplicate name " + Quote(step_name) +
                           " (already used by the run-command step " + it->second.pointer + ")");
  }
  if (auto it = watch_labels.find(step_name); it != watch_labels.end()) {
    Fail(name.pointer, "duplicate name " + Quote(step_name) +
                           " (already used as the process name at " + it->second + ")");
  }
  if (!flap_pointer.empty() && StepName(scenario.steps[flap_index]) == step_name) {
    Fail(name.pointer, "duplicate name " + Quote(step_name) + " (already used by the flap step " +
                           flap_pointer + ")");
  }
}

std::string ReadContext::ReadContainer(const Node& node) const {
  const std::string& name = reader::ReadString(node, "a container name");
  if (containers.find(name) == containers.end()) {
    std::vector<std::string> known;
    for (const auto& [container, step] : containers) known.push_back(Quote(container));
    Fail(node.pointer, "no earlier run-command step starts a container named " + Quote(name) +
                           " (docker run --name " + name +
                           "); known: " + (known.empty() ? "(none)" : reader::Join(known, ", ")));
  }
  return name;
}

std::size_t ReadContext::FindCommand(const Node& node) const {
  const std::string& name = reader::ReadString(node, "the name of a run-command step");
  auto it = commands.find(name);
  if (it == commands.end()) {
    std::vector<std::string> defined;
    for (const auto& [command, step] : commands) defined.push_back(Quote(command));
    Fail(node.pointer, "no run-command step named " + Quote(name) + "; defined: " +
                           (defined.empty() ? "(none)" : reader::Join(defined, ", ")));
  }
  return it->second.index;
}

std::string ReadContext::KnownLabels() const {
  std::vector<std::string> quoted;
  for (const std::string& label : process_labels) quoted.push_back(Quote(label));
  return reader::Join(quoted, ", ");
}

Precondition ReadContext::ReadPreconditionHead(const Node& element) {
  Precondition precondition;
  Node name = reader::Required(element, "name");
  precondition.name = reader::ReadName(name, "a precondition name");
  precondition_names.Add(name, precondition.name, "precondition");
  Node command = reader::Required(element, "command");
  precondition.command = CommandOf(scenario.steps[FindCommand(command)])->name;
  return precondition;
}

std::string ReadContext::ReadContainerStartedBefore(const Node& node,
                                                    const std::string& command) const {
  const std::string container = ReadContainer(node);
  const std::string& started_by = containers.at(container);
  auto spawned = spawned_containers.find(container);
  const std::size_t started_at =
      spawned != spawned_containers.end() ? spawned->second.index : commands.at(started_by).index;
  if (started_at >= commands.at(command).index) {
    Fail(node.pointer, "the container " + Quote(container) + " is started by " + Quote(started_by) +
                           ", which does not run before " + Quote(command));
  }
  return container;
}

std::vector<Rlimit> ReadRlimits(const Node& node) {
  ExpectObject(node);
  std::vector<Rlimit> rlimits;
  for (const auto& [name, value] : node.json().items()) {
    Node entry = node.Child(name);
    std::optional<int> resource = reader::Lookup(reader::ResourceLimits(), name);
    if (!resource) {
      Fail(entry.pointer,
           "unknown resource limit " + Quote(name) + "; expected one of " + reader::RlimitNames());
    }
    ExpectObject(entry, "an object {\"soft\": N, \"hard\": N}");
    reader::CheckKeys(entry, {"soft", "hard"});
    Rlimit rlimit{name, *resource, 0, 0};
    Node soft = reader::Required(entry, "soft");
    Node hard = reader::Required(entry, "hard");
    rlimit.soft = ReadRlimitValue(soft);
    rlimit.hard = ReadRlimitValue(hard);
    if (rlimit.soft > rlimit.hard) {
      Fail(soft.pointer,
           "soft limit " + soft.json().dump() + " is above the hard limit " + hard.json().dump());
    }
    rlimits.push_back(std::move(rlimit));
  }
  return rlimits;
}

}  // namespace wedge::scenario
