// One run of one scenario as a staged pipeline: setup -> trigger (the steps, which wait for and
// capture the stall) -> match (runner::Decide) -> recover -> teardown, then the host check.
// Each stage takes the run's context and returns a status; the kinds' modules do the work of
// each step, recovery action, precondition and fixture.
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "command_watch.h"
#include "wedge/base/fault_point.h"
#include "wedge/base/overloaded.h"
#include "wedge/kinds/kinds.h"
#include "wedge/probe/signals.h"
#include "wedge/runner/decide.h"
#include "wedge/runner/hold.h"
#include "wedge/runner/run_context.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"
#include "wedge/sys/process.h"

namespace wedge::runner {
namespace {

using scenario::Scenario;

bool NeedsSandbox(const Scenario& scenario) {
  // Only process scenarios (spawn, kill, wait-for-stall) run things in a sandbox; commands and
  // flaps act on the private stack, which has a sandbox of its own.
  return std::any_of(scenario.steps.begin(), scenario.steps.end(), [](const scenario::Step& step) {
    const auto* spawn = std::get_if<scenario::SpawnStep>(&step);
    return (spawn != nullptr && !spawn->container) ||
           std::holds_alternative<scenario::KillStep>(step) ||
           std::holds_alternative<scenario::WaitForStallStep>(step);
  });
}

// The preconditions decided before the steps run; the observed ones are checked around their
// command (ObservedPreconditions).
std::vector<report::PreconditionResult> CheckStaticPreconditions(const Scenario& scenario) {
  std::vector<report::PreconditionResult> results;
  for (const scenario::Precondition& precondition : scenario.preconditions) {
    if (const auto* check = std::get_if<scenario::RlimitSoftBelowHard>(&precondition.check)) {
      results.push_back(kinds::CheckBeforeRun(precondition, *check, scenario));
    }
  }
  return results;
}

Result<std::unique_ptr<stack::DockerStack>> StartStack(sys::Journal& journal,
                                                       const RunOptions& options,
                                                       const std::filesystem::path& run_dir) {
  stack::StackOptions stack_options;
  stack_options.binaries = options.binaries;
  stack_options.run_directory = run_dir;
  stack_options.fixtures_dir = options.fixtures_dir;
  return stack::DockerStack::Start(journal, stack_options);
}

// The journal, the run directory, fusectl, the sysctls, the sandbox and a fresh stack.
Status Setup(RunContext& context) {
  const Scenario& scenario = context.scenario;
  const RunOptions& options = context.options;
  context.clock.Begin("setup", "setting up");
  // Not the scenario's name: the stack's socket paths (108 bytes at most) must not depend on it.
  const std::string run_id = NewRunId("run");
  WEDGE_ASSIGN_OR_RETURN(context.journal, sys::Journal::Create(options.state_dir, run_id));
  sys::Journal& journal = *context.journal;
  context.run_dir = options.state_dir / "runs" / run_id;
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t run_dir_seq,
                         journal.Record(sys::DirectoryChange{context.run_dir}));
  WEDGE_RETURN_IF_ERROR(sys::MakePrivateDirectory(context.run_dir));
  for (const auto& fixture : scenario.fixtures) {
    WEDGE_RETURN_IF_ERROR(
        std::visit([&](const auto& kind) { return kinds::Prepare(kind, context); }, fixture.kind));
  }
  context.run_dir_owner =
      std::make_unique<sys::JournalEntryOwner>(journal, run_dir_seq, options.keep_run_directory);

