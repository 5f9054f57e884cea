// What the readers of one scenario document share: the loader's document-level validation owns
// a ReadContext and hands it to the reader of each kind (wedge/kinds/NAME.h), which checks its
// element against what was read before it and records what later elements and the document's
// own checks need. Readers throw reader::Failure, like the field readers.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/scenario/field_reader.h"
#include "wedge/scenario/json_document.h"
#include "wedge/scenario/scenario.h"

namespace wedge::scenario {

// wedge's own init process in the sandbox: always a process label, never a step's name.
inline constexpr std::string_view kSandboxInit = "sandbox-init";

struct ReadContext {
  // Reads the document `document`, which must outlive the context.
  explicit ReadContext(const Json& document) : root{&document, ""} {}

  reader::Node root;
  Scenario scenario;  // everything read so far, in document order

  // From the sections before the steps.
  std::string namespaces_pointer;                       // "/isolation/namespaces", when listed
  std::string pids_max_pointer;                         // "/isolation/cgroup/pids.max", when set
  std::map<std::string, std::string> fixture_pointers;  // fixture name -> "/fixtures/NAME"

  // Names. Process labels, spawn names, run-command names, a watch's labels and the flap step's
  // name share one namespace: selectors and reports use them side by side.
  std::vector<std::string> process_labels = {std::string(kSandboxInit)};
  std::map<std::string, std::string> spawned_by;          // process name -> its spawn step
  std::map<std::string, std::string> fixture_spawned_by;  // fixture name -> its spawn step
  struct CommandStep {
    std::string pointer;  // "/steps/0"
    std::size_t index;    // in scenario.steps
  };
  std::map<std::string, CommandStep> commands;      // run-command name -> its step
  std::map<std::string, std::string> watch_labels;  // a watch's process name -> its pointer
  std::map<std::string, std::string> containers;    // `docker run --name` -> the step that runs it
  // Containers spawn steps start (a fixture in a container of its own) -> the spawn step.
  std::map<std::string, CommandStep> spawned_containers;

  // The steps.
  std::size_t step_count = 0;  // elements of /steps
  bool has_wait_for_stall = false;
  std::string watch_pointer;    // "/steps/1/watch", when there is one
  std::string flap_pointer;     // "/steps/1": the flap step, when there is one
  std::size_t flap_index = 0;   // its index in scenario.steps
  std::string seccomp_pointer;  // "the SystemCallFilter at /steps/0/...": needs seccomp

  // The preconditions.
  reader::Uniqueness precondition_names;
  // The first precondition the file itself decides and fails; the expectation must own it.
  std::string failed_precondition;  // its pointer; "" when every decided one holds
  std::string failed_precondition_name;
  std::string failed_precondition_detail;

  // Refuses `step_name` (read at `name`) when a spawn, run-command, watch label or the flap step
  // already uses it.
  void CheckStepNameUnused(const reader::Node& name, const std::string& step_name) const;
  // The container name `node` holds, which a "docker run --name" step before it started.
  std::string ReadContainer(const reader::Node& node) const;
  // The index in scenario.steps of the run-command step whose name `node` holds.
  std::size_t FindCommand(const reader::Node& node) const;
  // The process labels known so far, quoted and separated by ", ", for a message.
  std::string KnownLabels() const;
  // What every precondition kind reads first: its name, unique among the preconditions, and the
  // run-command step it is about (`command`), at `element`.
  Precondition ReadPreconditionHead(const reader::Node& element);
  // The container `node` names for an observed precondition about the step `command`: started by
  // a run-command step that runs before `command`.
  std::string ReadContainerStartedBefore(const reader::Node& node,
                                         const std::string& command) const;
};

// An object RLIMIT_* -> {"soft", "hard"}, in name order: the isolation's and a confinement's.
std::vector<Rlimit> ReadRlimits(const reader::Node& node);

}  // namespace wedge::scenario
