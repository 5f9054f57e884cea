#include "wedge/runner/runner.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#include "command_step.h"
#include "command_watch.h"
#include "flap_step.h"
#include "wedge/probe/task.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/fuse.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"
#include "wedge/sys/sandbox.h"
#include "wedge/sys/sysctl.h"

namespace wedge::runner {
namespace {

using scenario::Scenario;
using scenario::Step;
using scenario::Verdict;

// Fault tests of wedge itself need it to be at an exact point when they kill or interrupt it.
// With WEDGE_FAULT_STOP_AT=PHASE, wedge announces the point and stops itself (SIGSTOP) as it
// enters PHASE; the test then sends SIGKILL, or SIGINT followed by SIGCONT.
void StopAtFaultPoint(const std::string& phase) {
  const char* stop_at = std::getenv("WEDGE_FAULT_STOP_AT");
  if (stop_at == nullptr || phase != stop_at) return;
  std::cout << "fault point: stopped before " << phase << std::endl;
  ::raise(SIGSTOP);
}

// Phases are timed and announced; a failing phase ends the run with `error` set.
class PhaseClock {
 public:
  PhaseClock(report::RunResult& result, const RunOptions& options, const std::string& name)
      : result_(result), options_(options), name_(name) {}

  void Begin(const std::string& phase, const std::string& what) {
    End();
    StopAtFaultPoint(phase);
    phase_ = phase;
    started_ = sys::MonotonicMillis();
    Say(what);
  }
  void End() {
    if (phase_.empty()) return;
    result_.phases.push_back({phase_, sys::MonotonicMillis() - started_});
    phase_.clear();
  }
  void Say(const std::string& line) const {
    if (options_.progress != nullptr) *options_.progress << "[" << name_ << "] " << line << "\n";
    if (options_.progress != nullptr) options_.progress->flush();
  }