  if (std::find(scenario.requires_.begin(), scenario.requires_.end(),
                scenario::Requirement::kFusectl) != scenario.requires_.end()) {
    WEDGE_ASSIGN_OR_RETURN(context.fusectl, sys::ScopedMount::EnsureMounted(
                                                journal, "fusectl", sys::kFusectlDirectory));
    if (context.fusectl->mounted_by_wedge()) {
      context.Say("mounted fusectl on /sys/fs/fuse/connections");
    }
  }
  for (const auto& [name, value] : scenario.isolation.sysctls) {
    WEDGE_ASSIGN_OR_RETURN(auto sysctl, sys::ScopedSysctl::Set(journal, name, value));
    context.Say("sysctl " + name + " = " + value + " (was " + sysctl->old_value() + ")");
    context.sysctls.push_back(std::move(sysctl));
  }
  if (NeedsSandbox(scenario)) {
    // A sibling of a fresh stack's wedge/RUN/stack, so the sandbox's pids.max never limits
    // the daemons.
    WEDGE_ASSIGN_OR_RETURN(context.cgroup,
                           sys::ScopedCgroup::Create(journal, "wedge/" + run_id + "/sandbox",
                                                     scenario.isolation.pids_max));
    sys::SandboxOptions sandbox_options;
    sandbox_options.user_namespace = scenario.isolation.user_namespace;
    sandbox_options.pid_namespace = scenario.isolation.pid_namespace;
    sandbox_options.mount_namespace = scenario.isolation.mount_namespace;
    for (const auto& limit : scenario.isolation.rlimits) {
      sandbox_options.rlimits.push_back({limit.resource, rlimit{limit.soft, limit.hard}});
    }
    sandbox_options.init_binary = options.fixtures_dir / "wedge-init";
    sandbox_options.log_directory = context.run_dir;
    WEDGE_ASSIGN_OR_RETURN(context.sandbox,
                           sys::Sandbox::Start(journal, *context.cgroup, sandbox_options));
    context.labels[context.sandbox->init_pid()] = "sandbox-init";
    context.Say("sandbox init is pid " + std::to_string(context.sandbox->init_pid()) +
                " in cgroup " + context.cgroup->directory().string());
  }
  if (scenario.stack.required && scenario.stack.fresh) {
    WEDGE_ASSIGN_OR_RETURN(context.fresh_stack, StartStack(journal, options, context.run_dir));
    if (scenario.stack.busybox_image) {
      WEDGE_RETURN_IF_ERROR(context.fresh_stack->EnsureBusyboxImage());
    }
    context.docker_stack = context.fresh_stack.get();
    context.Say("fresh private docker stack up in " +
                std::to_string(context.docker_stack->startup_ms()) + " ms");
  }
  if (context.docker_stack != nullptr) {
    for (const auto& [name, path] : options.binaries.paths) context.result.binaries[name] = path;
  }
  context.result.preconditions = CheckStaticPreconditions(scenario);
  for (const auto& precondition : context.result.preconditions) {
    context.Say("precondition " + precondition.name + ": " +
                (precondition.held ? "holds" : "does not hold") + " (" + precondition.detail + ")");
  }
  return OkStatus();
}

// The steps in order, each by its kind's module.
Status Trigger(RunContext& context) {
  context.clock.Begin("trigger", "triggering");
  if (context.sandbox) context.pids_by_label["sandbox-init"] = context.sandbox->init_pid();
  context.trigger_end_ms = sys::MonotonicMillis();
  for (const scenario::Step& step : context.scenario.steps) {
    if (sys::Interrupted()) {
      return Error("interrupted by " + probe::SignalName(sys::Interrupted()));
    }
    WEDGE_RETURN_IF_ERROR(
        std::visit([&](const auto& kind) { return kinds::Run(kind, context); }, step));
  }
  return OkStatus();
}

// What was observed, reduced for the signatures, and the decision on it.
void Match(RunContext& context) {
  context.clock.Begin("match", "matching the signatures");
  report::RunResult& result = context.result;
  result.observation = signature::Observe(context.snapshot, context.all_exited);
  result.observation.commands = std::move(context.commands);
  result.observation.series = std::move(context.series);
  result.evidence = std::move(context.snapshot);
}

// The pid `wedge match` is best given for the live state: a spawned container's shim, else the
// sandbox's init, else the first task the decisive signature bound.
pid_t MatchPid(RunContext& context) {
  if (context.containers) {
    for (const std::string& name : context.spawned_containers) {
      if (Result<ContainerProcesses> container = context.containers->Find(name); container.ok()) {
        return container->shim;
      }
    }
  }
  if (context.sandbox) return context.sandbox->init_pid();
  const report::RunResult& result = context.result;
  const signature::MatchResult& match = report::VerdictMatch(result);
  return match.bound.empty() ? 0 : match.bound.front().second.pid;
}

// --hold: the state the verdict was given on stays live until a signal releases it.
void Hold(RunContext& context) {
  report::RunResult& result = context.result;
  if (result.verdict == scenario::Verdict::kNotReproduced) {
    context.Say("nothing to hold: the verdict is not-reproduced, so nothing stalled");
    return;
  }
  context.clock.Begin("hold", "holding the state for inspection");
  const pid_t self = ::getpid();
  HeldRun held{self, sys::ProcessStartTime(self).value_or(0), context.scenario.name,
               MatchPid(context)};
  if (Status written = WriteHeldMarker(context.options.state_dir, held); !written.ok()) {
    context.Say("cannot hold: " + written.error().message());
    return;
  }
  const std::string docker_host =
      context.docker_stack != nullptr ? context.docker_stack->docker_host() : "";
  for (const std::string& line : DescribeHold(result, held.match_pid, docker_host)) {
    context.Say(line);
  }
  const std::int64_t start = sys::MonotonicMillis();
  const int signo = sys::WaitForInterrupt();
  RemoveHeldMarker(context.options.state_dir, self);
  // The signal asked for the release, not for the run to stop: it goes on as any run does.
  sys::ClearInterrupt();
  report::RunResult::Held record;
  record.duration_ms = sys::MonotonicMillis() - start;
  record.released_by = probe::SignalName(signo);
  if (held.match_pid > 0) record.match_command = "wedge match " + std::to_string(held.match_pid);
  context.Say("released by " + record.released_by + " after " + std::to_string(record.duration_ms) +
              " ms held");
  result.held = std::move(record);
}

// The recovery actions in order, then how the watched command ended, or the sandbox gone.
void Recover(RunContext& context) {
  const Scenario& scenario = context.scenario;
  report::RunResult& result = context.result;
  auto recover_all = [&] {
    for (const auto& action : scenario.recovery) {
      std::visit([&](const auto& kind) { kinds::Recover(kind, context); }, action);
    }
  };
  if (context.command_watch) {
    context.clock.Begin("recover", "recovering");
    // A command can give up on its own while the state is held (docker kill does after ~12 s):
    // it then returned before recovery, not because of it.
    const bool returned_before_recovery = context.command_watch->Returned();
    recover_all();
    // How the watched command ended once recovery freed it, for the report; the match saw it
    // still running.
    signature::ObservedCommand ended = context.command_watch->Finish();
    for (auto& command : result.observation.commands) {
      if (command.command == ended.command && command.running_at_capture) command = ended;
    }
    if (ended.running_at_capture) {
      result.recovery.push_back(ended.command +
                                (returned_before_recovery
                                     ? " had returned on its own before recovery: "
                                     : " returned after recovery: ") +
                                (ended.exit_code ? "exit " + std::to_string(*ended.exit_code)
                                                 : std::string("no exit status")) +
                                ", " + std::to_string(ended.duration_ms) + " ms after it started");
    }
    for (const auto& line : result.recovery) context.Say(line);
  }
  if (context.sandbox) {
    context.clock.Begin("recover", "recovering");
    const std::int64_t recover_start = sys::MonotonicMillis();
    recover_all();
    // Recovery is done when the init is reaped and the cgroup is empty; bounded, observed.
    const std::int64_t deadline = sys::MonotonicMillis() + 5000;
    while (!(context.sandbox->TryReap() && context.cgroup->Processes().empty())) {
      if (sys::MonotonicMillis() > deadline) {
        result.recovery.push_back("the sandbox did not exit within 5 s of recovery");
        break;
      }
      ::usleep(1000);
    }
    result.recovery.push_back("sandbox gone " +
                              std::to_string(sys::MonotonicMillis() - recover_start) +
                              " ms after recovery began");
    for (const auto& line : result.recovery) context.Say(line);
  }
}

// Every owner released in reverse order of its change, then whatever the journal still holds.
Status Teardown(RunContext& context) {
  context.clock.Begin("teardown", "tearing down");
  context.command_watch.reset();
  if (context.fresh_stack) {
    WEDGE_RETURN_IF_ERROR(context.fresh_stack->Stop());
    context.fresh_stack.reset();
  }
  context.sandbox.reset();
  if (context.cgroup) WEDGE_RETURN_IF_ERROR(context.cgroup->Remove());
  context.cgroup.reset();
  context.sysctls.clear();
  context.fusectl.reset();
  context.run_dir_owner.reset();
  WEDGE_RETURN_IF_ERROR(context.journal->UndoAll());
  for (const auto& line : context.journal->undo_log()) {
    context.result.recovery.push_back("teardown: " + line);
  }
  return OkStatus();
}

void ApplyDecision(Decision decision, report::RunResult& result) {
  result.verdict = decision.verdict;
  result.reason = std::move(decision.reason);
  result.decisive = decision.decisive;
  result.bug_match = std::move(decision.bug_match);
  result.healthy_match = std::move(decision.healthy_match);
  result.signature_hash = std::move(decision.signature_hash);
}

}  // namespace

