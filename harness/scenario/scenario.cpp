#include "wedge/scenario/scenario.h"

#include <string>

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

const Fixture* Scenario::FindFixture(std::string_view fixture_name) const {
  for (const Fixture& fixture : fixtures) {
    if (fixture.name == fixture_name) return &fixture;
  }
  return nullptr;
}

const std::vector<std::string>& AllowedSysctls() {
  // Each entry is host-wide state; docs/scenario-format.md says why each one is here.
  static const std::vector<std::string> kAllowed = {
      "fs.pipe-user-pages-soft",
      "fs.pipe-user-pages-hard",
      "fs.pipe-max-size",
  };
  return kAllowed;
}

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
