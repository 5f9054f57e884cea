// Parses and validates scenario files: docs/scenario-format.md is the schema this enforces.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "wedge/base/debian_releases.h"
#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"
#include "wedge/kinds/kinds.h"
#include "wedge/probe/task.h"
#include "wedge/scenario/field_reader.h"
#include "wedge/scenario/json_document.h"
#include "wedge/scenario/read_context.h"
#include "wedge/scenario/scenario.h"

namespace wedge::scenario {
namespace {

using reader::CheckKeys;
using reader::ExpectObject;
using reader::Fail;
using reader::FailExpected;
using reader::Failure;
using reader::HasControlCharacter;
using reader::IsCIdentifier;
using reader::IsLowerHex;
using reader::IsName;
using reader::IsSyscallName;
using reader::Join;
using reader::kNamePattern;
using reader::NameTable;
using reader::Node;
using reader::Optional;
using reader::ReadArray;
using reader::ReadBool;
using reader::ReadChoice;
using reader::ReadInteger;
using reader::ReadKeyword;
using reader::ReadName;
using reader::ReadSignalName;
using reader::ReadString;
using reader::ReadText;
using reader::Required;
using reader::Uniqueness;

const NameTable<Verdict>& Verdicts() {
  static const NameTable<Verdict> kVerdicts = {
      {VerdictName(Verdict::kReproduced), Verdict::kReproduced},
      {VerdictName(Verdict::kNotReproduced), Verdict::kNotReproduced},
      {VerdictName(Verdict::kUnexplained), Verdict::kUnexplained},
  };
  return kVerdicts;
}

const NameTable<Requirement>& Requirements() {
  static const NameTable<Requirement> kRequirements = {
      {RequirementName(Requirement::kRoot), Requirement::kRoot},
      {RequirementName(Requirement::kFuseDevice), Requirement::kFuseDevice},
      {RequirementName(Requirement::kFusectl), Requirement::kFusectl},
      {RequirementName(Requirement::kPidsCgroup), Requirement::kPidsCgroup},
      {RequirementName(Requirement::kKernelStacks), Requirement::kKernelStacks},
      {RequirementName(Requirement::kSeccomp), Requirement::kSeccomp},
  };
  return kRequirements;
}

const std::vector<std::string> kTopLevelKeys = {
    "wedge_scenario", "name",  "summary",       "references", "requires", "isolation",  "fixtures",
    "stack",          "steps", "preconditions", "stall",      "recovery", "signatures", "expect",
};

// The series the syscall probe of a flap step measures.
const std::vector<std::string_view> kRateMetrics = {
    "connect",       "connect_errors",      "socket", "close", "threads",
    "futex_threads", "containerd_log_lines"};
const std::vector<std::string_view> kRateWindows = {"outage", "after"};
const std::vector<std::string_view> kRateAggregates = {"each_second", "mean"};

// A step kind, by its "action": its reader (wedge/kinds/NAME.h), and where what it does is
// observed, for the rules that span the steps (ReadSteps).
struct StepKind {
  Step (*read)(const Node& element, ReadContext& context);
  bool observed_in_sandbox;  // in the sandbox's /proc, which a flap scenario never captures
  bool observed_by_stall;    // only by the wait-for-stall capture, which it then needs
};

template <auto read_kind>
Step ReadStepAs(const Node& element, ReadContext& context) {
  return Step(read_kind(element, context));
}

const NameTable<StepKind>& StepKinds() {
  static const NameTable<StepKind> kKinds = {
      {"spawn", {&ReadStepAs<&kinds::ReadSpawnStep>, true, true}},
      {"kill", {&ReadStepAs<&kinds::ReadKillStep>, true, true}},
      {"wait-for-stall", {&ReadStepAs<&kinds::ReadWaitForStallStep>, true, false}},
      {"run-command", {&ReadStepAs<&kinds::ReadRunCommandStep>, false, false}},
      {"flap", {&ReadStepAs<&kinds::ReadFlapStep>, false, false}},
  };
  return kKinds;
}

// The precondition kinds, by their "kind": each one's reader (wedge/kinds/NAME.h).
using ReadPrecondition = Precondition (*)(const Node& element, ReadContext& context);
const NameTable<ReadPrecondition>& PreconditionKinds() {
  static const NameTable<ReadPrecondition> kKinds = {
      {"rlimit-soft-below-hard", &kinds::ReadRlimitSoftBelowHardPrecondition},
      {"pids-limit-hit", &kinds::ReadPidsLimitHitPrecondition},
      {"pipe-capacity-at-most", &kinds::ReadPipeCapacityAtMostPrecondition},
  };
  return kKinds;
}

// The recovery actions, by their name: each one's reader (wedge/kinds/NAME.h).
using ReadRecoveryStep = RecoveryStep (*)(const Node& element, ReadContext& context);
template <auto read_kind>
RecoveryStep ReadRecoveryAs(const Node& element, ReadContext& context) {
  return RecoveryStep(read_kind(element, context));
}
const NameTable<ReadRecoveryStep>& RecoveryKinds() {
  static const NameTable<ReadRecoveryStep> kKinds = {
      {"abort-fuse-connections", &ReadRecoveryAs<&kinds::ReadAbortFuseConnections>},
      {"kill-sandbox", &ReadRecoveryAs<&kinds::ReadKillSandbox>},
      {"drain-pipes", &ReadRecoveryAs<&kinds::ReadDrainPipes>},
  };
  return kKinds;
}

// The fixture kinds, by their "kind": each one's reader (wedge/kinds/NAME.h).
using FixtureKind = decltype(Fixture::kind);
using ReadFixtureKind = FixtureKind (*)(const Node& entry, ReadContext& context);
template <auto read_kind>
FixtureKind ReadFixtureAs(const Node& entry, ReadContext& context) {
  return FixtureKind(read_kind(entry, context));
}
const NameTable<ReadFixtureKind>& FixtureKinds() {
  static const NameTable<ReadFixtureKind> kKinds = {
      {"fuse-daemon", &ReadFixtureAs<&kinds::ReadFuseDaemonFixture>},
  };
  return kKinds;
}

class Validator {
 public:
  explicit Validator(const Json& document) : context_(document) {}