std::string NewRunId(const std::string& name) {
  static std::atomic<int> counter{0};
  return name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

PhaseClock::PhaseClock(report::RunResult& result, const RunOptions& options,
                       const std::string& name)
    : result_(result), options_(options), name_(name) {}

void PhaseClock::Begin(const std::string& phase, const std::string& what) {
  End();
  // Each phase is a fault point of its own name, reached as it begins.
  FaultPoint(phase);
  phase_ = phase;
  started_ = sys::MonotonicMillis();
  Say(what);
}

void PhaseClock::End() {
  if (phase_.empty()) return;
  result_.phases.push_back({phase_, sys::MonotonicMillis() - started_});
  phase_.clear();
}

void PhaseClock::Say(const std::string& line) const {
  if (options_.progress == nullptr) return;
  *options_.progress << "[" << name_ << "] " << line << "\n";
  options_.progress->flush();
}

RunContext::RunContext(const Scenario& scenario_in, const RunOptions& options_in,
                       report::RunResult& result_in, PhaseClock& clock_in,
                       stack::DockerStack* shared_stack_in)
    : scenario(scenario_in),
      options(options_in),
      result(result_in),
      clock(clock_in),
      docker_stack(shared_stack_in) {}

RunContext::~RunContext() = default;

std::vector<pid_t> RunContext::SandboxProcesses() const {
  std::vector<pid_t> pids;
  auto add = [&](pid_t pid) {
    if (std::find(pids.begin(), pids.end(), pid) == pids.end() &&
        std::filesystem::exists("/proc/" + std::to_string(pid))) {
      pids.push_back(pid);
    }
  };
  if (!sandbox->InitExited()) add(sandbox->init_pid());
  for (const auto& [pid, label] : labels) {
    if (pid != sandbox->init_pid()) add(pid);
  }
  for (pid_t pid : cgroup->Processes()) add(pid);
  return pids;
}

std::vector<pid_t> RunContext::SpawnedContainerProcesses() const {
  std::vector<pid_t> pids;
  if (!containers) return pids;
  for (const std::string& name : spawned_containers) {
    Result<ContainerProcesses> container = containers->Find(name);
    if (!container.ok()) continue;
    for (pid_t pid : probe::ListDescendants(container->shim)) {
      if (pid != container->shim) pids.push_back(pid);
    }
  }
  return pids;
}

report::RunResult RunScenario(const Scenario& scenario, Suite& suite) {
  const RunOptions& options = suite.options();
  report::RunResult result;
  result.scenario = scenario.name;
  result.file = scenario.file.string();
  // A release's stack may be expected to differ (a fix it carries, a bug it predates).
  result.expected = options.expect_override.value_or(scenario.ExpectedOn(options.binaries.release));
  const std::int64_t run_start = sys::MonotonicMillis();
  PhaseClock clock(result, options, scenario.name);

  // A shared stack outlives this scenario: start it before the host baseline is taken, so the
  // scenario is judged on what it changed; the suite checks the stack's own teardown.
  stack::DockerStack* shared_stack = nullptr;
  if (scenario.stack.required && !scenario.stack.fresh) {
    clock.Begin("stack", "starting the shared private docker stack");
    Result<stack::DockerStack*> started = suite.SharedStack();
    clock.End();
    if (!started.ok()) {
      result.error = "starting the private docker stack: " + started.error().message();
      result.reason = "the run failed: " + *result.error;
      result.duration_ms = sys::MonotonicMillis() - run_start;
      clock.Say("error: " + *result.error);
      return result;
    }
    shared_stack = *started;
    clock.Say("shared stack: " + shared_stack->docker_host() + " (up in " +
              std::to_string(shared_stack->startup_ms()) + " ms)");
  }
  const HostState before = CaptureHostState(options.state_dir);

  RunFacts facts;
  Status status = [&]() -> Status {
    RunContext context(scenario, options, result, clock, shared_stack);
    WEDGE_RETURN_IF_ERROR(Setup(context));
    WEDGE_RETURN_IF_ERROR(Trigger(context));
    Match(context);
    facts.observation = result.observation;
    facts.preconditions = result.preconditions;
    facts.stall_timed_out = context.stall_timed_out;
    ApplyDecision(Decide(scenario, result.expected, facts), result);
    clock.Say("verdict: " + std::string(scenario::VerdictName(result.verdict)));
    if (options.hold) Hold(context);
    Recover(context);
    return Teardown(context);
  }();
  clock.End();
  if (!status.ok()) {
    result.error = status.error().message();
    facts.error = result.error;
    facts.preconditions = result.preconditions;
    ApplyDecision(Decide(scenario, result.expected, facts), result);
    clock.Say("error: " + *result.error);
  }
  result.host_leftovers = SettledLeftovers(before, options.state_dir);
  if (options.keep_run_directory) {
    std::erase_if(result.host_leftovers,
                  [](const std::string& line) { return line.rfind("run directory", 0) == 0; });
  }
  result.host_clean = result.host_leftovers.empty();
  clock.Say(result.host_clean ? "host clean" : "host NOT clean: " + result.host_leftovers.front());
  result.duration_ms = sys::MonotonicMillis() - run_start;
  return result;
}

}  // namespace wedge::runner
