// Runs scenarios: setup -> trigger -> wait for the stall -> capture -> match -> recover ->
// teardown -> verdict, and checks afterwards that the host is as it was before.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/report/report.h"
#include "wedge/scenario/scenario.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/journal.h"

namespace wedge::runner {

struct RunOptions {
  std::filesystem::path state_dir;     // journals, run directories, lock: /run/wedge
  std::filesystem::path fixtures_dir;  // where wedge-init and wedge-fuse are: next to wedge
  bool keep_run_directory = false;     // --keep: leave the run directory (fixture logs) behind
  std::ostream* progress = nullptr;    // one line per phase; null for silence
  stack::Binaries binaries = stack::Binaries::Defaults();  // --with NAME=PATH
  std::optional<scenario::Verdict> expect_override;        // --expect VERDICT
  // --hold: after a verdict other than not-reproduced, keep the state live until released
  // (wedge/runner/hold.h), then recover and tear down.
  bool hold = false;
};

// What the scenarios of one `wedge run` share: the private docker stack, started on first use
// by a scenario that does not ask for a fresh one, with its own journal and run directory.
// Destroying the suite stops the stack and undoes its journal.
class Suite {
 public:
  explicit Suite(RunOptions options);
  Suite(const Suite&) = delete;
  Suite& operator=(const Suite&) = delete;
  ~Suite();

  const RunOptions& options() const { return options_; }
  // The shared stack, started (and its busybox image imported) on first use.
  Result<stack::DockerStack*> SharedStack();
  // Stops the shared stack and undoes the suite's journal now; lines say what was done.
  std::vector<std::string> TearDown();

 private:
  RunOptions options_;
  std::unique_ptr<sys::Journal> journal_;
  std::unique_ptr<stack::DockerStack> stack_;
};

// The requirements of `scenario` this host does not meet, each with what is missing.
std::vector<std::string> UnmetRequirements(const scenario::Scenario& scenario);

// Runs one scenario once. Never throws; an internal failure is reported in `result.error`
// after everything it set up has been undone.
report::RunResult RunScenario(const scenario::Scenario& scenario, Suite& suite);

// What wedge records about the host for the evidence bundle.
report::HostInfo CollectHostInfo(const RunOptions& options);
// The docker stack's binaries for the evidence bundle, when one of `scenarios` uses the stack
// (none otherwise): each one's path on the host, its --version line, its Debian package and
// version, its Go version and release.
std::vector<report::BinaryVersion> DescribeBinaries(
    const std::vector<scenario::Scenario>& scenarios, const stack::Binaries& binaries);

// The parts of host state wedge promises to leave as it found them.
struct HostState {
  std::set<std::string> d_state_tasks;  // "PID(comm)" of tasks in state D
  std::set<unsigned> fuse_connections;
  std::set<std::string> fuse_mounts;  // mount points of fuse filesystems in wedge's namespace
  bool fusectl_mounted = false;
  std::set<std::string> wedge_cgroups;         // directories under the pids hierarchy's wedge/
  std::map<std::string, std::string> sysctls;  // the allowlisted ones
  std::set<std::string> journals;              // pending journal files
  std::set<std::string> stack_processes;       // "PID(comm)" of dockerd, containerd, shims, runc
  std::set<std::string> helper_processes;      // "PID(comm)" of strace, wedge-init, qemu-system-*
  std::set<std::string> mounts;                // mount points in wedge's mount namespace
  bool operator==(const HostState&) const = default;
};
HostState CaptureHostState(const std::filesystem::path& state_dir);
// What differs between `before` and `after`, one line each; empty when the host is clean.
std::vector<std::string> DescribeLeftovers(const HostState& before, const HostState& after);
// What the host still has that it did not have `before`. A difference must persist to count:
// the host is sampled again (every 20 ms, for at most `settle`) until it is clean, so a task that
// is in D for a moment (a kernel worker, another program's I/O) is not reported as left behind.
std::vector<std::string> SettledLeftovers(
    const HostState& before, const std::filesystem::path& state_dir,
    std::chrono::milliseconds settle = std::chrono::milliseconds(500));

// `wedge cleanup`, and every run's start: replays the orphan journals of `state_dir` within this
// host's scope (sys::UndoScope::ForHost) and reports what it undid, skipped and failed to undo.
sys::JournalRecovery Cleanup(const std::filesystem::path& state_dir);

}  // namespace wedge::runner