  Scenario Run() {
    if (!context_.root.json().is_object())
      FailExpected(context_.root, "the scenario to be a JSON object");
    ReadVersion();
    CheckKeys(context_.root, kTopLevelKeys);
    scenario_.name = ReadName(Required(context_.root, "name"), "a scenario name");
    scenario_.summary = ReadText(Required(context_.root, "summary"));
    if (auto node = Optional(context_.root, "references")) ReadReferences(*node);
    if (auto node = Optional(context_.root, "requires")) ReadRequirements(*node);
    if (auto node = Optional(context_.root, "isolation")) ReadIsolation(*node);
    if (auto node = Optional(context_.root, "fixtures")) ReadFixtures(*node);
    if (auto node = Optional(context_.root, "stack")) ReadStack(*node);
    ReadSteps(Required(context_.root, "steps"));
    if (auto node = Optional(context_.root, "preconditions")) ReadPreconditions(*node);
    if (auto node = Optional(context_.root, "stall")) {
      if (!context_.has_wait_for_stall) {
        Fail(node->pointer,
             "\"stall\" configures the \"wait-for-stall\" step, and /steps has none: remove it");
      }
      ReadStall(*node);
    }
    if (auto node = Optional(context_.root, "recovery")) ReadRecovery(*node);
    ReadSignatures(Required(context_.root, "signatures"));
    ReadExpect(Required(context_.root, "expect"));
    CheckFixturesSpawned();
    CheckStackUsed();
    CheckRecovery();
    CheckRequirements();
    return std::move(scenario_);
  }

 private:
  void ReadVersion() {
    Node node = Required(context_.root, "wedge_scenario");
    const Json& value = node.json();
    if (value.is_number_integer() && value != 1) {
      Fail(node.pointer,
           "unsupported format version " + value.dump() + ": this wedge reads version 1");
    }
    if (!value.is_number_integer()) FailExpected(node, "the format version 1");
  }

  void ReadReferences(const Node& node) {
    static const std::vector<std::string_view> kKinds = {"commit", "issue", "pull-request",
                                                         "report", "mailing-list"};
    for (const Node& element : ReadArray(node, {"reference objects", "reference", true})) {
      ExpectObject(element, "a reference object");
      CheckKeys(element, {"kind", "id", "url", "note"});
      Reference reference;
      reference.kind = ReadKeyword(Required(element, "kind"), kKinds);
      Node id = Required(element, "id");
      reference.id = ReadText(id);
      if (reference.kind == "commit" &&
          (reference.id.size() < 7 || reference.id.size() > 40 || !IsLowerHex(reference.id))) {
        FailExpected(id, "a commit id of 7 to 40 lower-case hex digits");
      }
      if (auto url = Optional(element, "url")) {
        std::string_view expected = "an http:// or https:// URL";
        reference.url = ReadString(*url, expected);
        bool scheme = reference.url.starts_with("https://") || reference.url.starts_with("http://");
        bool blank = std::any_of(reference.url.begin(), reference.url.end(), [](char c) {
          return c == ' ' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
        });
        if (!scheme || blank || reference.url.size() <= std::string_view("https://").size()) {
          FailExpected(*url, expected);
        }
      }
      if (auto note = Optional(element, "note")) reference.note = ReadText(*note);
      scenario_.references.push_back(std::move(reference));
    }
  }

  void ReadRequirements(const Node& node) {
    Uniqueness unique;
    for (const Node& element : ReadArray(node, {"requirement names", "requirement", true})) {
      Requirement requirement = ReadChoice(element, Requirements());
      unique.Add(element, std::string(RequirementName(requirement)));
      scenario_.requires_.push_back(requirement);
    }
  }

