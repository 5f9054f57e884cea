#include "wedge/scenario/scenario.h"

#include <string>

#include "wedge/base/allowed_sysctls.h"
#include "wedge/base/overloaded.h"

namespace wedge::scenario {

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kReproduced:
      return "reproduced";
    case Verdict::kNotReproduced:
      return "not-reproduced";
    case Verdict::kUnexplained:
      return "unexplained";
  }
  return "unexplained";
}

std::string_view RequirementName(Requirement requirement) {
  switch (requirement) {
    case Requirement::kRoot:
      return "root";
    case Requirement::kFuseDevice:
      return "fuse-device";
    case Requirement::kFusectl:
      return "fusectl";
    case Requirement::kPidsCgroup:
      return "pids-cgroup";
    case Requirement::kKernelStacks:
      return "kernel-stacks";
    case Requirement::kSeccomp:
      return "seccomp";
  }
  return "unknown";
}

std::string_view StepAction(const Step& step) {
  return std::visit(Overloaded{
                        [](const SpawnStep&) { return std::string_view("spawn"); },
                        [](const KillStep&) { return std::string_view("kill"); },
                        [](const WaitForStallStep&) { return std::string_view("wait-for-stall"); },
                        [](const RunCommandStep&) { return std::string_view("run-command"); },
                        [](const WatchedCommandStep&) { return std::string_view("run-command"); },
                        [](const FlapStep&) { return std::string_view("flap"); },
                    },
                    step);
}

std::string_view StepName(const Step& step) {
  return std::visit(
      Overloaded{
          [](const SpawnStep& spawn) { return std::string_view(spawn.name); },
          [](const KillStep&) { return std::string_view(); },
          [](const WaitForStallStep&) { return std::string_view(); },
          [](const RunCommandStep& run) { return std::string_view(run.name); },
          [](const WatchedCommandStep& watched) { return std::string_view(watched.command.name); },
          [](const FlapStep& flap) { return std::string_view(flap.name); },
      },
      step);
}

const RunCommandStep* CommandOf(const Step& step) {
  if (const auto* run = std::get_if<RunCommandStep>(&step)) return run;
  if (const auto* watched = std::get_if<WatchedCommandStep>(&step)) return &watched->command;
  return nullptr;
}

std::string_view PreconditionKind(const Precondition& precondition) {
  return std::visit(
      Overloaded{
          [](const RlimitSoftBelowHard&) { return std::string_view("rlimit-soft-below-hard"); },
          [](const PidsLimitHit&) { return std::string_view("pids-limit-hit"); },
          [](const PipeCapacityAtMost&) { return std::string_view("pipe-capacity-at-most"); },
      },
      precondition.check);
}

std::string_view RecoveryAction(const RecoveryStep& step) {
  return std::visit(
      Overloaded{
          [](const AbortFuseConnections&) { return std::string_view("abort-fuse-connections"); },
          [](const KillSandbox&) { return std::string_view("kill-sandbox"); },
          [](const DrainPipes&) { return std::string_view("drain-pipes"); },
      },
      step);
}

const Fixture* Scenario::FindFixture(std::string_view fixture_name) const {
  for (const Fixture& fixture : fixtures) {
    if (fixture.name == fixture_name) return &fixture;
  }
  return nullptr;
}

Verdict Scenario::ExpectedOn(std::string_view release) const {
  auto it = expected_on_stack.find(std::string(release));
  return it == expected_on_stack.end() ? expected : it->second.verdict;
}

const std::string& Scenario::ExpectedReasonOn(std::string_view release) const {
  auto it = expected_on_stack.find(std::string(release));
  return it == expected_on_stack.end() ? expected_reason : it->second.reason;
}

const std::vector<std::string>& AllowedSysctls() { return wedge::AllowedSysctls(); }

std::string LoadError::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  out += pointer.empty() ? "(document)" : pointer;
  out += ": ";
  out += message;
  return out;
}

}  // namespace wedge::scenario
