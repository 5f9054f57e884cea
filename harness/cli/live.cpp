// `wedge snapshot` and `wedge match`: a live process tree, as captured and as known signatures
// see it. Both only read /proc.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_support.h"
#include "commands.h"
#include "wedge/probe/task.h"
#include "wedge/report/report.h"
#include "wedge/signature/live_match.h"

namespace wedge::cli {
namespace {

// Whether `pid` is there to capture; says so when it is not.
bool ProcessExists(std::string_view command, pid_t pid) {
  if (std::filesystem::exists("/proc/" + std::to_string(pid))) return true;
  std::cerr << "wedge: " << command << ": no process " << pid << "\n";
  return false;
}

// The containerd shim that `pid` is or runs under, or 0: a container is matched as its whole
// tree under its shim, whichever of its processes wedge was pointed at (the shim, docker-init,
// the daemon).
pid_t ContainerShimOf(pid_t pid) {
  for (pid_t at = pid; at > 1;) {
    Result<std::string> comm = probe::ReadComm(at);
    if (comm.ok() && comm->rfind("containerd-shim", 0) == 0) return at;
    Result<pid_t> parent = probe::ReadParent(at);
    if (!parent.ok()) return 0;
    at = *parent;
  }
  return 0;
}

}  // namespace

int Execute(const SnapshotCommand& command) {
  if (!ProcessExists("snapshot", command.pid)) return kUsage;
  const probe::TreeSnapshot snapshot =
      probe::ReadProcesses(probe::ListDescendants(command.pid), /*peek_pipes=*/true);
  report::PrintSnapshot(std::cout, snapshot);
  if (command.json) {
    nlohmann::json json = report::ToJson(snapshot);
    std::ofstream out(*command.json);
    out << json.dump(2) << "\n";
    if (!out) {
      std::cerr << "wedge: could not write " << *command.json << "\n";
      return kInternalError;
    }
  }
  return kAllAsExpected;
}

int Execute(const MatchCommand& command) {
  if (!ProcessExists("match", command.pid)) return kUsage;
  auto scenarios = LoadAll({command.directory.value_or(DefaultScenarioDirectory().string())});
  if (!scenarios) return kUsage;
  pid_t root = command.pid;
  signature::LiveTree kind = signature::LiveTree::kProcesses;
  if (const pid_t shim = ContainerShimOf(command.pid); shim != 0) {
    root = shim;
    kind = signature::LiveTree::kContainer;
    if (shim != command.pid) {
      std::cout << "pid " << command.pid << " runs in the container of containerd-shim pid " << shim
                << ": matching the container's tree\n";
    }
  }
  const probe::TreeSnapshot tree = probe::ReadProcesses(probe::ListDescendants(root));
  std::cout << "captured " << tree.processes.size() << " process(es) under pid " << root << "\n";

  std::vector<signature::KnownSignature> known;
  for (const auto& scenario : *scenarios) {
    known.push_back(
        {scenario.name, scenario.bug, scenario.expected == scenario::Verdict::kReproduced});
  }
  bool any = false;
  for (const auto& candidate : signature::MatchLiveTree(tree, known, kind)) {
    const scenario::Scenario& scenario = (*scenarios)[candidate.candidate];
    const bool full = candidate.complete();
    any = any || full;
    std::cout << (full ? "MATCH " : "      ") << scenario.name << ": " << candidate.satisfied
              << " of " << candidate.total << " roles as the bug signature describes\n";
    if (candidate.satisfied == 0) continue;
    std::cout << "    " << scenario.summary << "\n";
    for (const auto& [role, task] : candidate.match.bound) {
      std::cout << "    " << role << ": pid " << task.pid << " tid " << task.tid << " " << task.comm
                << " state " << task.state << "\n";
    }
    for (const auto& mismatch : candidate.match.mismatches) {
      std::cout << "    differs: " << mismatch.role << " " << mismatch.field << ": expected "
                << mismatch.expected << ", observed " << mismatch.observed << "\n";
    }
    if (full) {
      for (const auto& reference : scenario.references) {
        std::cout << "    see " << reference.kind << " " << reference.id
                  << (reference.note.empty() ? "" : ": " + reference.note) << "\n";
      }
    }
  }
  if (!any) std::cout << "no known scenario's bug signature matches this tree completely\n";
  return kAllAsExpected;
}

}  // namespace wedge::cli
