// What one run of one scenario owns and has observed so far, handed from stage to stage
// (setup -> trigger -> match -> recover -> teardown) and to the module of each step kind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/report/report.h"
#include "wedge/runner/runner.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/sandbox.h"
#include "wedge/sys/sysctl.h"

namespace wedge::runner {

class CommandWatch;
class Containers;

// Times and announces the phases of a run ("[NAME] line" on the progress stream). Entering a
// phase ends the previous one; the timings go to the run's result.
class PhaseClock {
 public:
  PhaseClock(report::RunResult& result, const RunOptions& options, const std::string& name);

  // Ends the current phase and begins `phase`, saying `what`.
  void Begin(const std::string& phase, const std::string& what);
  // Ends the current phase, recording its duration.
  void End();
  // One progress line.
  void Say(const std::string& line) const;

 private:
  report::RunResult& result_;
  const RunOptions& options_;
  std::string name_;
  std::string phase_;
  std::int64_t started_ = 0;
};

// One run's state. The owners are declared in the order their host changes are made, so that
// they are undone in reverse order on every path out of the run: success, error or interruption.
struct RunContext {
  RunContext(const scenario::Scenario& scenario_in, const RunOptions& options_in,
             report::RunResult& result_in, PhaseClock& clock_in,
             stack::DockerStack* shared_stack_in);
  RunContext(const RunContext&) = delete;
  RunContext& operator=(const RunContext&) = delete;
  ~RunContext();

  const scenario::Scenario& scenario;
  const RunOptions& options;
  report::RunResult& result;
  PhaseClock& clock;

  // Owned host changes, in mutation order.
  std::unique_ptr<sys::Journal> journal;
  std::filesystem::path run_dir;
  std::unique_ptr<sys::JournalEntryOwner> run_dir_owner;  // kept with --keep
  std::unique_ptr<sys::ScopedMount> fusectl;
  std::vector<std::unique_ptr<sys::ScopedSysctl>> sysctls;
  std::unique_ptr<sys::ScopedCgroup> cgroup;  // the sandbox's
  std::unique_ptr<sys::Sandbox> sandbox;
  std::unique_ptr<stack::DockerStack> fresh_stack;
  // Declared after the stack so that it is destroyed first: it drains what it watched.
  std::unique_ptr<CommandWatch> command_watch;
  std::unique_ptr<Containers> containers;  // the containers the steps name, found once each

  // The stack the steps drive: the suite's shared one, the fresh one, or none.
  stack::DockerStack* docker_stack = nullptr;

  // What the steps have started and observed.
  std::map<pid_t, std::string> labels;         // pid -> its label in signatures
  std::map<std::string, pid_t> pids_by_label;  // the reverse, for kill steps
  std::int64_t trigger_end_ms = 0;             // when the last trigger step ended
  probe::TreeSnapshot snapshot;                // the capture
  bool all_exited = false;                     // the sandbox emptied instead of stalling
  bool stall_timed_out = false;                // neither stalled nor exited within the bound
  std::vector<signature::ObservedCommand> commands;
  std::vector<signature::ObservedSeries> series;
  std::vector<std::string> spawned_containers;  // containers spawn steps started, by --name

  // The processes the scenario's sandbox owns now: its init, what it spawned, and whatever is
  // in its cgroup. The init is listed explicitly: once it is in exit_notify
  // (zap_pid_ns_processes) it has already left its cgroup.
  std::vector<pid_t> SandboxProcesses() const;
  // The processes of the containers spawn steps started: each one's tree under its shim.
  std::vector<pid_t> SpawnedContainerProcesses() const;
  // Says a progress line (the clock's).
  void Say(const std::string& line) const { clock.Say(line); }
};

// A run id unique on this host while this wedge runs: "NAME-PID-N".
std::string NewRunId(const std::string& name);

}  // namespace wedge::runner