  void ReadIsolation(const Node& node) {
    ExpectObject(node);
    CheckKeys(node, {"namespaces", "cgroup", "sysctls", "rlimits"});
    Isolation& isolation = scenario_.isolation;
    if (auto namespaces = Optional(node, "namespaces")) {
      static const NameTable<bool Isolation::*> kNamespaces = {
          {"user", &Isolation::user_namespace},
          {"pid", &Isolation::pid_namespace},
          {"mount", &Isolation::mount_namespace},
      };
      context_.namespaces_pointer = namespaces->pointer;
      isolation.user_namespace = isolation.pid_namespace = isolation.mount_namespace = false;
      Uniqueness unique;
      for (const Node& element :
           ReadArray(*namespaces, {"namespace names (\"user\", \"pid\", \"mount\")", "", true})) {
        isolation.*ReadChoice(element, kNamespaces) = true;
        unique.Add(element, element.json().get<std::string>());
      }
    }
    if (auto cgroup = Optional(node, "cgroup")) {
      ExpectObject(*cgroup);
      CheckKeys(*cgroup, {"pids.max"});
      if (auto pids_max = Optional(*cgroup, "pids.max")) {
        isolation.pids_max = ReadInteger(*pids_max, 1, 4194304);
        context_.pids_max_pointer = pids_max->pointer;
      }
    }
    if (auto sysctls = Optional(node, "sysctls")) {
      ExpectObject(*sysctls);
      const std::vector<std::string>& allowed = AllowedSysctls();
      for (const auto& [name, value] : sysctls->json().items()) {
        Node entry = sysctls->Child(name);
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
          Fail(entry.pointer,
               "sysctl " + Quote(name) + " is not in the allowlist: " + Join(allowed, ", "));
        }
        std::string_view expected = "the value as a string of 1 to 19 decimal digits such as \"1\"";
        const std::string& text = ReadString(entry, expected);
        bool digits =
            !text.empty() && text.size() <= 19 &&
            std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) FailExpected(entry, expected);
        isolation.sysctls[name] = text;
      }
    }
    if (auto rlimits = Optional(node, "rlimits")) isolation.rlimits = ReadRlimits(*rlimits);
  }

  void ReadFixtures(const Node& node) {
    ExpectObject(node);
    for (const auto& [name, value] : node.json().items()) {
      Node entry = node.Child(name);
      if (!IsName(name)) {
        Fail(entry.pointer, "expected a fixture name matching " + std::string(kNamePattern) +
                                ", got " + Quote(name));
      }
      ExpectObject(entry, "a fixture object");
      Fixture fixture;
      fixture.name = name;
      // The allowed keys depend on the kind.
      fixture.kind = ReadChoice(Required(entry, "kind"), FixtureKinds())(entry, context_);
      context_.fixture_pointers[name] = entry.pointer;
      scenario_.fixtures.push_back(std::move(fixture));
    }
  }

  void ReadStack(const Node& node) {
    ExpectObject(node);
    CheckKeys(node, {"fresh", "busybox_image"});
    StackRequirement& stack = scenario_.stack;
    stack.required = true;
    if (auto fresh = Optional(node, "fresh")) stack.fresh = ReadBool(*fresh);
    if (auto busybox = Optional(node, "busybox_image")) stack.busybox_image = ReadBool(*busybox);
  }

  void ReadSteps(const Node& node) {
    std::string first_process_step;  // the first spawn or kill, which needs a wait-for-stall
    // The first spawn, kill or wait-for-stall, and its action: a flap step refuses them all.
    std::string first_non_command_step;
    std::string first_non_command_action;
    std::vector<Node> elements = ReadArray(node, {"step objects", "step", false});
    context_.step_count = elements.size();
    for (const Node& element : elements) {
      ExpectObject(element, "a step object");
      Node action = Required(element, "action");
      const StepKind kind = ReadChoice(action, StepKinds());
      Step step = kind.read(element, context_);
      // A fixture spawned in a container of its own is observed like the stack's commands.
      const auto* spawn = std::get_if<SpawnStep>(&step);
      const bool in_container = spawn != nullptr && spawn->container.has_value();
      if (kind.observed_by_stall && !in_container && first_process_step.empty()) {
        first_process_step = element.pointer;
      }
      if (kind.observed_in_sandbox && !in_container && first_non_command_step.empty()) {
        first_non_command_step = element.pointer;
        first_non_command_action = action.json().get<std::string>();
      }
      scenario_.steps.push_back(std::move(step));
    }
    // One capture per run: a flap scenario's is the syscall probe's series, a watch's the
    // watched processes' /proc.
    if (!context_.flap_pointer.empty() && !context_.watch_pointer.empty()) {
      Fail(context_.watch_pointer,
           "a watched run-command step cannot share a scenario with the "
           "\"flap\" step at " +
               context_.flap_pointer +
               ": a flap scenario's signatures are \"rates\" and \"commands\"");
    }
    // A flap scenario measures dockerd's syscalls against its own stack; what spawn, kill and
    // wait-for-stall steps do is observed in the sandbox's /proc, which it never captures.
    if (!context_.flap_pointer.empty() && !first_non_command_step.empty()) {
      Fail(first_non_command_step,
           "a " + Quote(first_non_command_action) +
               " step cannot share a scenario with the "
               "\"flap\" step at " +
               context_.flap_pointer +
               ": a flap scenario only runs commands against its own stack (its signatures are "
               "\"rates\" and \"commands\")");
    }
    // Only a scenario of run-command steps may end without a wait-for-stall: what spawn and kill
    // steps do is only ever observed by the stall capture.
    if (!context_.has_wait_for_stall && !first_process_step.empty()) {
      Fail(node.pointer,
           "the last step must be {\"action\": \"wait-for-stall\"}: the spawn and kill steps "
           "(first at " +
               first_process_step +
               ") are observed by it (only a scenario of run-command steps may omit it)");
    }
  }