 private:
  report::RunResult& result_;
  const RunOptions& options_;
  std::string name_;
  std::string phase_;
  std::int64_t started_ = 0;
};

std::string NewRunId(const std::string& scenario_name) {
  static std::atomic<int> counter{0};
  return scenario_name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::vector<std::string> FixtureArgv(const scenario::Fixture& fixture, const RunOptions& options,
                                     const std::filesystem::path& run_dir) {
  const auto& fuse = fixture.fuse_daemon;
  std::vector<std::string> argv = {(options.fixtures_dir / "wedge-fuse").string(), "--mountpoint",
                                   (run_dir / fuse.mountpoint).string(), "--file", fuse.file};
  if (fuse.holder_thread) argv.push_back("--holder-thread");
  argv.push_back("--flush");
  argv.push_back(fuse.flush == scenario::FuseDaemonFixture::Flush::kReply ? "reply" : "never");
  return argv;
}

// The processes a scenario owns right now: its init, what it spawned, and whatever is in its
// cgroup. The init is listed explicitly: once it is in exit_notify (zap_pid_ns_processes) it
// has already left its cgroup.
std::vector<pid_t> ScenarioProcesses(const sys::Sandbox& sandbox, const sys::ScopedCgroup& cgroup,
                                     const std::map<pid_t, std::string>& labels) {
  std::vector<pid_t> pids;
  auto add = [&](pid_t pid) {
    if (std::find(pids.begin(), pids.end(), pid) == pids.end() &&
        std::filesystem::exists("/proc/" + std::to_string(pid))) {
      pids.push_back(pid);
    }
  };
  if (!sandbox.InitExited()) add(sandbox.init_pid());
  for (const auto& [pid, label] : labels) {
    if (pid != sandbox.init_pid()) add(pid);
  }
  for (pid_t pid : cgroup.Processes()) add(pid);
  return pids;
}

struct StallOutcome {
  enum class Kind { kStalled, kAllExited, kTimedOut, kInterrupted } kind = Kind::kTimedOut;
  std::int64_t after_ms = 0;        // from the end of the trigger to the decision
  std::int64_t quiet_since_ms = 0;  // when the activity stopped changing
};

// Watches /proc until nothing changes for `settle_ms` (a stall) or everything has exited.
// A stall is observed, not assumed: state, wchan, CPU time and context switches of every task
// must be identical across every sample of the settle window.
StallOutcome WaitForStall(const scenario::StallDetection& stall, const sys::Sandbox& sandbox,
                          const sys::ScopedCgroup& cgroup,
                          const std::map<pid_t, std::string>& labels) {
  StallOutcome outcome;
  const std::int64_t start = sys::MonotonicMillis();
  probe::SettleWatch settle(stall.settle_ms, start);
  for (;;) {
    const std::int64_t now = sys::MonotonicMillis();
    outcome.after_ms = now - start;
    if (sys::Interrupted()) {
      outcome.kind = StallOutcome::Kind::kInterrupted;
      return outcome;
    }
    std::vector<pid_t> pids = ScenarioProcesses(sandbox, cgroup, labels);
    if (sandbox.InitExited() && cgroup.Processes().empty()) {
      outcome.kind = StallOutcome::Kind::kAllExited;
      return outcome;
    }
    if (settle.Settled(probe::ReadActivity(pids), now)) {
      outcome.kind = StallOutcome::Kind::kStalled;
      outcome.quiet_since_ms = settle.quiet_since_ms() - start;
      return outcome;
    }
    if (now - start >= stall.timeout_ms) {
      outcome.kind = StallOutcome::Kind::kTimedOut;
      return outcome;
    }
    ::usleep(static_cast<useconds_t>(stall.poll_interval_ms) * 1000);
  }
}

std::string SignalNameOf(int signo) { return probe::SignalName(signo); }

}  // namespace

std::vector<std::string> UnmetRequirements(const Scenario& scenario) {
  std::vector<std::string> unmet;
  for (scenario::Requirement requirement : scenario.requires_) {
    switch (requirement) {
      case scenario::Requirement::kRoot:
        if (::geteuid() != 0) unmet.push_back("root: wedge must run as root (euid 0)");
        break;
      case scenario::Requirement::kFuseDevice: {
        struct stat st {};
        if (::stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
          unmet.push_back(
              "fuse-device: /dev/fuse is missing (modprobe fuse; apt-get install fuse3)");
        }
        break;
      }
      case scenario::Requirement::kFusectl: {
        Result<std::string> filesystems = sys::ReadFile("/proc/filesystems");
        if (!filesystems.ok() || filesystems->find("\tfusectl\n") == std::string::npos) {
          unmet.push_back(
              "fusectl: the kernel has no fusectl filesystem to abort FUSE connections");
        }
        break;
      }
      case scenario::Requirement::kPidsCgroup:
        if (Result<std::filesystem::path> pids = sys::PidsHierarchy(); !pids.ok()) {
          unmet.push_back("pids-cgroup: no pids cgroup controller is mounted (" +
                          pids.error().message() + ")");
        }
        break;
      case scenario::Requirement::kSeccomp: {
        Result<std::string> status = sys::ReadFile("/proc/self/status");
        Result<std::string> actions = sys::ReadFile("/proc/sys/kernel/seccomp/actions_avail");
        if (!status.ok() || status->find("\nSeccomp:") == std::string::npos || !actions.ok() ||
            actions->find("kill_process") == std::string::npos) {
          unmet.push_back(
              "seccomp: the kernel lacks seccomp filters with kill_process "
              "(CONFIG_SECCOMP_FILTER)");
        }
        break;
      }
      case scenario::Requirement::kKernelStacks:
        if (!sys::ReadFile("/proc/self/stack").ok()) {
          unmet.push_back(
              "kernel-stacks: /proc/PID/stack is not readable (needs root and "
              "CONFIG_STACKTRACE)");
        }
        break;
    }
  }
  return unmet;
}

namespace {

bool NeedsSandbox(const Scenario& scenario) {
  // Only process scenarios (spawn, kill, wait-for-stall) run things in a sandbox; commands and
  // flaps act on the private stack, which has a sandbox of its own.
  return std::any_of(scenario.steps.begin(), scenario.steps.end(), [](const Step& step) {
    return step.action == Step::Action::kSpawn || step.action == Step::Action::kKill ||
           step.action == Step::Action::kWaitForStall;
  });
}

// The rlimit a command step runs with: pinned by the step, else inherited from wedge.
rlimit EffectiveRlimit(const Scenario& scenario, const std::string& command, int resource) {
  for (const Step& step : scenario.steps) {
    if (step.action != Step::Action::kRunCommand || step.name != command) continue;
    for (const auto& limit : step.confinement.rlimits) {
      if (limit.resource == resource) return rlimit{limit.soft, limit.hard};
    }
  }
  rlimit own{};
  ::getrlimit(resource, &own);
  return own;
}

std::string RlimitValue(rlim_t value) {
  return value == RLIM_INFINITY ? "unlimited" : std::to_string(value);
}

std::vector<report::PreconditionResult> CheckPreconditions(const Scenario& scenario) {
  std::vector<report::PreconditionResult> results;
  for (const scenario::Precondition& precondition : scenario.preconditions) {
    report::PreconditionResult result;
    result.name = precondition.name;
    result.why = precondition.why;
    switch (precondition.kind) {
      case scenario::Precondition::Kind::kPidsLimitHit:
      case scenario::Precondition::Kind::kPipeCapacityAtMost:
        continue;  // observed while the steps run: ObservedPreconditions
      case scenario::Precondition::Kind::kRlimitSoftBelowHard: {
        rlimit limit = EffectiveRlimit(scenario, precondition.command, precondition.resource);
        result.held = limit.rlim_cur < limit.rlim_max;
        result.detail = precondition.rlimit + " of " + precondition.command + " is " +
                        RlimitValue(limit.rlim_cur) + ":" + RlimitValue(limit.rlim_max) +
                        (result.held ? " (soft below hard)" : " (soft not below hard)");
        break;
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace

Suite::Suite(RunOptions options) : options_(std::move(options)) {}

Suite::~Suite() { TearDown(); }

Result<stack::DockerStack*> Suite::SharedStack() {
  if (stack_) return stack_.get();
  if (!journal_) {
    WEDGE_ASSIGN_OR_RETURN(journal_, sys::Journal::Create(options_.state_dir, NewRunId("suite")));
  }
  const std::filesystem::path run_dir = options_.state_dir / "runs" / journal_->run_id();
  WEDGE_RETURN_IF_ERROR(journal_->Record(sys::DirectoryChange{run_dir}));
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec) return Error("create_directories('" + run_dir.string() + "'): " + ec.message());
  stack::StackOptions stack_options;
  stack_options.binaries = options_.binaries;
  stack_options.run_directory = run_dir;
  stack_options.fixtures_dir = options_.fixtures_dir;
  WEDGE_ASSIGN_OR_RETURN(stack_, stack::DockerStack::Start(*journal_, stack_options));
  WEDGE_RETURN_IF_ERROR(stack_->EnsureBusyboxImage());
  return stack_.get();
}

std::vector<std::string> Suite::TearDown() {
  std::vector<std::string> lines;
  if (stack_) {
    if (Status stopped = stack_->Stop(); !stopped.ok()) {
      lines.push_back("stopping the shared stack: " + stopped.error().message());
    }
    stack_.reset();
    lines.push_back("stopped the shared private docker stack");
  }
  if (journal_) {
    if (Status undone = journal_->UndoAll(); !undone.ok()) {
      lines.push_back("undoing the suite's journal: " + undone.error().message());
    }
    for (const auto& line : journal_->undo_log()) lines.push_back(line);
    journal_.reset();
  }
  return lines;
}

report::RunResult RunScenario(const Scenario& scenario, Suite& suite) {
  const RunOptions& options = suite.options();
  report::RunResult result;
  result.scenario = scenario.name;
  result.file = scenario.file.string();
  result.expected = options.expect_override.value_or(scenario.expected);
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

  // Everything below is owned by RAII objects declared in mutation order, so they are undone
  // in reverse order on every path out of this block: success, error or interruption.
  auto run = [&]() -> Status {
    clock.Begin("setup", "setting up");
    const std::string run_id = NewRunId(scenario.name);
    WEDGE_ASSIGN_OR_RETURN(std::unique_ptr<sys::Journal> journal,
                           sys::Journal::Create(options.state_dir, run_id));
    const std::filesystem::path run_dir = options.state_dir / "runs" / run_id;
    WEDGE_ASSIGN_OR_RETURN(std::uint64_t run_dir_seq,
                           journal->Record(sys::DirectoryChange{run_dir}));
    std::error_code ec;
    std::filesystem::create_directories(run_dir, ec);
    if (ec) return Error("create_directories('" + run_dir.string() + "'): " + ec.message());
    for (const auto& fixture : scenario.fixtures) {
      std::filesystem::create_directories(run_dir / fixture.fuse_daemon.mountpoint, ec);
    }
    struct KeepOrRemove {
      sys::Journal& journal;
      std::uint64_t seq;
      bool keep;
      ~KeepOrRemove() {
        if (keep) {
          (void)journal.Forget(seq);
        } else {
          (void)journal.Undo(seq);
        }
      }
    };
    std::unique_ptr<KeepOrRemove> run_dir_owner(
        new KeepOrRemove{*journal, run_dir_seq, options.keep_run_directory});

    std::unique_ptr<sys::ScopedMount> fusectl;
    if (std::find(scenario.requires_.begin(), scenario.requires_.end(),
                  scenario::Requirement::kFusectl) != scenario.requires_.end()) {
      WEDGE_ASSIGN_OR_RETURN(
          fusectl, sys::ScopedMount::EnsureMounted(*journal, "fusectl", sys::kFusectlDirectory));
      if (fusectl->mounted_by_wedge()) clock.Say("mounted fusectl on /sys/fs/fuse/connections");
    }
    std::vector<std::unique_ptr<sys::ScopedSysctl>> sysctls;
    for (const auto& [name, value] : scenario.isolation.sysctls) {
      WEDGE_ASSIGN_OR_RETURN(auto sysctl, sys::ScopedSysctl::Set(*journal, name, value));
      clock.Say("sysctl " + name + " = " + value + " (was " + sysctl->old_value() + ")");
      sysctls.push_back(std::move(sysctl));
    }
    std::unique_ptr<sys::ScopedCgroup> cgroup;
    std::unique_ptr<sys::Sandbox> sandbox;
    std::map<pid_t, std::string> labels;
    if (NeedsSandbox(scenario)) {
      // A sibling of a fresh stack's wedge/RUN/stack, so the sandbox's pids.max never limits
      // the daemons.
      WEDGE_ASSIGN_OR_RETURN(cgroup,
                             sys::ScopedCgroup::Create(*journal, "wedge/" + run_id + "/sandbox",
                                                       scenario.isolation.pids_max));
      sys::SandboxOptions sandbox_options;
      sandbox_options.user_namespace = scenario.isolation.user_namespace;
      sandbox_options.pid_namespace = scenario.isolation.pid_namespace;
      sandbox_options.mount_namespace = scenario.isolation.mount_namespace;
      for (const auto& limit : scenario.isolation.rlimits) {
        sandbox_options.rlimits.push_back({limit.resource, rlimit{limit.soft, limit.hard}});
      }
      sandbox_options.init_binary = options.fixtures_dir / "wedge-init";
      sandbox_options.log_directory = run_dir;
      WEDGE_ASSIGN_OR_RETURN(sandbox, sys::Sandbox::Start(*journal, *cgroup, sandbox_options));
      labels[sandbox->init_pid()] = "sandbox-init";
      clock.Say("sandbox init is pid " + std::to_string(sandbox->init_pid()) + " in cgroup " +
                cgroup->directory().string());
    }
    std::unique_ptr<stack::DockerStack> fresh_stack;
    // Declared after the stack so that it is destroyed first: it drains what it watched.
    std::unique_ptr<CommandWatch> command_watch;
    std::unique_ptr<Containers> containers;  // the containers the steps name, found once each
    stack::DockerStack* docker_stack = shared_stack;
    if (scenario.stack.required && scenario.stack.fresh) {
      stack::StackOptions stack_options;
      stack_options.binaries = options.binaries;
      stack_options.run_directory = run_dir;
      stack_options.fixtures_dir = options.fixtures_dir;
      WEDGE_ASSIGN_OR_RETURN(fresh_stack, stack::DockerStack::Start(*journal, stack_options));
      if (scenario.stack.busybox_image) WEDGE_RETURN_IF_ERROR(fresh_stack->EnsureBusyboxImage());
      docker_stack = fresh_stack.get();
      clock.Say("fresh private docker stack up in " + std::to_string(docker_stack->startup_ms()) +
                " ms");
    }
    if (docker_stack != nullptr) {
      for (const auto& [name, path] : options.binaries.paths) result.binaries[name] = path;
    }
    result.preconditions = CheckPreconditions(scenario);
    for (const auto& precondition : result.preconditions) {
      clock.Say("precondition " + precondition.name + ": " +
                (precondition.held ? "holds" : "does not hold") + " (" + precondition.detail + ")");
    }

    clock.Begin("trigger", "triggering");
    std::map<std::string, pid_t> pids_by_label;
    if (sandbox) pids_by_label["sandbox-init"] = sandbox->init_pid();
    std::int64_t trigger_end = sys::MonotonicMillis();
    std::optional<StallOutcome> stall;
    probe::TreeSnapshot snapshot;
    std::vector<signature::ObservedCommand> commands;
    std::vector<signature::ObservedSeries> flap_series;
    for (const Step& step : scenario.steps) {
      if (sys::Interrupted()) return Error("interrupted by " + SignalNameOf(sys::Interrupted()));
      switch (step.action) {
        case Step::Action::kSpawn: {
          const scenario::Fixture* fixture = scenario.FindFixture(step.fixture);
          if (fixture == nullptr) return Error("no fixture named " + step.fixture);
          WEDGE_ASSIGN_OR_RETURN(
              sys::SpawnedProcess spawned,
              sandbox->Spawn(step.name, FixtureArgv(*fixture, options, run_dir), 10000));
          labels[spawned.pid] = spawned.label;
          pids_by_label[spawned.label] = spawned.pid;
          clock.Say("started " + step.name + " (" + fixture->name + ") as pid " +
                    std::to_string(spawned.pid) + ": " + spawned.ready_line);
          break;
        }
        case Step::Action::kKill: {
          auto target = pids_by_label.find(step.target);
          if (target == pids_by_label.end()) return Error("no process named " + step.target);
          if (target->second == sandbox->init_pid()) {
            WEDGE_RETURN_IF_ERROR(sandbox->init().SendSignal(step.signal));
          } else if (::kill(target->second, step.signal) != 0) {
            return ErrnoError("kill(" + std::to_string(target->second) + ", " +
                              SignalNameOf(step.signal) + ")");
          }
          clock.Say("sent " + SignalNameOf(step.signal) + " to " + step.target + " (pid " +
                    std::to_string(target->second) + ")");
          trigger_end = sys::MonotonicMillis();
          break;
        }
        case Step::Action::kRunCommand: {
          if (docker_stack == nullptr) return Error(step.name + " needs the private docker stack");
          const std::filesystem::path& binary = options.binaries.Path(step.binary);
          Step substituted = step;
          for (auto& arg : substituted.args) {
            for (size_t at; (at = arg.find("${image}")) != std::string::npos;) {
              WEDGE_ASSIGN_OR_RETURN(std::string image, docker_stack->EnsureBusyboxImage());
              arg.replace(at, 8, image);
            }
          }
          std::map<std::string, std::string> env = docker_stack->ClientEnvironment();
          env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
          clock.Say("running " + step.name + ": " + binary.string() + " " +
                    (step.args.empty() ? "" : step.args.front() + " ..."));
          if (!containers) containers = std::make_unique<Containers>(*docker_stack);
          WEDGE_ASSIGN_OR_RETURN(ObservedPreconditions observed,
                                 ObservedPreconditions::Before(scenario, step, *containers));
          if (step.watch) {
            WEDGE_ASSIGN_OR_RETURN(ContainerProcesses watched,
                                   containers->Find(step.watch->container));
            WEDGE_ASSIGN_OR_RETURN(
                command_watch,
                CommandWatch::Start(substituted, binary, env, *journal, watched, run_dir,
                                    [&](const std::string& line) { clock.Say(line); }));
            clock.Begin("stall", "waiting for " + step.watch->comm + " to stall (settle " +
                                     std::to_string(step.watch->settle_ms) + " ms, poll every " +
                                     std::to_string(step.watch->poll_interval_ms) + " ms) or " +
                                     step.name + " to return");
            CommandWatch::Outcome outcome = command_watch->WaitForStallOrReturn();
            // The hold (at start) and each pipe resized while watching.
            result.injections = command_watch->injections();
            if (outcome.interrupted) {
              return Error("interrupted by " + SignalNameOf(sys::Interrupted()));
            }
            if (outcome.stalled) {
              result.stall_detected_after_ms = outcome.after_ms;
              clock.Say("stalled: " + step.watch->comm + " unchanged for " +
                        std::to_string(step.watch->settle_ms) + " ms while " + step.name +
                        " has not returned (" + std::to_string(outcome.after_ms) +
                        " ms after it started)");
              clock.Begin("capture", "capturing the signature");
              snapshot = std::move(outcome.snapshot);
              for (const auto& [pid, label] : outcome.labels) labels[pid] = label;
              for (auto& line : observed.After(result.preconditions)) clock.Say(line);
              signature::ObservedCommand running;
              running.command = step.name;
              running.binary = binary.string();
              running.argv.push_back(binary.string());
              for (const auto& arg : substituted.args) running.argv.push_back(arg);
              running.running_at_capture = true;
              running.duration_ms = outcome.after_ms;
              commands.push_back(std::move(running));
              trigger_end = sys::MonotonicMillis();
              break;
            }
            clock.Say(step.name + " returned before anything stalled");
          }
          std::optional<signature::ObservedCommand> ran;
          if (command_watch && step.watch) {
            ran = command_watch->Finish();
          } else {
            WEDGE_ASSIGN_OR_RETURN(ran, RunCommandStep(substituted, binary, env, *journal));
          }
          signature::ObservedCommand command = std::move(*ran);
          for (auto& line : observed.After(result.preconditions)) clock.Say(line);
          std::string ended = command.timed_out ? "timed out"
                              : command.killed_by
                                  ? "killed by " + *command.killed_by
                                  : "exit " + std::to_string(command.exit_code.value_or(-1));
          if (command.refused_syscall) {
            ended += " (seccomp refused " + *command.refused_syscall + ", nr " +
                     std::to_string(command.refused_syscall_number.value_or(-1)) + ")";
          }
          clock.Say(step.name + " ended: " + ended + " after " +
                    std::to_string(command.duration_ms) + " ms");
          commands.push_back(std::move(command));
          trigger_end = sys::MonotonicMillis();
          break;
        }
        case Step::Action::kFlap: {
          if (docker_stack == nullptr) return Error(step.name + " needs the private docker stack");
          // A rate bound on the "after" window needs it to span whole seconds.
          std::int64_t min_after_ms = 0;
          for (const signature::Signature* signature : {&scenario.bug, &scenario.healthy}) {
            for (const auto& rate : signature->rates) {
              if (rate.window == "after") min_after_ms = 2000;
            }
          }
          WEDGE_ASSIGN_OR_RETURN(FlapOutcome flap,
                                 RunFlapStep(step, *docker_stack, run_dir, min_after_ms,
                                             [&](const std::string& line) { clock.Say(line); }));
          for (auto& figure : flap.figures) result.figures.push_back(std::move(figure));
          for (auto& series : flap.series) flap_series.push_back(std::move(series));
          result.recovery.push_back("containerd serving again; docker ps answered " +
                                    flap.recovered_text);
          trigger_end = sys::MonotonicMillis();
          break;
        }
        case Step::Action::kWaitForStall: {
          clock.Begin("stall", "waiting for the stall (settle " +
                                   std::to_string(scenario.stall.settle_ms) + " ms, poll every " +
                                   std::to_string(scenario.stall.poll_interval_ms) + " ms)");
          stall = WaitForStall(scenario.stall, *sandbox, *cgroup, labels);
          result.stall_detected_after_ms = sys::MonotonicMillis() - trigger_end;
          switch (stall->kind) {
            case StallOutcome::Kind::kInterrupted:
              return Error("interrupted by " + SignalNameOf(sys::Interrupted()));
            case StallOutcome::Kind::kStalled:
              clock.Say("stalled: nothing changed for " + std::to_string(scenario.stall.settle_ms) +
                        " ms (quiet " + std::to_string(stall->quiet_since_ms) +
                        " ms after the trigger)");
              break;
            case StallOutcome::Kind::kAllExited:
              clock.Say("every process of the sandbox exited after " +
                        std::to_string(stall->after_ms) + " ms");
              break;
            case StallOutcome::Kind::kTimedOut:
              clock.Say("neither stalled nor exited within " +
                        std::to_string(scenario.stall.timeout_ms) + " ms");
              break;
          }
          clock.Begin("capture", "capturing the signature");
          if (stall->kind != StallOutcome::Kind::kAllExited) {
            snapshot = probe::ReadProcesses(ScenarioProcesses(*sandbox, *cgroup, labels),
                                            /*peek_pipes=*/true);
          }
          for (auto& process : snapshot.processes) {
            if (auto label = labels.find(process.pid); label != labels.end()) {
              process.label = label->second;
            }
          }
          break;
        }
      }
    }

    clock.Begin("match", "matching the signatures");
    const bool all_exited = stall && stall->kind == StallOutcome::Kind::kAllExited;
    result.observation = signature::Observe(snapshot, all_exited);
    result.observation.commands = std::move(commands);
    result.observation.series = std::move(flap_series);
    result.evidence = std::move(snapshot);
    result.bug_match = signature::Match(scenario.bug, result.observation);
    result.healthy_match = signature::Match(scenario.healthy, result.observation);
    const report::PreconditionResult* failed_precondition = nullptr;
    for (const auto& precondition : result.preconditions) {
      if (!precondition.held && failed_precondition == nullptr) failed_precondition = &precondition;
    }
    if (result.bug_match.matched) {
      result.verdict = Verdict::kReproduced;
      result.reason = "the bug signature matched: " + scenario.bug.description;
    } else if (failed_precondition != nullptr) {
      // Honest about why: this configuration cannot show the bug, whatever else happened.
      result.verdict = Verdict::kNotReproduced;
      result.reason = "precondition " + failed_precondition->name +
                      " failed: " + failed_precondition->detail +
                      "; the bug needs it: " + failed_precondition->why;
    } else if (result.healthy_match.matched) {
      result.verdict = Verdict::kNotReproduced;
      result.reason = "the healthy signature matched: " + scenario.healthy.description;
    } else {
      result.verdict = Verdict::kUnexplained;
      result.reason = stall && stall->kind == StallOutcome::Kind::kTimedOut
                          ? "the sandbox neither stalled nor exited within " +
                                std::to_string(scenario.stall.timeout_ms) + " ms"
                          : "neither the bug nor the healthy signature matched";
    }
    const signature::MatchResult& decisive =
        result.verdict == Verdict::kNotReproduced ? result.healthy_match : result.bug_match;
    result.signature_hash = signature::Hash(decisive, result.observation);
    clock.Say("verdict: " + std::string(scenario::VerdictName(result.verdict)));

    if (command_watch) {
      clock.Begin("recover", "recovering");
      for (const auto& step : scenario.recovery) {
        if (step.action != scenario::RecoveryStep::Action::kDrainPipes) continue;
        for (auto& line : command_watch->DrainPipes(std::chrono::seconds(10))) {
          result.recovery.push_back(std::move(line));
        }
      }
      // How the watched command ended once recovery freed it, for the report; the match above
      // saw it still running.
      signature::ObservedCommand ended = command_watch->Finish();
      for (auto& command : result.observation.commands) {
        if (command.command == ended.command && command.running_at_capture) command = ended;
      }
      if (ended.running_at_capture) {
        result.recovery.push_back(ended.command + " returned after recovery: " +
                                  (ended.exit_code ? "exit " + std::to_string(*ended.exit_code)
                                                   : std::string("no exit status")) +
                                  ", " + std::to_string(ended.duration_ms) +
                                  " ms after it started");
      }
      for (const auto& line : result.recovery) clock.Say(line);
    }
    if (sandbox) {
      clock.Begin("recover", "recovering");
      const std::int64_t recover_start = sys::MonotonicMillis();
      for (const auto& step : scenario.recovery) {
        std::vector<pid_t> pids = ScenarioProcesses(*sandbox, *cgroup, labels);
        switch (step.action) {
          case scenario::RecoveryStep::Action::kAbortFuseConnections: {
            std::vector<unsigned> aborted = sys::AbortFuseConnectionsOf(pids, result.recovery);
            if (aborted.empty()) result.recovery.push_back("no FUSE connection left to abort");
            break;
          }
          case scenario::RecoveryStep::Action::kDrainPipes:
            break;  // done above, for the watched command
          case scenario::RecoveryStep::Action::kKillSandbox:
            for (pid_t pid : pids) ::kill(pid, SIGKILL);
            result.recovery.push_back("sent SIGKILL to " + std::to_string(pids.size()) +
                                      " process(es) of the sandbox");
            break;
        }
      }
      // Recovery is done when the init is reaped and the cgroup is empty; bounded, observed.
      const std::int64_t deadline = sys::MonotonicMillis() + 5000;
      while (!(sandbox->TryReap() && cgroup->Processes().empty())) {
        if (sys::MonotonicMillis() > deadline) {
          result.recovery.push_back("the sandbox did not exit within 5 s of recovery");
          break;
        }
        ::usleep(1000);
      }
      result.recovery.push_back("sandbox gone " +
                                std::to_string(sys::MonotonicMillis() - recover_start) +
                                " ms after recovery began");
      for (const auto& line : result.recovery) clock.Say(line);
    }

    clock.Begin("teardown", "tearing down");
    command_watch.reset();
    if (fresh_stack) {
      WEDGE_RETURN_IF_ERROR(fresh_stack->Stop());
      fresh_stack.reset();
    }
    sandbox.reset();
    if (cgroup) WEDGE_RETURN_IF_ERROR(cgroup->Remove());
    cgroup.reset();
    sysctls.clear();
    fusectl.reset();
    run_dir_owner.reset();
    WEDGE_RETURN_IF_ERROR(journal->UndoAll());
    for (const auto& line : journal->undo_log()) result.recovery.push_back("teardown: " + line);
    return OkStatus();
  };

  Status status = run();
  clock.End();
  if (!status.ok()) {
    result.error = status.error().message();
    result.verdict = Verdict::kUnexplained;
    if (result.reason.empty()) result.reason = "the run failed: " + *result.error;
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

HostState CaptureHostState(const std::filesystem::path& state_dir) {
  HostState state;
  std::error_code ec;
  for (pid_t number : probe::ListProcesses()) {
    const std::string pid = std::to_string(number);
    const std::filesystem::path dir = "/proc/" + pid;
    if (Result<std::string> comm = sys::ReadFile(dir / "comm"); comm.ok()) {
      const std::string name = sys::TrimTrailing(*comm);
      if (name == "dockerd" || name == "containerd" || name.rfind("containerd-shim", 0) == 0 ||
          name == "runc" || name.rfind("runc:[", 0) == 0) {
        state.stack_processes.insert(pid + "(" + name + ")");
      }
      // wedge's own helpers: a tracer, a sandbox's init, a guest. None may outlive its run,
      // wherever it sits (an exiting pid-namespace init has already left its cgroup).
      // A zombie is left out: it holds nothing but its pid, and reaping it is its parent's job
      // (after wedge dies, the machine's init, which may take its time).
      if (name == "strace" || name == "wedge-init" || name.rfind("qemu-system", 0) == 0) {
        Result<std::string> text = sys::ReadFile(dir / "stat");
        Result<probe::TaskStat> stat =
            text.ok() ? probe::ParseStat(*text) : Result<probe::TaskStat>(text.error());
        if (!stat.ok() || stat->state != 'Z') {
          state.helper_processes.insert(pid + "(" + name + ")");
        }
      }
    }
    for (const auto& task : std::filesystem::directory_iterator(dir / "task", ec)) {
      Result<std::string> text = sys::ReadFile(task.path() / "stat");
      if (!text.ok()) continue;
      Result<probe::TaskStat> stat = probe::ParseStat(*text);
      // Kernel threads are not wedge's to leave behind: a netns cleanup worker, for one, is
      // briefly in D after a stack stops.
      if (stat.ok() && stat->state == 'D' &&
          (stat->flags & *probe::TaskFlagBit("PF_KTHREAD")) == 0) {
        state.d_state_tasks.insert(task.path().filename().string() + "(" + stat->comm + ")");
      }
    }
  }
  state.fuse_connections = sys::ListFuseConnections();
  state.fusectl_mounted = sys::IsMountedAs(sys::kFusectlDirectory, "fusectl");
  if (Result<std::string> mounts = sys::ReadFile("/proc/self/mounts"); mounts.ok()) {
    std::istringstream lines(*mounts);
    std::string source, target, type, rest;
    while (lines >> source >> target >> type && std::getline(lines, rest)) {
      if (type == "fuse" || type.rfind("fuse.", 0) == 0) state.fuse_mounts.insert(target);
      state.mounts.insert(target + " (" + type + ")");
    }
  }
  // wedge's cgroups (wedge/...) and its containers' (wedge-docker-...), in every hierarchy.
  for (const auto& hierarchy : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    std::error_code inner;
    for (const auto& top : std::filesystem::directory_iterator(hierarchy.path(), inner)) {
      const std::string name = top.path().filename().string();
      if (!top.is_directory(inner) || name.rfind("wedge", 0) != 0) continue;
      state.wedge_cgroups.insert(top.path().string());
      for (const auto& entry : std::filesystem::recursive_directory_iterator(top.path(), inner)) {
        if (entry.is_directory(inner)) state.wedge_cgroups.insert(entry.path().string());
      }
    }
  }
  for (const auto& name : scenario::AllowedSysctls()) {
    if (Result<std::string> value = sys::ReadSysctl(name); value.ok()) state.sysctls[name] = *value;
  }
  for (const auto& entry : std::filesystem::directory_iterator(state_dir / "journal", ec)) {
    state.journals.insert(entry.path().filename().string());
  }
  for (const auto& entry : std::filesystem::directory_iterator(state_dir / "runs", ec)) {
    state.journals.insert("run directory " + entry.path().string());
  }
  return state;
}

std::vector<std::string> DescribeLeftovers(const HostState& before, const HostState& after) {
  std::vector<std::string> lines;
  for (const auto& task : after.d_state_tasks) {
    if (!before.d_state_tasks.contains(task)) lines.push_back("D-state task " + task);
  }
  for (unsigned c : after.fuse_connections) {
    if (!before.fuse_connections.contains(c)) {
      lines.push_back("FUSE connection " + std::to_string(c) + " still open");
    }
  }
  for (const auto& m : after.fuse_mounts) {
    if (!before.fuse_mounts.contains(m)) lines.push_back("FUSE mount " + m);
  }
  if (after.fusectl_mounted != before.fusectl_mounted) {
    lines.push_back(std::string("fusectl ") +
                    (after.fusectl_mounted ? "left mounted" : "unmounted"));
  }
  for (const auto& cg : after.wedge_cgroups) {
    if (!before.wedge_cgroups.contains(cg)) lines.push_back("cgroup " + cg);
  }
  for (const auto& [name, value] : after.sysctls) {
    auto was = before.sysctls.find(name);
    if (was != before.sysctls.end() && was->second != value) {
      lines.push_back("sysctl " + name + " is " + value + ", was " + was->second);
    }
  }
  for (const auto& process : after.helper_processes) {
    if (!before.helper_processes.contains(process)) lines.push_back("helper process " + process);
  }
  for (const auto& process : after.stack_processes) {
    if (!before.stack_processes.contains(process)) lines.push_back("stack process " + process);
  }
  for (const auto& mount : after.mounts) {
    if (!before.mounts.contains(mount)) lines.push_back("mount " + mount);
  }
  for (const auto& journal : after.journals) {
    if (!before.journals.contains(journal)) {
      lines.push_back(journal.rfind("run directory", 0) == 0 ? journal : "journal " + journal);
    }
  }
  return lines;
}

std::vector<std::string> SettledLeftovers(const HostState& before,
                                          const std::filesystem::path& state_dir,
                                          std::chrono::milliseconds settle) {
  const std::int64_t deadline = sys::MonotonicMillis() + settle.count();
  for (;;) {
    std::vector<std::string> leftovers = DescribeLeftovers(before, CaptureHostState(state_dir));
    if (leftovers.empty() || sys::MonotonicMillis() >= deadline) return leftovers;
    ::usleep(20000);
  }
}

Result<std::vector<std::string>> Cleanup(const std::filesystem::path& state_dir) {
  return sys::RecoverOrphanJournals(state_dir);
}

}  // namespace wedge::runner