  void ReadPreconditions(const Node& node) {
    for (const Node& element : ReadArray(node, {"precondition objects", "precondition", true})) {
      ExpectObject(element, "a precondition object");
      // The allowed keys depend on the kind.
      scenario_.preconditions.push_back(
          ReadChoice(Required(element, "kind"), PreconditionKinds())(element, context_));
    }
  }

  void ReadStall(const Node& node) {
    ExpectObject(node);
    CheckKeys(node, {"poll_interval_ms", "settle_ms", "timeout_ms"});
    StallDetection& stall = scenario_.stall;
    if (auto poll = Optional(node, "poll_interval_ms")) {
      stall.poll_interval_ms = static_cast<int>(ReadInteger(*poll, 1, 1000));
    }
    if (auto settle = Optional(node, "settle_ms")) {
      stall.settle_ms = static_cast<int>(ReadInteger(*settle, 10, 60000));
    }
    if (auto timeout = Optional(node, "timeout_ms")) {
      stall.timeout_ms = static_cast<int>(ReadInteger(*timeout, 100, 600000));
    }
    if (stall.settle_ms < stall.poll_interval_ms) {
      Fail(node.pointer + (node.Has("settle_ms") ? "/settle_ms" : ""),
           "settle_ms (" + std::to_string(stall.settle_ms) +
               ") must be at least poll_interval_ms (" + std::to_string(stall.poll_interval_ms) +
               ")");
    }
    if (stall.timeout_ms < stall.settle_ms) {
      Fail(node.pointer + (node.Has("timeout_ms") ? "/timeout_ms" : ""),
           "timeout_ms (" + std::to_string(stall.timeout_ms) + ") must be at least settle_ms (" +
               std::to_string(stall.settle_ms) + ")");
    }
  }

  void ReadRecovery(const Node& node) {
    Uniqueness unique;
    for (const Node& element : ReadArray(node, {"recovery actions", "recovery action", true})) {
      RecoveryStep step = ReadChoice(element, RecoveryKinds())(element, context_);
      unique.Add(element, element.json().get<std::string>());
      scenario_.recovery.push_back(step);
    }
  }

  void ReadSignatures(const Node& node) {
    ExpectObject(node);
    CheckKeys(node, {"bug", "healthy"});
    Node bug = Required(node, "bug");
    Node healthy = Required(node, "healthy");
    scenario_.bug = ReadSignature(bug);
    scenario_.healthy = ReadSignature(healthy);
    if (scenario_.bug.all_exited && scenario_.healthy.all_exited &&
        scenario_.bug.commands.empty() && scenario_.healthy.commands.empty()) {
      Fail(healthy.pointer,
           "the bug and healthy signatures cannot both be all_exited: no run could tell them "
           "apart");
    }
  }

  signature::Signature ReadSignature(const Node& node) {
    ExpectObject(node, "a signature object");
    CheckKeys(node, {"description", "tasks", "all_exited", "commands", "rates"});
    signature::Signature result;
    result.description = ReadText(Required(node, "description"));
    if (auto all_exited = Optional(node, "all_exited")) {
      if (!ReadBool(*all_exited)) {
        Fail(all_exited->pointer,
             "\"all_exited\" may only be true; omit it and list tasks instead");
      }
      if (node.Has("tasks")) {
        Fail(node.pointer, "a signature has either \"tasks\" or \"all_exited\": true, not both");
      }
      if (!context_.has_wait_for_stall) {
        Fail(all_exited->pointer,
             "\"all_exited\" is observed by the \"wait-for-stall\" step, and /steps has none");
      }
      result.all_exited = true;
    } else if (!node.Has("tasks") && !node.Has("commands") && !node.Has("rates")) {
      Fail(node.pointer,
           "missing required key \"tasks\" (or \"commands\", \"rates\", or \"all_exited\": "
           "true)");
    }
    if (auto tasks = Optional(node, "tasks")) {
      if (!context_.has_wait_for_stall && context_.watch_pointer.empty()) {
        Fail(tasks->pointer,
             "task expectations are captured by the \"wait-for-stall\" step or a watched "
             "run-command step, and /steps has neither");
      }
      Uniqueness roles;
      for (const Node& element :
           ReadArray(*tasks, {"task expectations", "task expectation", false})) {
        result.tasks.push_back(ReadTask(element, roles));
      }
    }
    if (auto commands = Optional(node, "commands")) {
      Uniqueness names;
      for (const Node& element :
           ReadArray(*commands, {"command expectations", "command expectation", false})) {
        result.commands.push_back(ReadCommandExpectation(element, names));
      }
    }
    if (auto rates = Optional(node, "rates")) {
      if (context_.flap_pointer.empty()) {
        Fail(rates->pointer,
             "rate expectations are measured by the syscall probe of a \"flap\" step, and "
             "/steps has none");
      }
      for (const Node& element :
           ReadArray(*rates, {"rate expectations", "rate expectation", false})) {
        result.rates.push_back(ReadRateExpectation(element));
      }
    }
    return result;
  }

  // A per-second rate: a JSON number (integer or not), finite, 0 or more.
  static double ReadPerSecond(const Node& node) {
    const Json& value = node.json();
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      FailExpected(node, "a number of events per second, 0 or more");
    }
    return value.get<double>();
  }

  static signature::RateExpectation ReadRateExpectation(const Node& node) {
    ExpectObject(node, "a rate expectation object");
    CheckKeys(node, {"metric", "window", "min_per_second", "max_per_second", "for_fraction",
                     "aggregate", "rationale"});
    signature::RateExpectation rate;
    rate.metric = ReadKeyword(Required(node, "metric"), kRateMetrics);
    if (auto window = Optional(node, "window")) rate.window = ReadKeyword(*window, kRateWindows);
    std::optional<Node> min = Optional(node, "min_per_second");
    std::optional<Node> max = Optional(node, "max_per_second");
    if (min) rate.min_per_second = ReadPerSecond(*min);
    if (max) rate.max_per_second = ReadPerSecond(*max);
    if (!min && !max) {
      Fail(node.pointer,
           "a rate expectation needs a bound: add \"min_per_second\", \"max_per_second\" or "
           "both");
    }
    if (min && max && *rate.min_per_second > *rate.max_per_second) {
      Fail(min->pointer, "min_per_second " + min->json().dump() + " is above max_per_second " +
                             max->json().dump() + ": no second could satisfy both");
    }
    if (auto fraction = Optional(node, "for_fraction")) {
      const Json& value = fraction->json();
      if (!value.is_number() || !(value.get<double>() > 0) || !(value.get<double>() <= 1)) {
        FailExpected(*fraction,
                     "a number greater than 0 and at most 1 (the share of the window's seconds "
                     "that must satisfy the bound)");
      }
      rate.for_fraction = value.get<double>();
    }
    if (auto aggregate = Optional(node, "aggregate")) {
      rate.aggregate = ReadKeyword(*aggregate, kRateAggregates);
      if (rate.aggregate == "mean" && Optional(node, "for_fraction")) {
        Fail(aggregate->pointer,
             "\"for_fraction\" applies to \"each_second\" only: a mean is one number per window");
      }
    }
    if (auto rationale = Optional(node, "rationale")) rate.rationale = ReadText(*rationale);
    return rate;
  }

  signature::CommandExpectation ReadCommandExpectation(const Node& node, Uniqueness& names) {
    ExpectObject(node, "a command expectation object");
    CheckKeys(node, {"command", "exit_code", "killed_by", "refused_syscall", "output_contains",
                     "running_at_capture"});
    signature::CommandExpectation expectation;
    Node command = Required(node, "command");
    expectation.command = CommandOf(scenario_.steps[context_.FindCommand(command)])->name;
    names.Add(command, expectation.command, "command");
    if (auto exit_code = Optional(node, "exit_code")) {
      expectation.exit_code = static_cast<int>(ReadInteger(*exit_code, 0, 255));
    }
    if (auto killed_by = Optional(node, "killed_by")) {
      expectation.killed_by = ReadSignalName(*killed_by);
    }
    if (expectation.exit_code && expectation.killed_by) {
      Fail(node.pointer,
           "a command expectation has either \"exit_code\" or \"killed_by\", not both (a "
           "process either exits or is killed)");
    }
    if (auto refused = Optional(node, "refused_syscall")) {
      std::string_view expected =
          "a syscall name of lower-case letters, digits and \"_\" such as \"setrlimit\"";
      const std::string& name = ReadString(*refused, expected);
      if (!IsSyscallName(name)) FailExpected(*refused, expected);
      if (expectation.killed_by != "SIGSYS") {
        Fail(refused->pointer,
             "\"refused_syscall\" needs \"killed_by\": \"SIGSYS\" (a seccomp filter that refuses "
             "a syscall kills the process with SIGSYS)");
      }
      expectation.refused_syscall = name;
    }
    if (auto output = Optional(node, "output_contains")) {
      Uniqueness unique;
      std::string_view expected = "a non-empty string without NUL";
      for (const Node& element : ReadArray(*output, {"strings", "string", false})) {
        const std::string& text = ReadString(element, expected);
        if (text.empty() || text.find('\0') != std::string::npos) FailExpected(element, expected);
        unique.Add(element, text);
        expectation.output_contains.push_back(text);
      }
    }
    if (auto running = Optional(node, "running_at_capture")) {
      const Step& step = scenario_.steps[context_.commands.at(expectation.command).index];
      if (!std::holds_alternative<WatchedCommandStep>(step)) {
        Fail(running->pointer,
             "\"running_at_capture\" is observed by a run-command step's \"watch\", and " +
                 Quote(expectation.command) + " (" +
                 context_.commands.at(expectation.command).pointer + ") has none");
      }
      expectation.running_at_capture = ReadBool(*running);
      if (*expectation.running_at_capture && (expectation.exit_code || expectation.killed_by)) {
        Fail(running->pointer,
             "a command still running at capture has not ended yet: drop \"exit_code\" and "
             "\"killed_by\" (recovery ends it)");
      }
    }
    if (!expectation.exit_code && !expectation.killed_by && expectation.output_contains.empty() &&
        !expectation.running_at_capture) {
      Fail(node.pointer,
           "a command expectation must say how the command ended: add \"exit_code\", "
           "\"killed_by\", \"output_contains\" or \"running_at_capture\"");
    }
    return expectation;
  }

  signature::TaskExpectation ReadTask(const Node& node, Uniqueness& roles) {
    ExpectObject(node, "a task expectation object");
    CheckKeys(node, {"role", "select", "state", "stack", "shd_pending", "sig_pending", "task_flags",
                     "pipe"});
    signature::TaskExpectation task;
    Node role = Required(node, "role");
    task.role = ReadName(role, "a role name");
    roles.Add(role, task.role, "role");
    task.select = ReadSelector(Required(node, "select"));
    if (auto state = Optional(node, "state")) {
      for (char letter : scenario::reader::ReadStateLetters(*state)) task.states.insert(letter);
    }
    if (auto stack = Optional(node, "stack")) {
      for (const Node& element :
           ReadArray(*stack, {"kernel function names, innermost first", "frame", false})) {
        std::string_view expected =
            "a normalised kernel function name such as \"fuse_flush\" (no offset, module or "
            ".isra/.part suffix), or such names separated by \"|\" for a function renamed "
            "between kernels (\"anon_pipe_write|pipe_write\")";
        const std::string& frame = ReadString(element, expected);
        // "anon_pipe_write|pipe_write": alternatives for a function renamed between kernels.
        for (std::string_view rest = frame;;) {
          const std::size_t bar = rest.find('|');
          if (!IsCIdentifier(std::string(rest.substr(0, bar)))) FailExpected(element, expected);
          if (bar == std::string_view::npos) break;
          rest.remove_prefix(bar + 1);
        }
        task.stack.push_back(frame);
        uses_stacks_ = true;
        if (stack_pointer_.empty()) stack_pointer_ = stack->pointer;
      }
    }
    if (auto pending = Optional(node, "shd_pending")) task.shd_pending = ReadSignalSet(*pending);
    if (auto pending = Optional(node, "sig_pending")) task.sig_pending = ReadSignalSet(*pending);
    if (auto flags = Optional(node, "task_flags")) {
      Uniqueness unique;
      for (const Node& element : ReadArray(*flags, {"PF_* flag names", "flag name", false})) {
        std::string_view expected = "a task flag name such as \"PF_EXITING\"";
        const std::string& flag = ReadString(element, expected);
        if (!probe::TaskFlagBit(flag)) FailExpected(element, expected);
        unique.Add(element, flag);
        task.task_flags.push_back(flag);
      }
    }
    if (auto pipe = Optional(node, "pipe")) task.pipe = ReadPipeExpectation(*pipe);
    return task;
  }

  static signature::TaskExpectation::Pipe ReadPipeExpectation(const Node& node) {
    ExpectObject(node, "a pipe expectation object");
    CheckKeys(node, {"fd", "min_fill", "starts_with"});
    signature::TaskExpectation::Pipe pipe;
    pipe.fd = static_cast<int>(ReadInteger(Required(node, "fd"), 0, 1023));
    if (auto fill = Optional(node, "min_fill")) {
      const Json& value = fill->json();
      if (!value.is_number() || !(value.get<double>() >= 0) || !(value.get<double>() <= 1)) {
        FailExpected(*fill, "a number from 0 to 1 (unread bytes over the pipe's capacity)");
      }
      pipe.min_fill = value.get<double>();
    }
    if (auto prefix = Optional(node, "starts_with")) {
      pipe.starts_with = ReadText(*prefix);
      if (pipe.starts_with.size() > static_cast<std::size_t>(probe::kPipeHeadBytes)) {
        FailExpected(*prefix, "a text of at most " + std::to_string(probe::kPipeHeadBytes) +
                                  " bytes (wedge peeks at that many unread bytes)");
      }
    }
    if (!Optional(node, "min_fill") && !Optional(node, "starts_with")) {
      Fail(node.pointer, "a pipe expectation needs \"min_fill\", \"starts_with\" or both");
    }
    return pipe;
  }

  std::vector<std::string> ReadSignalSet(const Node& node) {
    std::vector<std::string> names;
    Uniqueness unique;
    for (const Node& element : ReadArray(node, {"signal names", "signal name", false})) {
      names.push_back(ReadSignalName(element));
      unique.Add(element, names.back());
    }
    return names;
  }

  signature::TaskSelector ReadSelector(const Node& node) {
    ExpectObject(node, "a selector object");
    CheckKeys(node, {"process", "comm", "thread"});
    signature::TaskSelector selector;
    Node process = Required(node, "process");
    selector.process = ReadString(process, "a process name");
    if (auto command = context_.commands.find(selector.process);
        command != context_.commands.end()) {
      Fail(process.pointer, Quote(selector.process) + " is the run-command step " +
                                command->second.pointer +
                                ", not a process: expect how it ended under \"commands\"");
    }
    if (std::find(context_.process_labels.begin(), context_.process_labels.end(),
                  selector.process) == context_.process_labels.end()) {
      Fail(process.pointer,
           "no process named " + Quote(selector.process) + "; known: " + context_.KnownLabels());
    }
    if (auto comm = Optional(node, "comm")) {
      std::string_view expected = "a comm of 1 to 15 bytes (the kernel keeps 15)";
      selector.comm = ReadString(*comm, expected);
      if (selector.comm.empty() || selector.comm.size() > 15 ||
          HasControlCharacter(selector.comm)) {
        FailExpected(*comm, expected);
      }
    }
    if (auto thread = Optional(node, "thread")) {
      static const NameTable<signature::TaskSelector::Thread> kThreads = {
          {"any", signature::TaskSelector::Thread::kAny},
          {"leader", signature::TaskSelector::Thread::kLeader},
          {"non-leader", signature::TaskSelector::Thread::kNonLeader},
      };
      selector.thread = ReadChoice(*thread, kThreads);
    }
    return selector;
  }

  // "stacks": {"RELEASE": {"verdict", "reason"}}: where a release's stack differs.
  void ReadStackExpectations(const Node& node) {
    ExpectObject(node);
    if (!scenario_.stack.required) {
      Fail(node.pointer, "expectations per stack need a scenario that uses the stack (\"stack\")");
    }
    for (const auto& [release, value] : node.json().items()) {
      Node entry = node.Child(release);
      if (!IsDebianRelease(release)) {
        Fail(entry.pointer,
             "expected a Debian release (" + DebianReleaseList() + "), got " + Quote(release));
      }
      ExpectObject(entry);
      CheckKeys(entry, {"verdict", "reason"});
      Scenario::StackExpectation expectation;
      expectation.verdict = ReadChoice(Required(entry, "verdict"), Verdicts());
      expectation.reason = ReadText(Required(entry, "reason"));
      scenario_.expected_on_stack[release] = std::move(expectation);
    }
  }

  void ReadExpect(const Node& node) {
    ExpectObject(node);
    CheckKeys(node, {"verdict", "reason", "stacks"});
    Node verdict = Required(node, "verdict");
    scenario_.expected = ReadChoice(verdict, Verdicts());
    Node reason = Required(node, "reason");
    scenario_.expected_reason = ReadText(reason);
    if (auto stacks = Optional(node, "stacks")) ReadStackExpectations(*stacks);
    if (context_.failed_precondition.empty()) return;
    // The file itself decides the precondition, so the expectation must agree with it.
    const std::string& name = context_.failed_precondition_name;
    if (scenario_.expected == Verdict::kReproduced) {
      Fail(verdict.pointer,
           "\"reproduced\" contradicts the precondition " + Quote(name) + " (" +
               context_.failed_precondition +
               "), which does not hold in this file: " + context_.failed_precondition_detail);
    }
    if (scenario_.expected_reason.find(name) == std::string::npos) {
      Fail(reason.pointer, "the reason must name the precondition that does not hold: " +
                               Quote(name) + " (" + context_.failed_precondition + ")");
    }
  }

  void CheckFixturesSpawned() const {
    for (const Fixture& fixture : scenario_.fixtures) {
      if (context_.fixture_spawned_by.count(fixture.name) == 0) {
        Fail(context_.fixture_pointers.at(fixture.name),
             "fixture " + Quote(fixture.name) +
                 " is never spawned: add a spawn step or remove the fixture");
      }
    }
  }

  void CheckStackUsed() const {
    if (scenario_.stack.required && context_.commands.empty() && context_.flap_pointer.empty()) {
      Fail("/stack",
           "the private docker stack is never used: add a \"run-command\" or \"flap\" step or "
           "remove \"stack\"");
    }
  }

  // A task stuck in a FUSE request ignores SIGKILL; only aborting the connection releases it.
  void CheckRecovery() const {
    // kill-sandbox acts on the sandbox, which only spawn (outside a container), kill and
    // wait-for-stall steps make.
    const bool has_sandbox =
        std::any_of(scenario_.steps.begin(), scenario_.steps.end(), [](const Step& step) {
          const auto* spawn = std::get_if<SpawnStep>(&step);
          return (spawn != nullptr && !spawn->container) ||
                 std::holds_alternative<KillStep>(step) ||
                 std::holds_alternative<WaitForStallStep>(step);
        });
    for (std::size_t i = 0; i < scenario_.recovery.size(); ++i) {
      if (std::holds_alternative<KillSandbox>(scenario_.recovery[i]) && !has_sandbox) {
        Fail("/recovery/" + std::to_string(i),
             "\"kill-sandbox\" needs wedge's sandbox, and no step makes one (a spawn outside a "
             "container, a kill or a wait-for-stall step): the stack's containers are recovered "
             "by their own actions");
      }
    }
    bool aborts = std::any_of(scenario_.recovery.begin(), scenario_.recovery.end(),
                              [](const RecoveryStep& step) {
                                return std::holds_alternative<AbortFuseConnections>(step);
                              });
    for (const Fixture& fixture : scenario_.fixtures) {
      if (std::holds_alternative<FuseDaemonFixture>(fixture.kind) && !aborts) {
        Fail(context_.root.Has("recovery") ? "/recovery" : "",
             "recovery must include \"abort-fuse-connections\" for the fuse-daemon fixture at " +
                 context_.fixture_pointers.at(fixture.name) +
                 ": a task stuck in a FUSE request ignores SIGKILL");
      }
    }
    // A process blocked writing into a full pipe nobody reads stays blocked until its reader
    // reads; its parent, which writes into the same pipe, too. Without the drain the command
    // would only end at its timeout.
    const bool drains = std::any_of(
        scenario_.recovery.begin(), scenario_.recovery.end(),
        [](const RecoveryStep& step) { return std::holds_alternative<DrainPipes>(step); });
    // wedge's own fixture in a container writes nothing once it is ready: nothing to drain.
    const bool watches_own_fixture =
        std::any_of(scenario_.steps.begin(), scenario_.steps.end(), [&](const Step& step) {
          const auto* watched = std::get_if<WatchedCommandStep>(&step);
          return watched != nullptr &&
                 context_.spawned_containers.contains(watched->watch.container);
        });
    if (!context_.watch_pointer.empty() && !drains && !watches_own_fixture) {
      Fail(context_.root.Has("recovery") ? "/recovery" : "",
           "recovery must include \"drain-pipes\" for the watched run-command step at " +
               context_.watch_pointer.substr(0, context_.watch_pointer.rfind('/')) +
               ": what it watches may block on a pipe nobody reads, and only reading it frees "
               "the writer and its parent");
    }
  }

  void CheckRequirements() const {
    auto require = [&](Requirement requirement, const std::string& needed_by) {
      const std::vector<Requirement>& listed = scenario_.requires_;
      if (std::find(listed.begin(), listed.end(), requirement) != listed.end()) return;
      Fail(context_.root.Has("requires") ? "/requires" : "",
           "missing requirement " + Quote(RequirementName(requirement)) + ", needed by " +
               needed_by);
    };
    for (const Fixture& fixture : scenario_.fixtures) {
      require(Requirement::kFuseDevice,
              "the fuse-daemon fixture at " + context_.fixture_pointers.at(fixture.name));
    }
    for (const RecoveryStep& step : scenario_.recovery) {
      if (std::holds_alternative<AbortFuseConnections>(step)) {
        require(Requirement::kFusectl, "the recovery action \"abort-fuse-connections\"");
      }
    }
    if (scenario_.isolation.pids_max) require(Requirement::kPidsCgroup, context_.pids_max_pointer);
    if (uses_stacks_)
      require(Requirement::kKernelStacks, "the expected stack at " + stack_pointer_);
    if (scenario_.stack.required) require(Requirement::kRoot, "the private docker stack at /stack");
    if (!context_.seccomp_pointer.empty()) require(Requirement::kSeccomp, context_.seccomp_pointer);
  }

  ReadContext context_;
  Scenario& scenario_ = context_.scenario;
  std::string stack_pointer_;
  bool uses_stacks_ = false;
};

std::string TooLargeMessage(std::uint64_t size) {
  return "file is too large: " + std::to_string(size) + " bytes, the limit is " +
         std::to_string(kMaxDocumentBytes) + " (1 MiB)";
}

std::string FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "a special file";
}

}  // namespace

std::variant<Scenario, LoadError> ParseScenario(std::string_view text,
                                                const std::filesystem::path& file_name) {
  LoadError error;
  error.file = file_name.string();
  if (text.size() > kMaxDocumentBytes) {
    error.message = TooLargeMessage(text.size());
    return error;
  }
  std::variant<Json, DocumentFailure> document = ParseJsonDocument(text);
  if (auto* failure = std::get_if<DocumentFailure>(&document)) {
    error.pointer = std::move(failure->pointer);
    error.message = std::move(failure->message);
    if (failure->offset) std::tie(error.line, error.column) = LineAndColumn(text, *failure->offset);
    return error;
  }
  try {
    Scenario scenario = Validator(std::get<Json>(document)).Run();
    scenario.file = file_name;
    return scenario;
  } catch (const Failure& failure) {
    error.pointer = failure.pointer;
    error.message = failure.message;
    return error;
  }
}

std::variant<Scenario, LoadError> LoadScenarioFile(const std::filesystem::path& file) {
  auto failed = [&](std::string message) {
    return LoadError{file.string(), "", std::move(message), 0, 0};
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it.
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return failed(ErrnoError("open('" + file.string() + "')").message());
  struct stat status {};
  if (fstat(fd.get(), &status) != 0) {
    return failed(ErrnoError("fstat('" + file.string() + "')").message());
  }
  if (!S_ISREG(status.st_mode)) {
    return failed("expected a regular file, got " + FileTypeName(status.st_mode));
  }
  if (static_cast<std::uint64_t>(status.st_size) > kMaxDocumentBytes) {
    return failed(TooLargeMessage(static_cast<std::uint64_t>(status.st_size)));
  }
  // Read one byte past the limit: the file may have grown since fstat.
  std::string text(kMaxDocumentBytes + 1, '\0');
  std::size_t length = 0;
  while (length < text.size()) {
    ssize_t count = read(fd.get(), text.data() + length, text.size() - length);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) return failed(ErrnoError("read('" + file.string() + "')").message());
    if (count == 0) break;
    length += static_cast<std::size_t>(count);
  }
  if (length > kMaxDocumentBytes) return failed(TooLargeMessage(length));
  text.resize(length);
  return ParseScenario(text, file);
}

std::vector<std::filesystem::path> ExpandScenarioPaths(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_directory(path, error)) return {path};
  std::vector<std::filesystem::path> files;
  std::filesystem::directory_iterator it(path, error);
  for (; !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    const std::filesystem::path& entry = it->path();
    std::string name = entry.filename().string();
    if (name.starts_with(".") || entry.extension() != ".json") continue;
    std::error_code type_error;
    if (!it->is_regular_file(type_error)) continue;
    files.push_back(entry);
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
  return files;
}

}  // namespace wedge::scenario
