// Tests of the scenario loader: the real scenario files, the documented defaults, and a corpus
// of malformed files (tests/data/scenarios/malformed), each refused at an exact JSON pointer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/scenario/scenario.h"

namespace wedge::scenario {
namespace {

namespace fs = std::filesystem;

// Step `index` of `scenario` as kind T (a failed test, by exception, if it is another kind).
template <typename T>
const T& StepAs(const Scenario& scenario, std::size_t index) {
  return std::get<T>(scenario.steps.at(index));
}
// The command of run-command step `index`, watched or not.
const RunCommandStep& CommandAt(const Scenario& scenario, std::size_t index) {
  if (const RunCommandStep* command = CommandOf(scenario.steps.at(index))) return *command;
  return StepAs<RunCommandStep>(scenario, index);  // throws: not a run-command step
}
const CommandWatch& WatchOf(const Scenario& scenario, std::size_t index) {
  return StepAs<WatchedCommandStep>(scenario, index).watch;
}

const fs::path kScenarioDir = fs::path(WEDGE_SOURCE_DIR) / "scenarios";
const fs::path kMalformedDir = fs::path(WEDGE_TEST_DATA_DIR) / "scenarios" / "malformed";

std::string ReadText(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Fails the test, printing the error, unless `result` holds a scenario.
const Scenario& ExpectScenario(const std::variant<Scenario, LoadError>& result) {
  if (const auto* error = std::get_if<LoadError>(&result)) {
    ADD_FAILURE() << error->ToString();
    static const Scenario kEmpty;
    return kEmpty;
  }
  return std::get<Scenario>(result);
}

LoadError ExpectError(const std::variant<Scenario, LoadError>& result) {
  if (const auto* error = std::get_if<LoadError>(&result)) return *error;
  ADD_FAILURE() << "loaded, but an error was expected";
  return LoadError{};
}

std::variant<Scenario, LoadError> Parse(std::string_view text) {
  return ParseScenario(text, "test.json");
}

// The smallest valid scenario: everything optional omitted.
constexpr std::string_view kMinimal = R"({
  "wedge_scenario": 1,
  "name": "minimal",
  "summary": "nothing but the required keys",
  "steps": [{"action": "wait-for-stall"}],
  "signatures": {
    "bug": {"description": "init still there",
            "tasks": [{"role": "init", "select": {"process": "sandbox-init"}}]},
    "healthy": {"description": "all gone", "all_exited": true}
  },
  "expect": {"verdict": "not-reproduced", "reason": "nothing can hang"}
})";

// The smallest valid command scenario.
constexpr std::string_view kMinimalCommand = R"({
  "wedge_scenario": 1,
  "name": "minimal-command",
  "summary": "one command against the private stack",
  "requires": ["root"],
  "stack": {},
  "steps": [{"action": "run-command", "name": "version", "binary": "docker"}],
  "signatures": {
    "bug": {"description": "killed", "commands": [{"command": "version", "killed_by": "SIGKILL"}]},
    "healthy": {"description": "exits", "commands": [{"command": "version", "exit_code": 0}]}
  },
  "expect": {"verdict": "not-reproduced", "reason": "docker version exits"}
})";

// The smallest valid flap scenario: one flap step, rates only.
constexpr std::string_view kMinimalFlap = R"({
  "wedge_scenario": 1,
  "name": "minimal-flap",
  "summary": "containerd goes away once",
  "requires": ["root"],
  "stack": {"fresh": true},
  "steps": [{"action": "flap", "name": "flap", "target": "containerd", "how": "sigkill"}],
  "signatures": {
    "bug": {"description": "churn", "rates": [{"metric": "connect", "min_per_second": 50}]},
    "healthy": {"description": "calm", "rates": [{"metric": "connect", "max_per_second": 15}]}
  },
  "expect": {"verdict": "not-reproduced", "reason": "dockerd polls at 10/s"}
})";

// `text` with the first `from` replaced by `to`.
std::string Replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  std::size_t at = out.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

// kMinimalCommand whose step has these extra keys, e.g. R"("timeout_ms": 100)".
std::string MinimalCommandWith(std::string_view step_keys) {
  return Replaced(kMinimalCommand, R"("binary": "docker")",
                  R"("binary": "docker", )" + std::string(step_keys));
}

// kMinimal with `isolation` replaced by `isolation_json`.
std::string MinimalWithIsolation(std::string_view isolation_json) {
  std::string text(kMinimal);
  text.insert(text.find("\"steps\""), "\"isolation\": " + std::string(isolation_json) + ",\n  ");
  return text;
}

bool IsValidUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = byte < 0x80    ? 1
                         : byte >= 0xF0 ? 4
                         : byte >= 0xE0 ? 3
                         : byte >= 0xC2 ? 2
                                        : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// A scratch directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "wedge-scenario-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  fs::path Write(const std::string& name, std::string_view text) const {
    fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  fs::path path_;
};

// ---------------------------------------------------------------------------------------------
// The real scenario files.

TEST(FuseFlushPidnsTeardown, LoadsEveryPinnedKnob) {
  auto result = LoadScenarioFile(kScenarioDir / "fuse-flush-pidns-teardown.json");
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.file, kScenarioDir / "fuse-flush-pidns-teardown.json");
  EXPECT_EQ(scenario.name, "fuse-flush-pidns-teardown");
  ASSERT_EQ(scenario.references.size(), 3u);
  EXPECT_EQ(scenario.references[0].kind, "report");
  EXPECT_EQ(scenario.references[1].kind, "commit");
  EXPECT_EQ(scenario.references[1].id, "5a8bee63b10f");
  EXPECT_EQ(scenario.references[2].id, "91ec6c85599b");
  EXPECT_EQ(
      scenario.requires_,
      (std::vector<Requirement>{Requirement::kRoot, Requirement::kFuseDevice, Requirement::kFusectl,
                                Requirement::kPidsCgroup, Requirement::kKernelStacks}));

  const Isolation& isolation = scenario.isolation;
  EXPECT_FALSE(isolation.user_namespace);
  EXPECT_TRUE(isolation.pid_namespace);
  EXPECT_TRUE(isolation.mount_namespace);
  EXPECT_EQ(isolation.pids_max, 64);
  EXPECT_TRUE(isolation.sysctls.empty());
  ASSERT_EQ(isolation.rlimits.size(), 1u);
  EXPECT_EQ(isolation.rlimits[0].name, "RLIMIT_NOFILE");
  EXPECT_EQ(isolation.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(isolation.rlimits[0].soft, 1024u);
  EXPECT_EQ(isolation.rlimits[0].hard, 4096u);

  const Fixture* daemon = scenario.FindFixture("daemon");
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(std::holds_alternative<FuseDaemonFixture>(daemon->kind));
  const auto& fuse_daemon = std::get<FuseDaemonFixture>(daemon->kind);
  EXPECT_EQ(fuse_daemon.mountpoint, "mnt");
  EXPECT_EQ(fuse_daemon.file, "held");
  EXPECT_TRUE(fuse_daemon.holder_thread);
  EXPECT_EQ(fuse_daemon.flush, FuseDaemonFixture::Flush::kReply);

  ASSERT_EQ(scenario.steps.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<SpawnStep>(scenario.steps[0]));
  EXPECT_EQ(std::get<SpawnStep>(scenario.steps[0]).name, "daemon");
  EXPECT_EQ(std::get<SpawnStep>(scenario.steps[0]).fixture, "daemon");
  ASSERT_TRUE(std::holds_alternative<KillStep>(scenario.steps[1]));
  EXPECT_EQ(std::get<KillStep>(scenario.steps[1]).target, "sandbox-init");
  EXPECT_EQ(std::get<KillStep>(scenario.steps[1]).signal, SIGKILL);
  EXPECT_TRUE(std::holds_alternative<WaitForStallStep>(scenario.steps[2]));

  EXPECT_EQ(scenario.stall.poll_interval_ms, 2);
  EXPECT_EQ(scenario.stall.settle_ms, 50);
  EXPECT_EQ(scenario.stall.timeout_ms, 10000);
  ASSERT_EQ(scenario.recovery.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<AbortFuseConnections>(scenario.recovery[0]));
  EXPECT_TRUE(std::holds_alternative<KillSandbox>(scenario.recovery[1]));

  const signature::Signature& bug = scenario.bug;
  EXPECT_FALSE(bug.all_exited);
  ASSERT_EQ(bug.tasks.size(), 3u);
  EXPECT_EQ(bug.tasks[0].role, "pidns-init");
  EXPECT_EQ(bug.tasks[0].select.process, "sandbox-init");
  EXPECT_EQ(bug.tasks[0].select.thread, signature::TaskSelector::Thread::kLeader);
  EXPECT_EQ(bug.tasks[0].states, std::set<char>{'S'});
  EXPECT_EQ(bug.tasks[0].stack, (std::vector<std::string>{"do_wait", "kernel_wait4",
                                                          "zap_pid_ns_processes", "do_exit"}));
  EXPECT_EQ(bug.tasks[1].states, std::set<char>{'Z'});
  const signature::TaskExpectation& stuck = bug.tasks[2];
  EXPECT_EQ(stuck.role, "stuck-thread");
  EXPECT_EQ(stuck.select.process, "daemon");
  EXPECT_EQ(stuck.select.comm, "fuse-holder");
  EXPECT_EQ(stuck.select.thread, signature::TaskSelector::Thread::kNonLeader);
  EXPECT_EQ(stuck.states, std::set<char>{'D'});
  EXPECT_EQ(stuck.stack, (std::vector<std::string>{"request_wait_answer", "fuse_flush",
                                                   "filp_close", "put_files_struct", "do_exit"}));
  EXPECT_EQ(stuck.shd_pending, std::vector<std::string>{"SIGKILL"});
  EXPECT_TRUE(stuck.sig_pending.empty());
  EXPECT_EQ(stuck.task_flags, std::vector<std::string>{"PF_EXITING"});
  EXPECT_TRUE(scenario.healthy.all_exited);
  EXPECT_TRUE(scenario.healthy.tasks.empty());

  EXPECT_EQ(scenario.expected, Verdict::kReproduced);
  EXPECT_NE(scenario.expected_reason.find("91ec6c85599b"), std::string::npos);
}

// The controls of both FUSE scenarios are data: one fixture knob and the expected verdict.
TEST(FuseFlushControls, EachDiffersFromItsScenarioOnlyInOneHolderKnobAndTheVerdict) {
  using HolderOpen = FuseDaemonFixture::HolderOpen;
  for (const std::string base : {"fuse-flush-pidns-teardown", "fuse-flush-docker-kill"}) {
    auto main_result = LoadScenarioFile(kScenarioDir / (base + ".json"));
    const Scenario& main = ExpectScenario(main_result);
    const auto& main_daemon = std::get<FuseDaemonFixture>(main.FindFixture("daemon")->kind);
    EXPECT_EQ(main_daemon.holder_open, HolderOpen::kRead) << base;
    EXPECT_FALSE(main_daemon.holder_closes) << base;
    for (const std::string control_name : {"holder-closes", "o-path"}) {
      SCOPED_TRACE(base + "-" + control_name);
      auto control_result = LoadScenarioFile(kScenarioDir / (base + "-" + control_name + ".json"));
      const Scenario& control = ExpectScenario(control_result);
      EXPECT_EQ(control.name, base + "-" + control_name);
      const auto& daemon = std::get<FuseDaemonFixture>(control.FindFixture("daemon")->kind);
      EXPECT_TRUE(daemon.holder_thread);
      EXPECT_EQ(daemon.holder_closes, control_name == "holder-closes");
      EXPECT_EQ(daemon.holder_open,
                control_name == "o-path" ? HolderOpen::kPath : HolderOpen::kRead);
      EXPECT_EQ(daemon.flush, main_daemon.flush);
      EXPECT_EQ(control.expected, Verdict::kNotReproduced);
      EXPECT_EQ(control.steps.size(), main.steps.size());
      EXPECT_EQ(control.recovery.size(), main.recovery.size());
      EXPECT_EQ(control.requires_, main.requires_);
      EXPECT_EQ(control.stack.required, main.stack.required);
      ASSERT_EQ(control.bug.tasks.size(), main.bug.tasks.size());
      for (size_t i = 0; i < main.bug.tasks.size(); ++i) {
        EXPECT_EQ(control.bug.tasks[i].role, main.bug.tasks[i].role);
        EXPECT_EQ(control.bug.tasks[i].states, main.bug.tasks[i].states);
        EXPECT_EQ(control.bug.tasks[i].stack, main.bug.tasks[i].stack);
      }
      EXPECT_EQ(control.bug.commands.size(), main.bug.commands.size());
      EXPECT_EQ(control.healthy.all_exited, main.healthy.all_exited);
      EXPECT_EQ(control.healthy.commands.size(), main.healthy.commands.size());
    }
  }
}

TEST(StackExpectations, AReleaseMayBeExpectedToDifferAndOthersKeepTheDefault) {
  // Seed 002 as the release matrix measured it: only bookworm's CLI (Go 1.19) calls setrlimit.
  auto loaded = LoadScenarioFile(kScenarioDir / "seccomp-resources-sigsys.json");
  const Scenario& scenario = ExpectScenario(loaded);
  EXPECT_EQ(scenario.ExpectedOn("bullseye"), Verdict::kNotReproduced);
  EXPECT_NE(scenario.ExpectedReasonOn("bullseye").find("Go 1.15.15"), std::string::npos);
  EXPECT_EQ(scenario.ExpectedOn("trixie"), Verdict::kNotReproduced);
  EXPECT_EQ(scenario.ExpectedOn("sid"), Verdict::kNotReproduced);
  EXPECT_EQ(scenario.ExpectedOn("bookworm"), Verdict::kReproduced);
  EXPECT_EQ(scenario.ExpectedOn(""), Verdict::kReproduced);
  EXPECT_EQ(scenario.ExpectedReasonOn("host"), scenario.expected_reason);
}

TEST(FuseFlushPidnsTeardown, NoHolderVariantDiffersOnlyInTheHolderAndTheVerdict) {
  auto main_result = LoadScenarioFile(kScenarioDir / "fuse-flush-pidns-teardown.json");
  auto control_result = LoadScenarioFile(kScenarioDir / "fuse-flush-pidns-teardown-no-holder.json");
  const Scenario& main = ExpectScenario(main_result);
  const Scenario& control = ExpectScenario(control_result);
  EXPECT_EQ(control.name, "fuse-flush-pidns-teardown-no-holder");
  ASSERT_NE(control.FindFixture("daemon"), nullptr);
  EXPECT_FALSE(std::get<FuseDaemonFixture>(control.FindFixture("daemon")->kind).holder_thread);
  EXPECT_EQ(control.expected, Verdict::kNotReproduced);
  EXPECT_TRUE(control.healthy.all_exited);
  // Everything else is pinned the same, so the verdicts can be compared.
  EXPECT_EQ(control.isolation.pids_max, main.isolation.pids_max);
  EXPECT_EQ(control.isolation.rlimits.size(), main.isolation.rlimits.size());
  EXPECT_EQ(control.steps.size(), main.steps.size());
  EXPECT_EQ(control.bug.tasks.size(), main.bug.tasks.size());
  EXPECT_EQ(control.requires_, main.requires_);
}

TEST(FuseFlushDockerKill, SpawnsTheDaemonInAContainerAndWatchesItsKill) {
  auto result = LoadScenarioFile(kScenarioDir / "fuse-flush-docker-kill.json");
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_TRUE(scenario.stack.fresh);
  ASSERT_EQ(scenario.steps.size(), 3u);
  const auto& spawn = std::get<SpawnStep>(scenario.steps[0]);
  ASSERT_TRUE(spawn.container.has_value());
  EXPECT_EQ(spawn.container->name, "wedge-fuse-kill");
  EXPECT_EQ(spawn.container->init_label, "docker-init");
  const auto& kill = std::get<WatchedCommandStep>(scenario.steps[1]);
  EXPECT_EQ(kill.command.args, (std::vector<std::string>{"kill", "wedge-fuse-kill"}));
  EXPECT_EQ(kill.watch.container, "wedge-fuse-kill");
  EXPECT_EQ(kill.watch.comm, "wedge-fuse");
  EXPECT_TRUE(kill.watch.label.empty());  // the spawn labelled the container's processes
  EXPECT_EQ(kill.watch.stalled_states, std::vector<char>{'Z'});
  EXPECT_TRUE(std::holds_alternative<RunCommandStep>(scenario.steps[2]));
  // The same tasks as the sandbox variant, with docker-init as the pid namespace's init.
  auto sandbox_result = LoadScenarioFile(kScenarioDir / "fuse-flush-pidns-teardown.json");
  const Scenario& sandbox = ExpectScenario(sandbox_result);
  ASSERT_EQ(scenario.bug.tasks.size(), sandbox.bug.tasks.size());
  EXPECT_EQ(scenario.bug.tasks[0].select.process, "docker-init");
  for (std::size_t i = 0; i < scenario.bug.tasks.size(); ++i) {
    EXPECT_EQ(scenario.bug.tasks[i].stack, sandbox.bug.tasks[i].stack) << i;
    EXPECT_EQ(scenario.bug.tasks[i].states, sandbox.bug.tasks[i].states) << i;
  }
  ASSERT_EQ(scenario.recovery.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<AbortFuseConnections>(scenario.recovery[0]));
}

TEST(SeccompResourcesSigsys, LoadsTheSeedUnitItsPreconditionAndItsSignatures) {
  auto result = LoadScenarioFile(kScenarioDir / "seccomp-resources-sigsys.json");
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.name, "seccomp-resources-sigsys");
  ASSERT_EQ(scenario.references.size(), 4u);
  EXPECT_EQ(scenario.references[0].kind, "report");
  EXPECT_EQ(scenario.references[1].id, "navidrome#1961");
  EXPECT_EQ(scenario.references[2].kind, "pull-request");
  EXPECT_EQ(scenario.references[3].url, "https://go.dev/issue/46279");
  EXPECT_EQ(scenario.requires_,
            (std::vector<Requirement>{Requirement::kRoot, Requirement::kSeccomp}));
  EXPECT_FALSE(scenario.isolation.pid_namespace);
  EXPECT_FALSE(scenario.isolation.mount_namespace);
  EXPECT_FALSE(scenario.isolation.user_namespace);
  EXPECT_TRUE(scenario.fixtures.empty());
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_FALSE(scenario.stack.fresh);
  EXPECT_TRUE(scenario.stack.busybox_image);

  ASSERT_EQ(scenario.steps.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<RunCommandStep>(scenario.steps[0]));
  const auto& step = std::get<RunCommandStep>(scenario.steps[0]);
  EXPECT_EQ(step.name, "image-ls");
  EXPECT_EQ(step.binary, "docker");
  // docuum's command line; the format has real tabs.
  EXPECT_EQ(step.args,
            (std::vector<std::string>{"image", "ls", "--all", "--no-trunc", "--format",
                                      "{{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.CreatedAt}}"}));
  EXPECT_EQ(step.timeout_ms, 30000);
  const CommandConfinement& confinement = step.confinement;
  EXPECT_EQ(confinement.system_call_filter,
            (std::vector<std::string>{"@system-service", "~@privileged @resources"}));
  EXPECT_TRUE(confinement.native_architecture_only);
  EXPECT_TRUE(confinement.no_new_privileges);
  ASSERT_EQ(confinement.rlimits.size(), 1u);
  EXPECT_EQ(confinement.rlimits[0].name, "RLIMIT_NOFILE");
  EXPECT_EQ(confinement.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(confinement.rlimits[0].soft, 1024u);
  EXPECT_EQ(confinement.rlimits[0].hard, 4096u);  // soft < hard is what matters; see the doc

  ASSERT_EQ(scenario.preconditions.size(), 1u);
  const Precondition& precondition = scenario.preconditions[0];
  EXPECT_EQ(precondition.name, "nofile-soft-below-hard");
  ASSERT_TRUE(std::holds_alternative<RlimitSoftBelowHard>(precondition.check));
  EXPECT_EQ(precondition.command, "image-ls");
  EXPECT_EQ(std::get<RlimitSoftBelowHard>(precondition.check).rlimit, "RLIMIT_NOFILE");
  EXPECT_EQ(std::get<RlimitSoftBelowHard>(precondition.check).resource, RLIMIT_NOFILE);
  EXPECT_NE(precondition.why.find("46279"), std::string::npos);

  EXPECT_TRUE(scenario.bug.tasks.empty());
  EXPECT_FALSE(scenario.bug.all_exited);
  ASSERT_EQ(scenario.bug.commands.size(), 1u);
  const signature::CommandExpectation& killed = scenario.bug.commands[0];
  EXPECT_EQ(killed.command, "image-ls");
  EXPECT_FALSE(killed.exit_code.has_value());
  EXPECT_EQ(killed.killed_by, "SIGSYS");
  EXPECT_EQ(killed.refused_syscall, "setrlimit");
  EXPECT_TRUE(killed.output_contains.empty());
  ASSERT_EQ(scenario.healthy.commands.size(), 1u);
  const signature::CommandExpectation& listed = scenario.healthy.commands[0];
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_FALSE(listed.killed_by.has_value());
  EXPECT_FALSE(listed.refused_syscall.has_value());
  EXPECT_EQ(listed.output_contains, std::vector<std::string>{"wedge/busybox"});

  EXPECT_EQ(scenario.expected, Verdict::kReproduced);
  EXPECT_NE(scenario.expected_reason.find("Go 1.19.8"), std::string::npos);
}

TEST(SeccompResourcesSigsys, NofileEqualVariantDiffersOnlyInTheLimitAndTheVerdict) {
  auto main_result = LoadScenarioFile(kScenarioDir / "seccomp-resources-sigsys.json");
  auto control_result =
      LoadScenarioFile(kScenarioDir / "seccomp-resources-sigsys-nofile-equal.json");
  const Scenario& main = ExpectScenario(main_result);
  const Scenario& control = ExpectScenario(control_result);
  ASSERT_EQ(main.steps.size(), 1u);
  ASSERT_EQ(control.steps.size(), 1u);
  const auto& control_step = std::get<RunCommandStep>(control.steps[0]);
  const auto& main_step = std::get<RunCommandStep>(main.steps[0]);
  const CommandConfinement& confinement = control_step.confinement;
  ASSERT_EQ(confinement.rlimits.size(), 1u);
  EXPECT_EQ(confinement.rlimits[0].soft, 4096u);
  EXPECT_EQ(confinement.rlimits[0].hard, 4096u);
  EXPECT_EQ(control.expected, Verdict::kNotReproduced);
  EXPECT_NE(control.expected_reason.find("nofile-soft-below-hard"), std::string::npos);
  // Everything else is pinned the same, so the verdicts can be compared.
  EXPECT_EQ(control_step.binary, main_step.binary);
  EXPECT_EQ(control_step.args, main_step.args);
  EXPECT_EQ(confinement.system_call_filter, main_step.confinement.system_call_filter);
  EXPECT_EQ(confinement.native_architecture_only, main_step.confinement.native_architecture_only);
  EXPECT_EQ(confinement.no_new_privileges, main_step.confinement.no_new_privileges);
  EXPECT_EQ(control.requires_, main.requires_);
  ASSERT_EQ(control.preconditions.size(), 1u);
  EXPECT_EQ(control.preconditions[0].name, main.preconditions[0].name);
  ASSERT_EQ(control.bug.commands.size(), 1u);
  EXPECT_EQ(control.bug.commands[0].refused_syscall, main.bug.commands[0].refused_syscall);
  ASSERT_EQ(control.healthy.commands.size(), 1u);
  EXPECT_EQ(control.healthy.commands[0].output_contains, main.healthy.commands[0].output_contains);
}

TEST(ContainerdSocketFlap, LoadsTheVictimTheFlapAndTheRateSignatures) {
  auto result = LoadScenarioFile(kScenarioDir / "containerd-socket-flap.json");
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.name, "containerd-socket-flap");
  ASSERT_EQ(scenario.references.size(), 3u);
  EXPECT_EQ(scenario.references[0].kind, "report");
  EXPECT_NE(scenario.references[0].id.find("dc0a0cf0ea7a28e8"), std::string::npos);
  EXPECT_EQ(scenario.references[1].kind, "pull-request");
  EXPECT_EQ(scenario.references[1].id, "moby#39513");
  EXPECT_EQ(scenario.references[1].url, "https://github.com/moby/moby/pull/39513");
  EXPECT_EQ(scenario.references[2].kind, "pull-request");
  EXPECT_EQ(scenario.references[2].id, "moby#52643");
  EXPECT_EQ(scenario.requires_, std::vector<Requirement>{Requirement::kRoot});
  EXPECT_FALSE(scenario.isolation.pid_namespace);
  EXPECT_FALSE(scenario.isolation.mount_namespace);
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_TRUE(scenario.stack.fresh);  // it kills containerd on purpose
  EXPECT_TRUE(scenario.stack.busybox_image);

  ASSERT_EQ(scenario.steps.size(), 3u);
  const auto& victim = StepAs<RunCommandStep>(scenario, 0);
  EXPECT_EQ(victim.name, "victim");
  EXPECT_EQ(victim.binary, "docker");
  // The placeholder is kept: the runner replaces it with the stack's image reference.
  EXPECT_EQ(victim.args,
            (std::vector<std::string>{"run", "-d", "--network", "none", "--name",
                                      "wedge-flap-victim", "${image}", "sleep", "3600"}));
  const auto& flap = StepAs<FlapStep>(scenario, 1);
  EXPECT_EQ(flap.name, "flap");
  EXPECT_EQ(flap.target, "containerd");
  // A clean stop removes containerd's socket; the churn needs the path gone.
  EXPECT_EQ(flap.flap.how, FlapSpec::How::kRestart);
  EXPECT_EQ(flap.flap.cycles, 1);
  EXPECT_EQ(flap.flap.down_ms, 3000);
  EXPECT_EQ(flap.flap.up_ms, 1000);
  EXPECT_EQ(flap.flap.recovery_timeout_ms, 30000);
  const auto& ps = StepAs<RunCommandStep>(scenario, 2);
  EXPECT_EQ(ps.name, "ps-after");
  EXPECT_EQ(ps.args, (std::vector<std::string>{"ps", "--format", "{{.Names}}"}));

  const signature::Signature& bug = scenario.bug;
  EXPECT_TRUE(bug.tasks.empty());
  EXPECT_FALSE(bug.all_exited);
  ASSERT_EQ(bug.commands.size(), 1u);
  EXPECT_EQ(bug.commands[0].command, "victim");
  EXPECT_EQ(bug.commands[0].exit_code, 0);
  ASSERT_EQ(bug.rates.size(), 1u);
  const signature::RateExpectation& churn = bug.rates[0];
  EXPECT_EQ(churn.metric, "connect");
  EXPECT_EQ(churn.window, "outage");
  EXPECT_EQ(churn.min_per_second, 50.0);
  EXPECT_FALSE(churn.max_per_second.has_value());
  EXPECT_EQ(churn.aggregate, "mean");
  EXPECT_NE(churn.rationale.find("isNoent"), std::string::npos);

  const signature::Signature& healthy = scenario.healthy;
  ASSERT_EQ(healthy.commands.size(), 2u);
  EXPECT_EQ(healthy.commands[0].command, "victim");
  EXPECT_EQ(healthy.commands[1].command, "ps-after");
  EXPECT_EQ(healthy.commands[1].exit_code, 0);
  ASSERT_EQ(healthy.rates.size(), 1u);
  const signature::RateExpectation& calm = healthy.rates[0];
  EXPECT_EQ(calm.metric, "connect");
  EXPECT_EQ(calm.window, "outage");
  EXPECT_FALSE(calm.min_per_second.has_value());
  EXPECT_EQ(calm.max_per_second, 15.0);
  EXPECT_DOUBLE_EQ(calm.for_fraction, 1.0);
  EXPECT_NE(calm.rationale.find("waitServe"), std::string::npos);

  EXPECT_EQ(scenario.expected, Verdict::kReproduced);
  EXPECT_NE(scenario.expected_reason.find("20.10.24"), std::string::npos);
  EXPECT_NE(scenario.expected_reason.find("moby#39513"), std::string::npos);
  EXPECT_NE(scenario.expected_reason.find("moby#52643"), std::string::npos);
}

TEST(RuncExecPipeFull, LoadsTheWatchTheObservedPreconditionsAndThePipeEvidence) {
  auto result = LoadScenarioFile(kScenarioDir / "runc-exec-pipe-full.json");
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.name, "runc-exec-pipe-full");
  EXPECT_EQ(scenario.requires_,
            (std::vector<Requirement>{Requirement::kRoot, Requirement::kPidsCgroup,
                                      Requirement::kKernelStacks}));
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_TRUE(scenario.stack.fresh);  // a watched command may leave its container wedged
  ASSERT_EQ(scenario.steps.size(), 2u);
  // The container's step is not watched; the exec's is.
  EXPECT_EQ(StepAs<RunCommandStep>(scenario, 0).name, "container");
  const auto& exec = StepAs<WatchedCommandStep>(scenario, 1).command;
  EXPECT_EQ(exec.name, "exec");
  EXPECT_EQ(exec.args, (std::vector<std::string>{"exec", "wedge-pipe-full", "true"}));
  EXPECT_EQ(exec.timeout_ms, 30000);
  const CommandWatch& watch = WatchOf(scenario, 1);
  EXPECT_EQ(watch.container, "wedge-pipe-full");
  EXPECT_EQ(watch.comm, "runc:[2:INIT]");
  EXPECT_EQ(watch.label, "runc-init");
  EXPECT_EQ(watch.parent_label, "runc");
  EXPECT_EQ(watch.poll_interval_ms, 5);
  EXPECT_EQ(watch.settle_ms, 500);
  // Nothing injected in the plain scenario.
  EXPECT_TRUE(watch.hold_syscall.empty());
  EXPECT_EQ(watch.hold_ms, 0);
  EXPECT_FALSE(watch.stderr_pipe_bytes.has_value());

  ASSERT_EQ(scenario.preconditions.size(), 2u);
  const Precondition& pids = scenario.preconditions[0];
  EXPECT_EQ(pids.name, "pids-limit-refuses-runc-init-threads");
  ASSERT_TRUE(std::holds_alternative<PidsLimitHit>(pids.check));
  EXPECT_EQ(pids.command, "exec");
  EXPECT_EQ(std::get<PidsLimitHit>(pids.check).container, "wedge-pipe-full");
  EXPECT_NE(pids.why.find("pthread_create"), std::string::npos);
  const Precondition& pipe = scenario.preconditions[1];
  EXPECT_EQ(pipe.name, "exec-stderr-pipe-one-page");
  ASSERT_TRUE(std::holds_alternative<PipeCapacityAtMost>(pipe.check));
  EXPECT_EQ(pipe.command, "exec");
  EXPECT_EQ(std::get<PipeCapacityAtMost>(pipe.check).container, "wedge-pipe-full");
  EXPECT_EQ(std::get<PipeCapacityAtMost>(pipe.check).fd, 2);
  EXPECT_EQ(std::get<PipeCapacityAtMost>(pipe.check).max_bytes, 4096);

  ASSERT_EQ(scenario.recovery.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<DrainPipes>(scenario.recovery[0]));

  const signature::Signature& bug = scenario.bug;
  ASSERT_EQ(bug.tasks.size(), 2u);
  const signature::TaskExpectation& blocked = bug.tasks[0];
  EXPECT_EQ(blocked.role, "blocked-runc-init");
  EXPECT_EQ(blocked.select.process, "runc-init");
  EXPECT_EQ(blocked.states, (std::set<char>{'S'}));
  // The alternatives are kept as written; the signature splits them when matching.
  EXPECT_EQ(blocked.stack,
            (std::vector<std::string>{"anon_pipe_write|pipe_write", "vfs_write", "ksys_write"}));
  ASSERT_TRUE(blocked.pipe.has_value());
  EXPECT_EQ(blocked.pipe->fd, 2);
  EXPECT_DOUBLE_EQ(blocked.pipe->min_fill, 0.9);
  const signature::TaskExpectation& waiting = bug.tasks[1];
  EXPECT_EQ(waiting.select.process, "runc");
  EXPECT_EQ(waiting.select.thread, signature::TaskSelector::Thread::kLeader);
  EXPECT_FALSE(waiting.pipe.has_value());
  ASSERT_EQ(bug.commands.size(), 1u);
  EXPECT_EQ(bug.commands[0].command, "exec");
  EXPECT_EQ(bug.commands[0].running_at_capture, true);
  EXPECT_FALSE(bug.commands[0].exit_code.has_value());
  EXPECT_FALSE(bug.commands[0].killed_by.has_value());
  ASSERT_EQ(scenario.healthy.commands.size(), 1u);
  // Healthy is "returned before anything stalled": success and a fast failure alike.
  EXPECT_FALSE(scenario.healthy.commands[0].exit_code.has_value());
  EXPECT_EQ(scenario.healthy.commands[0].running_at_capture, false);

  // Observed preconditions are not decided by the file, so "not-reproduced" is not forced by
  // the loader; this file expects it and names both.
  EXPECT_EQ(scenario.expected, Verdict::kNotReproduced);
  EXPECT_NE(scenario.expected_reason.find("pids-limit-refuses-runc-init-threads"),
            std::string::npos);
  EXPECT_NE(scenario.expected_reason.find("exec-stderr-pipe-one-page"), std::string::npos);
}

TEST(RuncExecPipeFull, InjectedVariantAddsTheHoldAndThePipeSizeAndExpectsTheCrashDump) {
  auto plain_result = LoadScenarioFile(kScenarioDir / "runc-exec-pipe-full.json");
  auto injected_result = LoadScenarioFile(kScenarioDir / "runc-exec-pipe-full-injected.json");
  const Scenario& plain = ExpectScenario(plain_result);
  const Scenario& injected = ExpectScenario(injected_result);
  ASSERT_EQ(injected.steps.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<WatchedCommandStep>(injected.steps[1]));
  const CommandWatch& watch = WatchOf(injected, 1);
  EXPECT_EQ(watch.hold_syscall, "clone3");
  EXPECT_EQ(watch.hold_ms, 100);
  EXPECT_EQ(watch.stderr_pipe_bytes, 4096);
  // Everything else about the watch is pinned the same, so the verdicts can be compared.
  ASSERT_EQ(plain.steps.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<WatchedCommandStep>(plain.steps[1]));
  EXPECT_EQ(watch.container, WatchOf(plain, 1).container);
  EXPECT_EQ(watch.comm, WatchOf(plain, 1).comm);
  EXPECT_EQ(watch.label, WatchOf(plain, 1).label);
  EXPECT_EQ(watch.parent_label, WatchOf(plain, 1).parent_label);
  EXPECT_EQ(watch.settle_ms, WatchOf(plain, 1).settle_ms);
  EXPECT_EQ(CommandAt(injected, 0).args, CommandAt(plain, 0).args);
  EXPECT_EQ(CommandAt(injected, 1).args, CommandAt(plain, 1).args);

  // The pipe precondition is injected, so only the pids one is observed.
  ASSERT_EQ(injected.preconditions.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PidsLimitHit>(injected.preconditions[0].check));
  ASSERT_EQ(injected.bug.tasks.size(), 2u);
  ASSERT_TRUE(injected.bug.tasks[0].pipe.has_value());
  EXPECT_EQ(injected.bug.tasks[0].pipe->starts_with, "runtime/cgo: pthread_create failed");
  EXPECT_DOUBLE_EQ(injected.bug.tasks[0].pipe->min_fill, 0.9);
  EXPECT_EQ(injected.bug.tasks[0].stack, plain.bug.tasks[0].stack);
  EXPECT_EQ(injected.expected, Verdict::kReproduced);
  EXPECT_NE(injected.expected_reason.find("F_SETPIPE_SZ"), std::string::npos);
}

TEST(ScenarioDirectory, EveryScenarioLoadsAndIsNamedAfterItsFile) {
  std::vector<fs::path> files = ExpandScenarioPaths(kScenarioDir);
  ASSERT_GE(files.size(), 2u);
  std::set<std::string> names;
  for (const fs::path& file : files) {
    auto result = LoadScenarioFile(file);
    const Scenario& scenario = ExpectScenario(result);
    EXPECT_EQ(scenario.name, file.stem().string());
    EXPECT_TRUE(names.insert(scenario.name).second) << "duplicate name " << scenario.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Good files: defaults and value mappings.

TEST(ScenarioLoader, AppliesTheDocumentedDefaults) {
  auto result = Parse(kMinimal);
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.file, fs::path("test.json"));
  EXPECT_TRUE(scenario.references.empty());
  EXPECT_TRUE(scenario.requires_.empty());
  EXPECT_FALSE(scenario.isolation.user_namespace);
  EXPECT_TRUE(scenario.isolation.pid_namespace);
  EXPECT_TRUE(scenario.isolation.mount_namespace);
  EXPECT_FALSE(scenario.isolation.pids_max.has_value());
  EXPECT_TRUE(scenario.isolation.sysctls.empty());
  EXPECT_TRUE(scenario.isolation.rlimits.empty());
  EXPECT_TRUE(scenario.fixtures.empty());
  EXPECT_EQ(scenario.stall.poll_interval_ms, 2);
  EXPECT_EQ(scenario.stall.settle_ms, 100);
  EXPECT_EQ(scenario.stall.timeout_ms, 10000);
  EXPECT_TRUE(scenario.recovery.empty());
  ASSERT_EQ(scenario.bug.tasks.size(), 1u);
  const signature::TaskExpectation& init = scenario.bug.tasks[0];
  EXPECT_EQ(init.select.thread, signature::TaskSelector::Thread::kAny);
  EXPECT_TRUE(init.select.comm.empty());
  EXPECT_TRUE(init.states.empty());
  EXPECT_TRUE(init.stack.empty());
  EXPECT_EQ(scenario.expected, Verdict::kNotReproduced);
}

TEST(ScenarioLoader, AppliesFuseDaemonDefaults) {
  std::string text(kMinimal);
  text.insert(text.find("\"steps\""),
              R"("requires": ["fuse-device", "fusectl"],
  "recovery": ["abort-fuse-connections"],
  "fixtures": {"fs": {"kind": "fuse-daemon"}},
  )");
  text.insert(text.find("{\"action\": \"wait-for-stall\"}"),
              R"({"action": "spawn", "name": "fs", "fixture": "fs"}, )");
  auto result = Parse(text);
  const Scenario& scenario = ExpectScenario(result);
  const Fixture* fixture = scenario.FindFixture("fs");
  ASSERT_NE(fixture, nullptr);
  EXPECT_EQ(fixture->name, "fs");
  EXPECT_EQ(std::get<FuseDaemonFixture>(fixture->kind).mountpoint, "mnt");
  EXPECT_EQ(std::get<FuseDaemonFixture>(fixture->kind).file, "held");
  EXPECT_TRUE(std::get<FuseDaemonFixture>(fixture->kind).holder_thread);
  EXPECT_EQ(std::get<FuseDaemonFixture>(fixture->kind).flush, FuseDaemonFixture::Flush::kReply);
}

TEST(ScenarioLoader, NamespaceListIsExact) {
  auto result = Parse(MinimalWithIsolation(R"({"namespaces": ["user"]})"));
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_TRUE(scenario.isolation.user_namespace);
  EXPECT_FALSE(scenario.isolation.pid_namespace);
  EXPECT_FALSE(scenario.isolation.mount_namespace);

  auto none = Parse(MinimalWithIsolation(R"({"namespaces": []})"));
  EXPECT_FALSE(ExpectScenario(none).isolation.pid_namespace);
}

TEST(ScenarioLoader, ReadsUnlimitedAsRlimInfinityAndMapsNamesToResources) {
  auto result = Parse(MinimalWithIsolation(R"({"rlimits": {
      "RLIMIT_STACK": {"soft": 8388608, "hard": "unlimited"},
      "RLIMIT_CORE": {"soft": "unlimited", "hard": "unlimited"},
      "RLIMIT_NPROC": {"soft": 0, "hard": 9223372036854775807}}})"));
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.isolation.rlimits.size(), 3u);
  // Applied in name order.
  const Rlimit& core = scenario.isolation.rlimits[0];
  const Rlimit& nproc = scenario.isolation.rlimits[1];
  const Rlimit& stack = scenario.isolation.rlimits[2];
  EXPECT_EQ(core.name, "RLIMIT_CORE");
  EXPECT_EQ(core.resource, RLIMIT_CORE);
  EXPECT_EQ(core.soft, RLIM_INFINITY);
  EXPECT_EQ(core.hard, RLIM_INFINITY);
  EXPECT_EQ(nproc.resource, RLIMIT_NPROC);
  EXPECT_EQ(nproc.soft, 0u);
  EXPECT_EQ(nproc.hard, 9223372036854775807u);
  EXPECT_EQ(stack.resource, RLIMIT_STACK);
  EXPECT_EQ(stack.soft, 8388608u);
  EXPECT_EQ(stack.hard, RLIM_INFINITY);
}

TEST(ScenarioLoader, AcceptsEveryAllowlistedSysctl) {
  std::string sysctls;
  for (const std::string& name : AllowedSysctls()) {
    sysctls += (sysctls.empty() ? "" : ", ") + ("\"" + name + "\": \"16\"");
  }
  auto result = Parse(MinimalWithIsolation("{\"sysctls\": {" + sysctls + "}}"));
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_EQ(scenario.isolation.sysctls.size(), AllowedSysctls().size());
  EXPECT_EQ(scenario.isolation.sysctls.at("fs.pipe-user-pages-soft"), "16");
}

TEST(ScenarioLoader, MapsSignalNamesToNumbers) {
  for (auto [name, number] : std::vector<std::pair<std::string, int>>{
           {"SIGTERM", SIGTERM}, {"SIGSTOP", SIGSTOP}, {"SIGSYS", SIGSYS}, {"SIGUSR2", SIGUSR2}}) {
    std::string text(kMinimal);
    text.insert(text.find("{\"action\": \"wait-for-stall\"}"),
                R"({"action": "kill", "target": "sandbox-init", "signal": ")" + name + "\"}, ");
    auto result = Parse(text);
    const Scenario& scenario = ExpectScenario(result);
    ASSERT_EQ(scenario.steps.size(), 2u) << name;
    EXPECT_EQ(StepAs<KillStep>(scenario, 0).signal, number) << name;
  }
}

TEST(ScenarioLoader, AppliesRunCommandAndStackDefaults) {
  auto result = Parse(kMinimalCommand);
  const Scenario& scenario = ExpectScenario(result);
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_FALSE(scenario.stack.fresh);
  EXPECT_TRUE(scenario.stack.busybox_image);
  ASSERT_EQ(scenario.steps.size(), 1u);
  const auto& step = StepAs<RunCommandStep>(scenario, 0);
  EXPECT_EQ(step.name, "version");
  EXPECT_EQ(step.binary, "docker");
  EXPECT_TRUE(step.args.empty());
  EXPECT_EQ(step.timeout_ms, 30000);
  EXPECT_TRUE(step.confinement.system_call_filter.empty());
  EXPECT_FALSE(step.confinement.native_architecture_only);
  EXPECT_FALSE(step.confinement.no_new_privileges);
  EXPECT_TRUE(step.confinement.rlimits.empty());
  EXPECT_TRUE(scenario.preconditions.empty());
  ASSERT_EQ(scenario.bug.commands.size(), 1u);
  EXPECT_EQ(scenario.bug.commands[0].killed_by, "SIGKILL");
  EXPECT_FALSE(scenario.bug.commands[0].exit_code.has_value());
  ASSERT_EQ(scenario.healthy.commands.size(), 1u);
  EXPECT_EQ(scenario.healthy.commands[0].exit_code, 0);
}

TEST(ScenarioLoader, HasNoStackUnlessTheFileAsksForOne) {
  auto result = Parse(kMinimal);
  EXPECT_FALSE(ExpectScenario(result).stack.required);
  auto fresh = Parse(Replaced(kMinimalCommand, R"("stack": {})",
                              R"("stack": {"fresh": true, "busybox_image": false})"));
  const Scenario& scenario = ExpectScenario(fresh);
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_TRUE(scenario.stack.fresh);
  EXPECT_FALSE(scenario.stack.busybox_image);
}

// The smallest valid watched command scenario: a container, then a watched exec into it.
constexpr std::string_view kMinimalWatch = R"({
  "wedge_scenario": 1,
  "name": "minimal-watch",
  "summary": "docker exec watched",
  "requires": ["root"],
  "stack": {"fresh": true},
  "steps": [
    {"action": "run-command", "name": "container", "binary": "docker",
     "args": ["run", "-d", "--name=box", "${image}", "sleep", "60"]},
    {"action": "run-command", "name": "exec", "binary": "docker", "args": ["exec", "box", "true"],
     "watch": {"container": "box", "comm": "runc:[2:INIT]", "label": "runc-init"}}
  ],
  "recovery": ["drain-pipes"],
  "signatures": {
    "bug": {"description": "stuck",
            "tasks": [{"role": "init", "select": {"process": "runc-init"},
                       "pipe": {"fd": 2, "starts_with": "panic"}}],
            "commands": [{"command": "exec", "running_at_capture": true}]},
    "healthy": {"description": "returns", "commands": [{"command": "exec", "exit_code": 0}]}
  },
  "expect": {"verdict": "not-reproduced", "reason": "exec returns"}
})";

TEST(ScenarioLoader, AppliesWatchAndPipeDefaults) {
  auto result = Parse(kMinimalWatch);
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.steps.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<WatchedCommandStep>(scenario.steps[1]));
  const CommandWatch& watch = WatchOf(scenario, 1);
  EXPECT_EQ(watch.container, "box");  // "--name=box" names a container too
  EXPECT_TRUE(watch.parent_label.empty());
  EXPECT_EQ(watch.poll_interval_ms, 5);
  EXPECT_EQ(watch.settle_ms, 1000);
  EXPECT_TRUE(watch.hold_syscall.empty());
  EXPECT_EQ(watch.hold_ms, 0);
  EXPECT_FALSE(watch.stderr_pipe_bytes.has_value());
  ASSERT_EQ(scenario.recovery.size(), 1u);  // required with a watch
  EXPECT_TRUE(std::holds_alternative<DrainPipes>(scenario.recovery[0]));
  ASSERT_EQ(scenario.bug.tasks.size(), 1u);
  ASSERT_TRUE(scenario.bug.tasks[0].pipe.has_value());
  EXPECT_EQ(scenario.bug.tasks[0].pipe->min_fill, 0.0);  // starts_with alone
  EXPECT_EQ(scenario.bug.tasks[0].pipe->starts_with, "panic");
}

TEST(ScenarioLoader, AcceptsTheWatchBoundsAndTheEdgesOfEachRange) {
  std::string text =
      Replaced(kMinimalWatch, R"("label": "runc-init"})",
               R"("label": "runc-init", "parent_label": "runc", "poll_interval_ms": 1000,
                  "settle_ms": 1000, "hold_syscall": "clone", "hold_ms": 10000,
                  "stderr_pipe_bytes": 1048576}, "timeout_ms": 1001)");
  text = Replaced(text, R"("starts_with": "panic")", R"("min_fill": 1)");
  text = Replaced(text, R"("verdict": "not-reproduced", "reason": "exec returns")",
                  R"("verdict": "not-reproduced", "reason": "pipe-at-most")");
  text = Replaced(text, R"("signatures")",
                  R"("preconditions": [{"name": "pipe-at-most", "kind": "pipe-capacity-at-most",
                       "command": "exec", "container": "box", "max_bytes": 1048576,
                       "why": "w"}],
                     "signatures")");
  auto result = Parse(text);
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.steps.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<WatchedCommandStep>(scenario.steps[1]));
  const CommandWatch& watch = WatchOf(scenario, 1);
  EXPECT_EQ(watch.parent_label, "runc");
  EXPECT_EQ(watch.poll_interval_ms, 1000);
  EXPECT_EQ(watch.settle_ms, 1000);  // equal to the poll interval, below the timeout
  EXPECT_EQ(CommandAt(scenario, 1).timeout_ms, 1001);
  EXPECT_EQ(watch.hold_syscall, "clone");
  EXPECT_EQ(watch.hold_ms, 10000);
  EXPECT_EQ(watch.stderr_pipe_bytes, 1048576);
  ASSERT_EQ(scenario.preconditions.size(), 1u);
  EXPECT_EQ(std::get<PipeCapacityAtMost>(scenario.preconditions[0].check).fd, 2);  // the default
  EXPECT_EQ(std::get<PipeCapacityAtMost>(scenario.preconditions[0].check).max_bytes, 1048576);
  ASSERT_EQ(scenario.recovery.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<DrainPipes>(scenario.recovery[0]));
  EXPECT_EQ(scenario.bug.tasks[0].pipe->min_fill, 1.0);
  EXPECT_TRUE(scenario.bug.tasks[0].pipe->starts_with.empty());
  // The parent's label is a process name selectors may use.
  auto parent = Parse(
      Replaced(text, R"("select": {"process": "runc-init"})", R"("select": {"process": "runc"})"));
  EXPECT_EQ(ExpectScenario(parent).bug.tasks[0].select.process, "runc");
}

TEST(ScenarioLoader, RunningAtCaptureFalseMayComeWithAnExitCode) {
  auto result = Parse(Replaced(kMinimalWatch, R"({"command": "exec", "exit_code": 0})",
                               R"({"command": "exec", "exit_code": 0,
                                   "running_at_capture": false})"));
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.healthy.commands.size(), 1u);
  EXPECT_EQ(scenario.healthy.commands[0].running_at_capture, false);
  EXPECT_EQ(scenario.healthy.commands[0].exit_code, 0);
}

TEST(ScenarioLoader, KeepsFrameAlternativesAndRefusesAnEmptyOne) {
  const std::string with_stack = Replaced(kMinimalWatch, R"("select": {"process": "runc-init"},)",
                                          R"("select": {"process": "runc-init"},
                                             "stack": ["anon_pipe_write|pipe_write|pipe_write2",
                                                       "vfs_write"],)");
  auto result = Parse(Replaced(with_stack, R"(["root"])", R"(["root", "kernel-stacks"])"));
  EXPECT_EQ(ExpectScenario(result).bug.tasks[0].stack,
            (std::vector<std::string>{"anon_pipe_write|pipe_write|pipe_write2", "vfs_write"}));
  for (const char* frame : {"|pipe_write", "anon_pipe_write||pipe_write", "pipe_write+0x1/0x2|a"}) {
    auto refused = Parse(Replaced(with_stack, "anon_pipe_write|pipe_write|pipe_write2", frame));
    LoadError error = ExpectError(refused);
    EXPECT_EQ(error.pointer, "/signatures/bug/tasks/0/stack/0") << frame;
  }
}

TEST(ScenarioLoader, AcceptsPowersOfTwoOnlyForTheStderrPipe) {
  for (int bytes : {4096, 8192, 65536, 1048576}) {
    auto result =
        Parse(Replaced(kMinimalWatch, R"("label": "runc-init")",
                       R"("label": "runc-init", "stderr_pipe_bytes": )" + std::to_string(bytes)));
    const Scenario& scenario = ExpectScenario(result);
    ASSERT_EQ(scenario.steps.size(), 2u);
    EXPECT_EQ(WatchOf(scenario, 1).stderr_pipe_bytes, bytes);
  }
  for (int bytes : {4095, 12288, 1048575, 2097152}) {
    auto result =
        Parse(Replaced(kMinimalWatch, R"("label": "runc-init")",
                       R"("label": "runc-init", "stderr_pipe_bytes": )" + std::to_string(bytes)));
    EXPECT_EQ(ExpectError(result).pointer, "/steps/1/watch/stderr_pipe_bytes") << bytes;
  }
}

TEST(ScenarioLoader, AFilterImpliesNoNewPrivilegesUnlessTheFilePinsIt) {
  std::string text =
      Replaced(MinimalCommandWith(R"("confinement": {"SystemCallFilter": ["@system-service"]})"),
               R"(["root"])", R"(["root", "seccomp"])");
  auto implied = Parse(text);
  EXPECT_TRUE(CommandAt(ExpectScenario(implied), 0).confinement.no_new_privileges);
  auto pinned = Parse(
      Replaced(text, R"(["@system-service"])", R"(["@system-service"], "NoNewPrivileges": false)"));
  EXPECT_FALSE(CommandAt(ExpectScenario(pinned), 0).confinement.no_new_privileges);
  auto alone = Parse(MinimalCommandWith(R"("confinement": {"NoNewPrivileges": true})"));
  EXPECT_TRUE(CommandAt(ExpectScenario(alone), 0).confinement.no_new_privileges);
}

TEST(ScenarioLoader, AcceptsSystemdFilterSyntaxAndKeepsTheLinesVerbatim) {
  std::string text = Replaced(
      MinimalCommandWith(
          R"("confinement": {"SystemCallFilter": ["@known", "~ @privileged  @resources", "setrlimit _llseek epoll_wait2"]})"),
      R"(["root"])", R"(["root", "seccomp"])");
  auto result = Parse(text);
  EXPECT_EQ(CommandAt(ExpectScenario(result), 0).confinement.system_call_filter,
            (std::vector<std::string>{"@known", "~ @privileged  @resources",
                                      "setrlimit _llseek epoll_wait2"}));
}

TEST(ScenarioLoader, SystemCallArchitecturesAloneNeedsSeccomp) {
  LoadError error = ExpectError(
      Parse(MinimalCommandWith(R"("confinement": {"SystemCallArchitectures": "native"})")));
  EXPECT_EQ(error.pointer, "/requires");
  EXPECT_EQ(error.message,
            "missing requirement \"seccomp\", needed by the SystemCallArchitectures at "
            "/steps/0/confinement/SystemCallArchitectures");
}

TEST(ScenarioLoader, KeepsTabsAndEmptyArgumentsAsWritten) {
  auto result = Parse(MinimalCommandWith(R"("args": ["", "a\tb", "--format={{.ID}}"])"));
  EXPECT_EQ(CommandAt(ExpectScenario(result), 0).args,
            (std::vector<std::string>{"", "a\tb", "--format={{.ID}}"}));
}

TEST(ScenarioLoader, RefusesMoreThan256Arguments) {
  std::string args;
  for (int i = 0; i < 257; ++i) args += std::string(i == 0 ? "" : ", ") + "\"x\"";
  LoadError error = ExpectError(Parse(MinimalCommandWith("\"args\": [" + args + "]")));
  EXPECT_EQ(error.pointer, "/steps/0/args");
  EXPECT_EQ(error.message, "expected at most 256 arguments, got 257");
}

TEST(ScenarioLoader, CommandsAndAWaitForStallCombine) {
  std::string text = Replaced(kMinimalCommand, R"("binary": "docker"})",
                              R"("binary": "docker"}, {"action": "wait-for-stall"})");
  text = Replaced(text, R"("commands": [{"command": "version", "killed_by": "SIGKILL"}])",
                  R"("tasks": [{"role": "init", "select": {"process": "sandbox-init"}}],
                     "commands": [{"command": "version", "output_contains": ["Version"]}])");
  text = Replaced(text, R"("description": "exits", )",
                  R"("description": "exits", "all_exited": true, )");
  text = Replaced(text, R"("stack": {},)", R"("stack": {}, "stall": {"settle_ms": 50},)");
  auto result = Parse(text);
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.steps.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WaitForStallStep>(scenario.steps[1]));
  EXPECT_EQ(scenario.stall.settle_ms, 50);
  EXPECT_EQ(scenario.bug.tasks.size(), 1u);
  ASSERT_EQ(scenario.bug.commands.size(), 1u);
  EXPECT_EQ(scenario.bug.commands[0].output_contains, std::vector<std::string>{"Version"});
  EXPECT_TRUE(scenario.healthy.all_exited);
  EXPECT_EQ(scenario.healthy.commands.size(), 1u);
}

TEST(ScenarioLoader, AllowsBothSignaturesAllExitedWhenTheirCommandsDiffer) {
  std::string text = Replaced(kMinimalCommand, R"("binary": "docker"})",
                              R"("binary": "docker"}, {"action": "wait-for-stall"})");
  text = Replaced(text, R"("description": "killed", )",
                  R"("description": "killed", "all_exited": true, )");
  text = Replaced(text, R"("description": "exits", )",
                  R"("description": "exits", "all_exited": true, )");
  auto result = Parse(text);
  EXPECT_TRUE(ExpectScenario(result).bug.all_exited);
}

// The precondition of the seed, on the pair that decides it.
std::string WithNofile(std::string_view soft, std::string_view hard, std::string_view verdict) {
  std::string text =
      MinimalCommandWith(R"("confinement": {"rlimits": {"RLIMIT_NOFILE": {"soft": )" +
                         std::string(soft) + R"(, "hard": )" + std::string(hard) + "}}}");
  text = Replaced(text, R"("steps")", R"("preconditions": [{"name": "nofile-soft-below-hard",
      "kind": "rlimit-soft-below-hard", "command": "version", "rlimit": "RLIMIT_NOFILE",
      "why": "Go raises the soft limit"}],
  "steps")");
  return Replaced(text, R"("verdict": "not-reproduced")",
                  R"("verdict": ")" + std::string(verdict) + "\"");
}

TEST(ScenarioLoader, DecidesAnRlimitPreconditionFromThePinnedPair) {
  auto below = Parse(WithNofile("1024", "\"unlimited\"", "reproduced"));
  const Scenario& scenario = ExpectScenario(below);
  ASSERT_EQ(scenario.preconditions.size(), 1u);
  EXPECT_EQ(std::get<RlimitSoftBelowHard>(scenario.preconditions[0].check).resource, RLIMIT_NOFILE);

  LoadError equal = ExpectError(Parse(WithNofile("\"unlimited\"", "\"unlimited\"", "reproduced")));
  EXPECT_EQ(equal.pointer, "/expect/verdict");
  EXPECT_NE(equal.message.find("RLIMIT_NOFILE of \"version\" is unlimited:unlimited"),
            std::string::npos)
      << equal.message;
  // not-reproduced is allowed once the reason names the failed precondition.
  LoadError silent = ExpectError(Parse(WithNofile("4096", "4096", "not-reproduced")));
  EXPECT_EQ(silent.pointer, "/expect/reason");
  auto named = Parse(Replaced(WithNofile("4096", "4096", "not-reproduced"), "docker version exits",
                              "nofile-soft-below-hard fails"));
  EXPECT_EQ(ExpectScenario(named).expected, Verdict::kNotReproduced);
}

TEST(ScenarioLoader, AppliesFlapAndRateDefaults) {
  auto result = Parse(kMinimalFlap);
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.steps.size(), 1u);
  const auto& step = StepAs<FlapStep>(scenario, 0);
  EXPECT_EQ(step.name, "flap");
  EXPECT_EQ(step.target, "containerd");
  EXPECT_EQ(step.flap.how, FlapSpec::How::kSigkill);
  EXPECT_EQ(step.flap.cycles, 1);
  EXPECT_EQ(step.flap.down_ms, 3000);
  EXPECT_EQ(step.flap.up_ms, 1000);
  EXPECT_EQ(step.flap.recovery_timeout_ms, 30000);
  // A flap step uses the stack: no run-command step is needed.
  EXPECT_TRUE(scenario.stack.required);
  EXPECT_TRUE(scenario.bug.commands.empty());
  ASSERT_EQ(scenario.bug.rates.size(), 1u);
  const signature::RateExpectation& rate = scenario.bug.rates[0];
  EXPECT_EQ(rate.metric, "connect");
  EXPECT_EQ(rate.window, "outage");
  EXPECT_EQ(rate.min_per_second, 50.0);
  EXPECT_FALSE(rate.max_per_second.has_value());
  EXPECT_EQ(rate.for_fraction, 1.0);
  EXPECT_TRUE(rate.rationale.empty());
}

TEST(ScenarioLoader, ReadsEveryFlapKnob) {
  for (auto [name, how] : std::vector<std::pair<std::string, FlapSpec::How>>{
           {"sigkill", FlapSpec::How::kSigkill},
           {"sigstop", FlapSpec::How::kSigstop},
           {"unlink-socket", FlapSpec::How::kUnlinkSocket},
           {"restart", FlapSpec::How::kRestart}}) {
    auto result = Parse(Replaced(kMinimalFlap, R"("how": "sigkill")",
                                 R"("how": ")" + name +
                                     R"(", "cycles": 100, "down_ms": 100, "up_ms": 0, )"
                                     R"("recovery_timeout_ms": 600000)"));
    const Scenario& scenario = ExpectScenario(result);
    ASSERT_EQ(scenario.steps.size(), 1u) << name;
    const FlapSpec& flap = StepAs<FlapStep>(scenario, 0).flap;
    EXPECT_EQ(flap.how, how) << name;
    EXPECT_EQ(flap.cycles, 100);
    EXPECT_EQ(flap.down_ms, 100);
    EXPECT_EQ(flap.up_ms, 0);
    EXPECT_EQ(flap.recovery_timeout_ms, 600000);
  }
}

TEST(ScenarioLoader, AcceptsEveryRateMetricAndWindowAndFractionalBounds) {
  for (std::string metric : {"connect", "connect_errors", "socket", "close", "threads",
                             "futex_threads", "containerd_log_lines"}) {
    for (std::string window : {"outage", "after"}) {
      auto result = Parse(
          Replaced(kMinimalFlap, R"({"metric": "connect", "min_per_second": 50})",
                   R"({"metric": ")" + metric + R"(", "window": ")" + window +
                       R"(", "min_per_second": 0, "max_per_second": 12.5, "for_fraction": 1, )"
                       R"("rationale": "why"})"));
      const Scenario& scenario = ExpectScenario(result);
      ASSERT_EQ(scenario.bug.rates.size(), 1u) << metric << " " << window;
      const signature::RateExpectation& rate = scenario.bug.rates[0];
      EXPECT_EQ(rate.metric, metric);
      EXPECT_EQ(rate.window, window);
      EXPECT_EQ(rate.min_per_second, 0.0);
      EXPECT_EQ(rate.max_per_second, 12.5);
      EXPECT_EQ(rate.for_fraction, 1.0);
      EXPECT_EQ(rate.rationale, "why");
    }
  }
  // A bound may be a single value, and the fraction tiny.
  auto equal =
      Parse(Replaced(kMinimalFlap, R"("min_per_second": 50})",
                     R"("min_per_second": 7, "max_per_second": 7.0, "for_fraction": 0.001})"));
  EXPECT_EQ(ExpectScenario(equal).bug.rates[0].for_fraction, 0.001);
}

TEST(ScenarioLoader, RatesCombineWithCommands) {
  std::string text = Replaced(kMinimalFlap, R"("how": "sigkill"})",
                              R"("how": "sigkill"}, {"action": "run-command", "name": "ps", )"
                              R"("binary": "docker", "args": ["ps"]})");
  text = Replaced(text, R"("description": "calm", )",
                  R"("description": "calm", "commands": [{"command": "ps", "exit_code": 0}], )");
  auto result = Parse(text);
  const Scenario& scenario = ExpectScenario(result);
  ASSERT_EQ(scenario.steps.size(), 2u);
  EXPECT_EQ(scenario.healthy.commands.size(), 1u);
  EXPECT_EQ(scenario.healthy.rates.size(), 1u);
  // Commands alone are still a signature of a flap scenario.
  auto commands_only = Parse(Replaced(
      text, R"("description": "churn", "rates": [{"metric": "connect", "min_per_second": 50}])",
      R"("description": "churn", "commands": [{"command": "ps", "exit_code": 1}])"));
  EXPECT_TRUE(ExpectScenario(commands_only).bug.rates.empty());
}

TEST(ScenarioLoader, KeepsImagePlaceholdersAndOtherDollarsVerbatim) {
  auto result = Parse(MinimalCommandWith(
      R"("args": ["${image}", "--from=${image}:${image}", "$HOME", "{{.Names}}", "$", "}{", "$image"])"));
  EXPECT_EQ(CommandAt(ExpectScenario(result), 0).args,
            (std::vector<std::string>{"${image}", "--from=${image}:${image}", "$HOME", "{{.Names}}",
                                      "$", "}{", "$image"}));

  LoadError open = ExpectError(Parse(MinimalCommandWith(R"("args": ["a", "${"])")));
  EXPECT_EQ(open.pointer, "/steps/0/args/1");
  EXPECT_NE(open.message.find("unterminated placeholder \"${\""), std::string::npos)
      << open.message;
  LoadError upper = ExpectError(Parse(MinimalCommandWith(R"("args": ["${IMAGE}"])")));
  EXPECT_EQ(upper.pointer, "/steps/0/args/0");
  EXPECT_NE(upper.message.find("unknown placeholder \"${IMAGE}\""), std::string::npos)
      << upper.message;
}

TEST(ScenarioLoader, RefusesAFlapStepBesideASpawn) {
  std::string text = Replaced(kMinimalFlap, R"("steps": [)",
                              R"("fixtures": {"fs": {"kind": "fuse-daemon"}},
  "steps": [{"action": "spawn", "name": "fs", "fixture": "fs"}, )");
  LoadError error = ExpectError(Parse(text));
  EXPECT_EQ(error.pointer, "/steps/0");
  EXPECT_EQ(error.message,
            "a \"spawn\" step cannot share a scenario with the \"flap\" step at /steps/1: a flap "
            "scenario only runs commands against its own stack (its signatures are \"rates\" and "
            "\"commands\")");
}

TEST(ScenarioLoader, ToleratesAUtf8ByteOrderMark) {
  std::string text = "\xEF\xBB\xBF" + std::string(kMinimal);
  auto result = Parse(text);
  EXPECT_EQ(ExpectScenario(result).name, "minimal");
}

// ---------------------------------------------------------------------------------------------
// Refusals that need more than a file of the corpus.

TEST(ScenarioLoader, RefusesTextLargerThanOneMiB) {
  std::string text(kMinimal);
  text.append((1 << 20) + 1 - text.size(), ' ');
  LoadError error = ExpectError(Parse(text));
  EXPECT_EQ(error.pointer, "");
  EXPECT_EQ(error.message, "file is too large: 1048577 bytes, the limit is 1048576 (1 MiB)");
}

TEST(ScenarioLoader, AcceptsTextOfExactlyOneMiB) {
  std::string text(kMinimal);
  text.append((1 << 20) - text.size(), ' ');
  auto result = Parse(text);
  EXPECT_EQ(ExpectScenario(result).name, "minimal");
}

TEST(ScenarioLoader, RefusesAFileLargerThanOneMiBBeforeParsingIt) {
  TempDir dir;
  fs::path file = dir.Write("big.json", std::string(3 << 20, '['));
  LoadError error = ExpectError(LoadScenarioFile(file));
  EXPECT_EQ(error.file, file.string());
  EXPECT_EQ(error.pointer, "");
  EXPECT_EQ(error.message, "file is too large: 3145728 bytes, the limit is 1048576 (1 MiB)");
}

TEST(ScenarioLoader, RefusesAbsurdNestingWithoutOverflowingTheStack) {
  std::string text(500000, '[');
  text.append(500000, ']');
  LoadError error = ExpectError(Parse(text));
  EXPECT_EQ(error.message, "nesting deeper than 64 levels");
  std::string pointer;
  for (int i = 0; i < 64; ++i) pointer += "/0";
  EXPECT_EQ(error.pointer, pointer);
}

TEST(ScenarioLoader, ReportsAMissingFileWithTheCallAndErrno) {
  LoadError error = ExpectError(LoadScenarioFile("/nonexistent/wedge/s.json"));
  EXPECT_EQ(error.file, "/nonexistent/wedge/s.json");
  EXPECT_EQ(error.pointer, "");
  EXPECT_EQ(error.message, "open('/nonexistent/wedge/s.json'): ENOENT (No such file or directory)");
  EXPECT_EQ(error.ToString(),
            "/nonexistent/wedge/s.json: (document): open('/nonexistent/wedge/s.json'): ENOENT "
            "(No such file or directory)");
}

TEST(ScenarioLoader, RefusesADirectory) {
  TempDir dir;
  LoadError error = ExpectError(LoadScenarioFile(dir.path()));
  EXPECT_EQ(error.message, "expected a regular file, got a directory");
}

TEST(ScenarioLoader, RefusesAFifoWithoutWaitingForAWriter) {
  TempDir dir;
  fs::path fifo = dir.path() / "pipe.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  LoadError error = ExpectError(LoadScenarioFile(fifo));
  EXPECT_EQ(error.message, "expected a regular file, got a FIFO");
}

TEST(ScenarioLoader, ReportsTheSameErrorForAFileAndItsText) {
  fs::path file = kMalformedDir / "kill-unknown-signal.json";
  LoadError from_file = ExpectError(LoadScenarioFile(file));
  LoadError from_text = ExpectError(ParseScenario(ReadText(file), file));
  EXPECT_EQ(from_file.ToString(), from_text.ToString());
}

// ---------------------------------------------------------------------------------------------
// The malformed corpus: one file per refusal, each with its exact pointer.

struct MalformedCase {
  std::string_view file;     // in tests/data/scenarios/malformed, without ".json"
  std::string pointer;       // exact
  std::string_view message;  // a stable part of the message; all of it unless it quotes the parser
  int line = 0;              // syntax and encoding errors only
  int column = 0;
};

std::ostream& operator<<(std::ostream& out, const MalformedCase& malformed) {
  return out << malformed.file;
}

std::string DeepPointer() {
  std::string pointer = "/references";
  for (int i = 0; i < 63; ++i) pointer += "/0";
  return pointer;
}

const std::vector<MalformedCase>& MalformedCases() {
  static const std::string kDeepPointer = DeepPointer();
  static const std::vector<MalformedCase> kCases = {
      {"cgroup-unknown-key", "/isolation/cgroup/memory.max",
       "unknown key \"memory.max\"; allowed: pids.max"},
      {"duplicate-key", "/name", "duplicate key \"name\" (each key may appear once)"},
      {"expect-bad-verdict", "/expect/verdict",
       "expected one of \"reproduced\", \"not-reproduced\", \"unexplained\", got \"passed\""},
      {"expect-missing-reason", "/expect", "missing required key \"reason\""},
      {"expect-stacks-missing-reason", "/expect/stacks/bullseye",
       "missing required key \"reason\""},
      {"expect-stacks-unknown-release", "/expect/stacks/buster",
       "expected a Debian release (bullseye, bookworm, trixie, sid), got \"buster\""},
      {"expect-stacks-without-stack", "/expect/stacks",
       "expectations per stack need a scenario that uses the stack (\"stack\")"},
      {"file-empty", "/fixtures/daemon/file",
       "expected a relative path inside the run directory, got \"\" (empty)"},
      {"file-trailing-slash", "/fixtures/daemon/file",
       "expected a relative path inside the run directory, got \"held/\" (empty component)"},
      {"fixture-bad-name", "/fixtures/Daemon",
       "expected a fixture name matching ^[a-z0-9][a-z0-9-]{0,63}$, got \"Daemon\""},
      {"fixture-missing-kind", "/fixtures/daemon", "missing required key \"kind\""},
      {"fixture-never-spawned", "/fixtures/spare",
       "fixture \"spare\" is never spawned: add a spawn step or remove the fixture"},
      {"fixture-unknown-key", "/fixtures/daemon/threads",
       "unknown key \"threads\" for a \"fuse-daemon\" fixture; allowed: kind, mountpoint, file, "
       "holder_thread, holder_open, holder_closes, flush"},
      {"fixture-unknown-kind", "/fixtures/daemon/kind",
       "expected one of \"fuse-daemon\", got \"nfs-server\""},
      {"flush-unknown", "/fixtures/daemon/flush",
       "expected one of \"reply\", \"never\", got \"sometimes\""},
      {"holder-closes-o-path", "/fixtures/daemon/holder_closes",
       "holder_closes needs \"holder_open\": \"read\": an O_PATH file sends no FLUSH or RELEASE "
       "to answer"},
      {"holder-closes-without-holder", "/fixtures/daemon/holder_closes",
       "holder_closes needs \"holder_thread\": true: without a holder no file of the mount is "
       "open"},
      {"holder-open-unknown", "/fixtures/daemon/holder_open",
       "expected one of \"read\", \"path\", got \"write\""},
      {"holder-thread-string", "/fixtures/daemon/holder_thread",
       "expected true or false, got \"yes\""},
      {"invalid-utf8", "/summary", "invalid UTF-8 (byte 0xFF): scenario files must be UTF-8", 4,
       22},
      {"isolation-unknown-key", "/isolation/namespace",
       "unknown key \"namespace\"; allowed: namespaces, cgroup, sysctls, rlimits"},
      {"key-needing-pointer-escape", "/isolation/sysctls/net~1ipv4~0x",
       "sysctl \"net/ipv4~x\" is not in the allowlist: fs.pipe-user-pages-soft, "
       "fs.pipe-user-pages-hard, fs.pipe-max-size"},
      {"kill-before-spawn", "/steps/0/target",
       "no process named \"daemon\" is spawned before this step; known: \"sandbox-init\""},
      {"kill-missing-signal", "/steps/1", "missing required key \"signal\""},
      {"kill-signal-number", "/steps/1/signal",
       "expected a signal name such as \"SIGKILL\", got 9"},
      {"kill-unknown-signal", "/steps/1/signal",
       "expected a signal name such as \"SIGKILL\", got \"SIGFOO\""},
      {"kill-unknown-target", "/steps/1/target",
       "no process named \"dockerd\" is spawned before this step; known: \"sandbox-init\", "
       "\"daemon\""},
      {"mountpoint-absolute", "/fixtures/daemon/mountpoint",
       "expected a relative path inside the run directory, got \"/mnt\" (absolute)"},
      {"mountpoint-dotdot", "/fixtures/daemon/mountpoint",
       "expected a relative path inside the run directory, got \"mnt/../../etc\" (\"..\" "
       "component)"},
      {"mountpoint-empty-component", "/fixtures/daemon/mountpoint",
       "expected a relative path inside the run directory, got \"mnt//fuse\" (empty component)"},
      {"mountpoints-overlap", "/fixtures/second/mountpoint",
       "mountpoint \"mnt/inner\" overlaps the mountpoint \"mnt\" of fixture \"daemon\""},
      {"name-missing", "", "missing required key \"name\""},
      {"name-uppercase", "/name",
       "expected a scenario name matching ^[a-z0-9][a-z0-9-]{0,63}$, got \"Fuse_Flush\""},
      {"namespace-duplicate", "/isolation/namespaces/2",
       "duplicate \"pid\" (already at /isolation/namespaces/0)"},
      {"namespace-pid-needed-for-kill", "/steps/1/target",
       "killing \"sandbox-init\" needs the pid namespace: add \"pid\" to /isolation/namespaces"},
      {"namespace-unknown", "/isolation/namespaces/2",
       "expected one of \"user\", \"pid\", \"mount\", got \"net\""},
      {"nesting-too-deep", kDeepPointer, "nesting deeper than 64 levels"},
      {"not-an-object", "", "expected the scenario to be a JSON object, got an array"},
      {"number-overflow", "/wedge_scenario", "invalid JSON: number overflow parsing '1e400'", 1,
       24},
      {"pids-max-float", "/isolation/cgroup/pids.max",
       "expected an integer from 1 to 4194304, got 64.5"},
      {"pids-max-string", "/isolation/cgroup/pids.max",
       "expected an integer from 1 to 4194304, got \"64\""},
      {"pids-max-too-large", "/isolation/cgroup/pids.max",
       "expected an integer from 1 to 4194304, got 4194305"},
      {"pids-max-zero", "/isolation/cgroup/pids.max",
       "expected an integer from 1 to 4194304, got 0"},
      {"recovery-duplicate", "/recovery/2", "duplicate \"kill-sandbox\" (already at /recovery/1)"},
      {"recovery-unknown", "/recovery/2",
       "expected one of \"abort-fuse-connections\", \"kill-sandbox\", \"drain-pipes\", got "
       "\"reboot\""},
      {"recovery-without-fuse-abort", "/recovery",
       "recovery must include \"abort-fuse-connections\" for the fuse-daemon fixture at "
       "/fixtures/daemon: a task stuck in a FUSE request ignores SIGKILL"},
      {"reference-bad-kind", "/references/0/kind",
       "expected one of \"commit\", \"issue\", \"pull-request\", \"report\", \"mailing-list\", got "
       "\"blog\""},
      {"reference-bad-url", "/references/0/url",
       "expected an http:// or https:// URL, got \"netflixtechblog.com/x\""},
      {"reference-commit-not-hex", "/references/1/id",
       "expected a commit id of 7 to 40 lower-case hex digits, got \"fuse-flush-fix\""},
      {"requirement-duplicate", "/requires/5", "duplicate \"root\" (already at /requires/0)"},
      {"requirement-implied-missing", "/requires",
       "missing requirement \"fusectl\", needed by the recovery action \"abort-fuse-connections\""},
      {"requirement-unknown", "/requires/5",
       "expected one of \"root\", \"fuse-device\", \"fusectl\", \"pids-cgroup\", "
       "\"kernel-stacks\", \"seccomp\", got \"kvm\""},
      {"rlimit-above-int64", "/isolation/rlimits/RLIMIT_NOFILE/hard",
       "expected an integer from 0 to 9223372036854775807 or \"unlimited\", got "
       "9223372036854775808"},
      {"rlimit-infinity-word", "/isolation/rlimits/RLIMIT_NOFILE/hard",
       "expected an integer from 0 to 9223372036854775807 or \"unlimited\", got \"infinity\""},
      {"rlimit-missing-hard", "/isolation/rlimits/RLIMIT_NOFILE", "missing required key \"hard\""},
      {"rlimit-negative", "/isolation/rlimits/RLIMIT_NOFILE/hard",
       "expected an integer from 0 to 9223372036854775807 or \"unlimited\", got -1"},
      {"rlimit-soft-above-hard", "/isolation/rlimits/RLIMIT_NOFILE/soft",
       "soft limit 8192 is above the hard limit 4096"},
      {"rlimit-soft-unlimited-above-hard", "/isolation/rlimits/RLIMIT_NOFILE/soft",
       "soft limit \"unlimited\" is above the hard limit 4096"},
      {"rlimit-unknown", "/isolation/rlimits/RLIMIT_FILES",
       "unknown resource limit \"RLIMIT_FILES\"; expected one of RLIMIT_AS, RLIMIT_CORE, "
       "RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, "
       "RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, "
       "RLIMIT_SIGPENDING, RLIMIT_STACK"},
      {"select-bad-thread", "/signatures/bug/tasks/0/select/thread",
       "expected one of \"any\", \"leader\", \"non-leader\", got \"main\""},
      {"select-comm-too-long", "/signatures/bug/tasks/2/select/comm",
       "expected a comm of 1 to 15 bytes (the kernel keeps 15), got \"fuse-holder-thread\""},
      {"select-unknown-key", "/signatures/bug/tasks/2/select/pid",
       "unknown key \"pid\"; allowed: process, comm, thread"},
      {"select-unknown-process", "/signatures/bug/tasks/0/select/process",
       "no process named \"containerd-shim\"; known: \"sandbox-init\", \"daemon\""},
      {"shd-pending-short-name", "/signatures/bug/tasks/2/shd_pending/0",
       "expected a signal name such as \"SIGKILL\", got \"KILL\""},
      {"signature-all-exited-false", "/signatures/healthy/all_exited",
       "\"all_exited\" may only be true; omit it and list tasks instead"},
      {"signature-missing-description", "/signatures/healthy",
       "missing required key \"description\""},
      {"signature-no-tasks-no-all-exited", "/signatures/healthy",
       "missing required key \"tasks\" (or \"commands\", \"rates\", or \"all_exited\": true)"},
      {"signature-tasks-and-all-exited", "/signatures/bug",
       "a signature has either \"tasks\" or \"all_exited\": true, not both"},
      {"signature-tasks-empty", "/signatures/bug/tasks",
       "expected at least one task expectation, got []"},
      {"signatures-both-all-exited", "/signatures/healthy",
       "the bug and healthy signatures cannot both be all_exited: no run could tell them apart"},
      {"signatures-missing-healthy", "/signatures", "missing required key \"healthy\""},
      {"spawn-duplicate-name", "/steps/1/name",
       "duplicate process name \"daemon\" (already spawned by /steps/0)"},
      {"spawn-fixture-twice", "/steps/1/fixture",
       "fixture \"daemon\" is already spawned by /steps/0 (a fixture runs once)"},
      {"spawn-named-sandbox-init", "/steps/0/name",
       "\"sandbox-init\" is wedge's own init process; choose another name"},
      {"spawn-unknown-fixture", "/steps/0/fixture",
       "no fixture named \"deamon\" in /fixtures; defined: \"daemon\""},
      {"stack-empty", "/signatures/bug/tasks/0/stack", "expected at least one frame, got []"},
      {"stack-frame-with-offset", "/signatures/bug/tasks/2/stack/2",
       "expected a normalised kernel function name such as \"fuse_flush\" (no offset, module or "
       ".isra/.part suffix), or such names separated by \"|\" for a function renamed between "
       "kernels (\"anon_pipe_write|pipe_write\"), got \"fuse_flush+0x16f/0x1b0\""},
      {"stall-poll-too-large", "/stall/poll_interval_ms",
       "expected an integer from 1 to 1000, got 5000"},
      {"stall-settle-below-poll", "/stall/settle_ms",
       "settle_ms (100) must be at least poll_interval_ms (500)"},
      {"stall-timeout-below-settle", "/stall/timeout_ms",
       "timeout_ms (1000) must be at least settle_ms (5000)"},
      {"stall-unknown-key", "/stall/settle",
       "unknown key \"settle\"; allowed: poll_interval_ms, settle_ms, timeout_ms"},
      {"state-duplicate", "/signatures/bug/tasks/0/state/2",
       "duplicate \"S\" (already at /signatures/bug/tasks/0/state/0)"},
      {"state-not-array", "/signatures/bug/tasks/2/state",
       "expected an array of state letters (R S D T t Z X I), got \"D\""},
      {"state-unknown-letter", "/signatures/bug/tasks/2/state/1",
       "expected a state letter, one of R S D T t Z X I, got \"Q\""},
      {"step-key-of-other-action", "/steps/1/fixture",
       "unknown key \"fixture\" for a \"kill\" step; allowed: action, target, signal"},
      {"step-not-object", "/steps/1", "expected a step object, got \"kill sandbox-init\""},
      {"step-unknown-action", "/steps/1/action",
       "expected one of \"spawn\", \"kill\", \"wait-for-stall\", \"run-command\", \"flap\", got "
       "\"exec\""},
      {"steps-empty", "/steps", "expected at least one step, got []"},
      {"steps-missing", "", "missing required key \"steps\""},
      {"summary-empty", "/summary", "expected a non-empty string, got \"\""},
      {"syntax-comment", "",
       "invalid JSON: syntax error while parsing object key - invalid literal", 2, 3},
      {"syntax-empty-file", "",
       "invalid JSON: syntax error while parsing value - unexpected end of input", 1, 1},
      {"syntax-missing-comma", "",
       "invalid JSON: syntax error while parsing object - unexpected string literal", 4, 11},
      {"syntax-trailing-comma", "/steps/1",
       "invalid JSON: syntax error while parsing value - unexpected ']'", 5, 3},
      {"syntax-truncated", "/fixtures/daemon",
       "invalid JSON: syntax error while parsing object key - unexpected end of input", 48, 1},
      {"syntax-unescaped-newline", "/summary",
       "invalid JSON: syntax error while parsing value - invalid string: control character U+000A "
       "(LF) must be escaped to \\u000A or \\n",
       3, 18},
      {"sysctl-not-allowed", "/isolation/sysctls/kernel.panic",
       "sysctl \"kernel.panic\" is not in the allowlist: fs.pipe-user-pages-soft, "
       "fs.pipe-user-pages-hard, fs.pipe-max-size"},
      {"sysctl-value-not-digits", "/isolation/sysctls/fs.pipe-max-size",
       "expected the value as a string of 1 to 19 decimal digits such as \"1\", got \"1M\""},
      {"sysctl-value-number", "/isolation/sysctls/fs.pipe-user-pages-soft",
       "expected the value as a string of 1 to 19 decimal digits such as \"1\", got 1"},
      {"task-duplicate-role", "/signatures/bug/tasks/2/role",
       "duplicate role \"daemon-leader\" (already at /signatures/bug/tasks/1/role)"},
      {"task-flag-unknown", "/signatures/bug/tasks/2/task_flags/0",
       "expected a task flag name such as \"PF_EXITING\", got \"PF_STUCK\""},
      {"task-unknown-key", "/signatures/bug/tasks/2/wchan",
       "unknown key \"wchan\"; allowed: role, select, state, stack, shd_pending, sig_pending, "
       "task_flags"},
      {"trailing-content", "", "invalid JSON: syntax error while parsing value - unexpected '{'", 2,
       1},
      {"unknown-top-level-key", "/stepz",
       "unknown key \"stepz\"; allowed: wedge_scenario, name, summary, references, requires, "
       "isolation, fixtures, stack, steps, preconditions, stall, recovery, signatures, expect"},
      {"version-missing", "", "missing required key \"wedge_scenario\""},
      {"version-string", "/wedge_scenario", "expected the format version 1, got \"1\""},
      {"version-unsupported", "/wedge_scenario",
       "unsupported format version 2: this wedge reads version 1"},
      {"wait-for-stall-missing", "/steps",
       "the last step must be {\"action\": \"wait-for-stall\"}: the spawn and kill steps (first "
       "at /steps/0) are observed by it (only a scenario of run-command steps may omit it)"},
      {"wait-for-stall-not-last", "/steps/1",
       "\"wait-for-stall\" must be the last step (at most one per scenario)"},
      // Stacks, run-command steps, confinements, preconditions and command signatures; most are
      // scenarios/seccomp-resources-sigsys.json with one thing broken.
      {"all-exited-without-wait-for-stall", "/signatures/healthy/all_exited",
       "\"all_exited\" is observed by the \"wait-for-stall\" step, and /steps has none"},
      {"architectures-unknown", "/steps/0/confinement/SystemCallArchitectures",
       "expected one of \"native\", got \"x86-64\""},
      {"command-expectation-duplicate", "/signatures/bug/commands/1/command",
       "duplicate command \"image-ls\" (already at /signatures/bug/commands/0/command)"},
      {"command-expectation-exit-and-killed", "/signatures/healthy/commands/0",
       "a command expectation has either \"exit_code\" or \"killed_by\", not both (a process "
       "either exits or is killed)"},
      {"command-expectation-exit-code-range", "/signatures/healthy/commands/0/exit_code",
       "expected an integer from 0 to 255, got 256"},
      {"command-expectation-killed-by-short", "/signatures/bug/commands/0/killed_by",
       "expected a signal name such as \"SIGKILL\", got \"SYS\""},
      {"command-expectation-output-empty-string",
       "/signatures/healthy/commands/0/output_contains/0",
       "expected a non-empty string without NUL, got \"\""},
      {"command-expectation-refused-bad-name", "/signatures/bug/commands/0/refused_syscall",
       "expected a syscall name of lower-case letters, digits and \"_\" such as \"setrlimit\", got "
       "\"setrlimit(2)\""},
      {"command-expectation-refused-without-sigsys", "/signatures/bug/commands/0/refused_syscall",
       "\"refused_syscall\" needs \"killed_by\": \"SIGSYS\" (a seccomp filter that refuses a "
       "syscall kills the process with SIGSYS)"},
      {"command-expectation-says-nothing", "/signatures/healthy/commands/0",
       "a command expectation must say how the command ended: add \"exit_code\", \"killed_by\", "
       "\"output_contains\" or \"running_at_capture\""},
      {"command-expectation-unknown-command", "/signatures/bug/commands/0/command",
       "no run-command step named \"image-list\"; defined: \"image-ls\""},
      {"command-expectation-unknown-key", "/signatures/bug/commands/0/signal",
       "unknown key \"signal\"; allowed: command, exit_code, killed_by, refused_syscall, "
       "output_contains"},
      {"commands-empty", "/signatures/bug/commands",
       "expected at least one command expectation, got []"},
      {"confinement-rlimit-soft-above-hard", "/steps/0/confinement/rlimits/RLIMIT_NOFILE/soft",
       "soft limit 1048576 is above the hard limit 524288"},
      {"confinement-unknown-key", "/steps/0/confinement/LimitNOFILE",
       "unknown key \"LimitNOFILE\"; allowed: SystemCallFilter, SystemCallArchitectures, "
       "NoNewPrivileges, rlimits"},
      {"filter-comma-separated", "/steps/0/confinement/SystemCallFilter/1",
       "expected a SystemCallFilter= line of \"@group\" and syscall names separated by spaces, "
       "optionally starting with \"~\", got \"~@privileged,@resources\" "
       "(\"@privileged,@resources\" is neither a \"@group\" nor a syscall name)"},
      {"filter-empty", "/steps/0/confinement/SystemCallFilter",
       "expected at least one SystemCallFilter= line, got []"},
      {"filter-errno-action", "/steps/0/confinement/SystemCallFilter/1",
       "got \"~@privileged @resources:EPERM\" (\"@resources:EPERM\": the \":errno\" action is not "
       "supported, a refused syscall kills the process)"},
      {"filter-not-array", "/steps/0/confinement/SystemCallFilter",
       "expected an array of SystemCallFilter= lines, got \"@system-service\""},
      {"filter-tilde-only", "/steps/0/confinement/SystemCallFilter/1",
       "optionally starting with \"~\", got \"~\" (no group or syscall)"},
      {"kill-targets-a-command", "/steps/1/target",
       "\"image-ls\" is the run-command step /steps/0, not a process: a command has ended before "
       "the next step starts, so it cannot be killed"},
      {"no-new-privileges-string", "/steps/0/confinement/NoNewPrivileges",
       "expected true or false, got \"yes\""},
      {"precondition-duplicate-name", "/preconditions/1/name",
       "duplicate precondition \"nofile-soft-below-hard\" (already at /preconditions/0/name)"},
      {"precondition-fails-but-reproduced", "/expect/verdict",
       "\"reproduced\" contradicts the precondition \"nofile-soft-below-hard\" (/preconditions/0), "
       "which does not hold in this file: RLIMIT_NOFILE of \"image-ls\" is 524288:524288, soft not "
       "below hard"},
      {"precondition-fails-reason-silent", "/expect/reason",
       "the reason must name the precondition that does not hold: \"nofile-soft-below-hard\" "
       "(/preconditions/0)"},
      {"precondition-missing-why", "/preconditions/0", "missing required key \"why\""},
      {"precondition-rlimit-not-pinned", "/preconditions/0/rlimit",
       "the run-command step \"image-ls\" (/steps/0) does not pin RLIMIT_NPROC: add it to "
       "/steps/0/confinement/rlimits (a precondition on an inherited limit would depend on the "
       "host)"},
      {"precondition-unknown-command", "/preconditions/0/command",
       "no run-command step named \"image-list\"; defined: \"image-ls\""},
      {"precondition-unknown-key", "/preconditions/0/soft",
       "unknown key \"soft\" for a \"rlimit-soft-below-hard\" precondition; allowed: name, kind, "
       "command, rlimit, why"},
      {"precondition-unknown-kind", "/preconditions/0/kind",
       "expected one of \"rlimit-soft-below-hard\", \"pids-limit-hit\", "
       "\"pipe-capacity-at-most\", got \"rlimit-equal\""},
      {"precondition-unknown-rlimit", "/preconditions/0/rlimit",
       "unknown resource limit \"RLIMIT_FILES\"; expected one of RLIMIT_AS, RLIMIT_CORE, "
       "RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, "
       "RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, "
       "RLIMIT_SIGPENDING, RLIMIT_STACK"},
      {"requirement-root-for-stack", "/requires",
       "missing requirement \"root\", needed by the private docker stack at /stack"},
      {"requirement-seccomp-missing", "/requires",
       "missing requirement \"seccomp\", needed by the SystemCallFilter at "
       "/steps/0/confinement/SystemCallFilter"},
      {"run-command-arg-nul", "/steps/0/args/1",
       "expected an argument string of at most 4096 bytes without NUL, got \"l\\u0000s\""},
      {"run-command-args-string", "/steps/0/args",
       "expected an array of argument strings, got \"image ls\""},
      {"run-command-binary-path", "/steps/0/binary",
       "expected one of \"docker\", \"dockerd\", \"containerd\", \"runc\", "
       "\"containerd-shim-runc-v2\", got \"/usr/bin/docker\""},
      {"run-command-duplicate-name", "/steps/1/name",
       "duplicate name \"image-ls\" (already used by the run-command step /steps/0)"},
      {"run-command-missing-binary", "/steps/0", "missing required key \"binary\""},
      {"run-command-named-like-spawn", "/steps/1/name",
       "duplicate name \"daemon\" (already used by the spawn step /steps/0)"},
      {"run-command-timeout-too-small", "/steps/0/timeout_ms",
       "expected an integer from 100 to 600000, got 50"},
      {"run-command-unknown-key", "/steps/0/env",
       "unknown key \"env\" for a \"run-command\" step; allowed: action, name, binary, args, "
       "confinement, timeout_ms"},
      {"run-command-without-stack", "/steps/0",
       "a \"run-command\" step runs against the private docker stack: add \"stack\": {} at the "
       "top level"},
      {"select-names-a-command", "/signatures/bug/tasks/0/select/process",
       "\"image-ls\" is the run-command step /steps/0, not a process: expect how it ended under "
       "\"commands\""},
      {"stack-fresh-string", "/stack/fresh", "expected true or false, got \"yes\""},
      {"stack-unknown-key", "/stack/image", "unknown key \"image\"; allowed: fresh, busybox_image"},
      {"stack-unused", "/stack",
       "the private docker stack is never used: add a \"run-command\" or \"flap\" step or remove "
       "\"stack\""},
      {"stall-without-wait-for-stall", "/stall",
       "\"stall\" configures the \"wait-for-stall\" step, and /steps has none: remove it"},
      {"tasks-without-wait-for-stall", "/signatures/bug/tasks",
       "task expectations are captured by the \"wait-for-stall\" step or a watched run-command "
       "step, and /steps has neither"},
      // Flap steps, ${image} placeholders and rate signatures; most are
      // scenarios/containerd-socket-flap.json with one thing broken.
      {"command-named-like-flap", "/steps/2/name",
       "duplicate name \"flap\" (already used by the flap step /steps/1)"},
      {"flap-cycles-zero", "/steps/1/cycles", "expected an integer from 1 to 100, got 0"},
      {"flap-down-too-short", "/steps/1/down_ms", "expected an integer from 100 to 600000, got 50"},
      {"flap-how-unknown", "/steps/1/how",
       "expected one of \"sigkill\", \"sigstop\", \"unlink-socket\", \"restart\", got \"sigterm\""},
      {"flap-missing-how", "/steps/1", "missing required key \"how\""},
      {"flap-named-like-command", "/steps/1/name",
       "duplicate name \"victim\" (already used by the run-command step /steps/0)"},
      {"flap-recovery-timeout-float", "/steps/1/recovery_timeout_ms",
       "expected an integer from 1000 to 600000, got 30000.5"},
      {"flap-second", "/steps/2",
       "at most one \"flap\" step per scenario (the first is /steps/1): the syscall probe measures "
       "one outage window per run"},
      {"flap-shared-stack", "/stack/fresh",
       "the \"flap\" step at /steps/1 breaks the private docker stack on purpose: set \"fresh\": "
       "true (a stack of the scenario's own, never shared with other scenarios)"},
      {"flap-stack-fresh-omitted", "/stack",
       "the \"flap\" step at /steps/1 breaks the private docker stack on purpose: set \"fresh\": "
       "true"},
      {"flap-target-dockerd", "/steps/1/target",
       "expected \"containerd\" (the only component a flap step can take away), got \"dockerd\""},
      {"flap-unknown-key", "/steps/1/signal",
       "unknown key \"signal\" for a \"flap\" step; allowed: action, name, target, how, cycles, "
       "down_ms, up_ms, recovery_timeout_ms"},
      {"flap-up-negative", "/steps/1/up_ms", "expected an integer from 0 to 600000, got -1"},
      {"flap-with-wait-for-stall", "/steps/3",
       "a \"wait-for-stall\" step cannot share a scenario with the \"flap\" step at /steps/1: a "
       "flap "
       "scenario only runs commands against its own stack (its signatures are \"rates\" and "
       "\"commands\")"},
      {"flap-without-stack", "/steps/0",
       "a \"flap\" step takes the private docker stack's containerd away: add \"stack\": "
       "{\"fresh\": true} at the top level"},
      {"placeholder-second-unknown", "/steps/0/args/6",
       "unknown placeholder \"${name}\"; the only placeholder is \"${image}\", the stack's busybox "
       "image reference"},
      {"placeholder-unknown", "/steps/0/args/6",
       "unknown placeholder \"${tag}\"; the only placeholder is \"${image}\", the stack's busybox "
       "image reference"},
      {"placeholder-unterminated", "/steps/0/args/6",
       "unterminated placeholder \"${image\" (no closing \"}\"); the only placeholder is "
       "\"${image}\""},
      {"placeholder-without-busybox", "/steps/0/args/6",
       "\"${image}\" is the stack's busybox image, and /stack/busybox_image is false: set it to "
       "true or drop the placeholder"},
      {"rate-fraction-percent", "/signatures/bug/rates/0/for_fraction",
       "expected a number greater than 0 and at most 1 (the share of the window's seconds that "
       "must satisfy the bound), got 66"},
      {"rate-fraction-zero", "/signatures/bug/rates/0/for_fraction",
       "expected a number greater than 0 and at most 1 (the share of the window's seconds that "
       "must satisfy the bound), got 0"},
      {"rate-mean-with-fraction", "/signatures/bug/rates/0/aggregate",
       "\"for_fraction\" applies to \"each_second\" only: a mean is one number per window"},
      {"rate-aggregate-unknown", "/signatures/bug/rates/0/aggregate",
       "expected one of \"each_second\", \"mean\", got \"median\""},
      {"rate-min-above-max", "/signatures/bug/rates/0/min_per_second",
       "min_per_second 50 is above max_per_second 15: no second could satisfy both"},
      {"rate-min-negative", "/signatures/bug/rates/0/min_per_second",
       "expected a number of events per second, 0 or more, got -1"},
      {"rate-min-string", "/signatures/bug/rates/0/min_per_second",
       "expected a number of events per second, 0 or more, got \"50\""},
      {"rate-no-bound", "/signatures/bug/rates/0",
       "a rate expectation needs a bound: add \"min_per_second\", \"max_per_second\" or both"},
      {"rate-rationale-multiline", "/signatures/bug/rates/0/rationale",
       "expected one line of text without control characters, got \"half the measured "
       "rate\\u000afive times the healthy one\""},
      {"rate-unknown-key", "/signatures/bug/rates/0/per_second",
       "unknown key \"per_second\"; allowed: metric, window, min_per_second, max_per_second, "
       "for_fraction, aggregate, rationale"},
      {"rate-unknown-metric", "/signatures/bug/rates/0/metric",
       "expected one of \"connect\", \"connect_errors\", \"socket\", \"close\", \"threads\", "
       "\"futex_threads\", \"containerd_log_lines\", got \"connects\""},
      {"rate-unknown-window", "/signatures/bug/rates/0/window",
       "expected one of \"outage\", \"after\", got \"between\""},
      {"rates-empty", "/signatures/bug/rates", "expected at least one rate expectation, got []"},
      {"rates-without-flap", "/signatures/bug/rates",
       "rate expectations are measured by the syscall probe of a \"flap\" step, and /steps has "
       "none"},
      // Watched run-command steps, observed preconditions, pipe expectations and frame
      // alternatives; most are scenarios/runc-exec-pipe-full-injected.json with one thing broken.
      {"watch-without-drain-pipes", "",
       "recovery must include \"drain-pipes\" for the watched run-command step at /steps/1: what "
       "it watches may block on a pipe nobody reads, and only reading it frees the writer and its "
       "parent"},
      {"watch-with-flap", "/steps/1/watch",
       "a watched run-command step cannot share a scenario with the \"flap\" step at /steps/2: a "
       "flap scenario's signatures are \"rates\" and \"commands\""},
      {"watch-unknown-key", "/steps/1/watch/hold",
       "unknown key \"hold\"; allowed: container, comm, label, parent_label, stalled_states, "
       "poll_interval_ms, "
       "settle_ms, hold_syscall, hold_ms, stderr_pipe_bytes"},
      {"watch-without-fresh-stack", "/steps/1/watch",
       "a watched command may leave its container wedged until recovery: set /stack/fresh to true "
       "(a stack of the scenario's own)"},
      {"watch-second", "/steps/2/watch",
       "at most one watched run-command step per scenario (the first is /steps/1/watch): its "
       "capture is the one the tasks are matched against"},
      {"watch-with-wait-for-stall", "/steps/2",
       "a scenario captures tasks either by \"wait-for-stall\" or by one watched run-command step, "
       "not both (the watch is /steps/1/watch)"},
      {"watch-unknown-container", "/steps/1/watch/container",
       "no earlier run-command step starts a container named \"wedge-pipe-ful\" (docker run --name "
       "wedge-pipe-ful); known: \"wedge-pipe-full\""},
      {"watch-own-container", "/steps/0/watch/container",
       "no earlier run-command step starts a container named \"wedge-pipe-full\" (docker run "
       "--name wedge-pipe-full); known: (none)"},
      {"watch-comm-too-long", "/steps/1/watch/comm",
       "expected a comm of 1 to 15 bytes (the kernel keeps 15), got \"runc:[2:INIT]-child\""},
      {"watch-label-is-a-command", "/steps/1/watch/label",
       "the process name \"container\" is already used by the run-command step /steps/0"},
      {"watch-label-is-its-step", "/steps/1/watch/label",
       "the process name \"exec\" is already used by this run-command step's name"},
      {"watch-parent-label-reused", "/steps/1/watch/parent_label",
       "the process name \"runc-init\" is already used at /steps/1/watch/label"},
      {"watch-label-named-by-later-step", "/steps/2/name",
       "duplicate name \"runc-init\" (already used as the process name at /steps/1/watch/label)"},
      {"watch-settle-below-poll", "/steps/1/watch/settle_ms",
       "settle_ms (20) must be at least poll_interval_ms (50)"},
      {"watch-settle-not-below-timeout", "/steps/1/watch/settle_ms",
       "settle_ms (1000) must be below the step's timeout_ms (1000): a stall is observed while the "
       "command still runs"},
      {"watch-hold-syscall-without-hold-ms", "/steps/1/watch",
       "\"hold_syscall\" needs \"hold_ms\": how long each entry is held"},
      {"watch-hold-ms-without-hold-syscall", "/steps/1/watch/hold_ms",
       "\"hold_ms\" needs \"hold_syscall\": the syscall to hold"},
      {"watch-hold-syscall-bad-name", "/steps/1/watch/hold_syscall",
       "expected a syscall name such as \"clone3\", got \"clone3()\""},
      {"watch-stderr-pipe-not-power-of-two", "/steps/1/watch/stderr_pipe_bytes",
       "expected a power of two from 4096 to 1048576 (pipe capacities are whole pages, rounded up "
       "to a power of two), got 5000"},
      {"watch-stderr-pipe-too-small", "/steps/1/watch/stderr_pipe_bytes",
       "expected an integer from 4096 to 1048576, got 2048"},
      {"drain-pipes-without-watch", "/recovery/0",
       "\"drain-pipes\" drains the pipes of a watched run-command step's processes, and /steps has "
       "no run-command step with a \"watch\""},
      {"running-at-capture-unwatched", "/signatures/bug/commands/1/running_at_capture",
       "\"running_at_capture\" is observed by a run-command step's \"watch\", and \"container\" "
       "(/steps/0) has none"},
      {"running-at-capture-with-exit-code", "/signatures/bug/commands/0/running_at_capture",
       "a command still running at capture has not ended yet: drop \"exit_code\" and \"killed_by\" "
       "(recovery ends it)"},
      {"running-at-capture-string", "/signatures/bug/commands/0/running_at_capture",
       "expected true or false, got \"yes\""},
      {"pipe-expectation-says-nothing", "/signatures/bug/tasks/0/pipe",
       "a pipe expectation needs \"min_fill\", \"starts_with\" or both"},
      {"pipe-expectation-missing-fd", "/signatures/bug/tasks/0/pipe",
       "missing required key \"fd\""},
      {"pipe-expectation-unknown-key", "/signatures/bug/tasks/0/pipe/max_fill",
       "unknown key \"max_fill\"; allowed: fd, min_fill, starts_with"},
      {"pipe-min-fill-percent", "/signatures/bug/tasks/0/pipe/min_fill",
       "expected a number from 0 to 1 (unread bytes over the pipe's capacity), got 90"},
      {"pipe-starts-with-too-long", "/signatures/bug/tasks/0/pipe/starts_with",
       "expected a text of at most 256 bytes (wedge peeks at that many unread bytes), got "
       "\"runtime/cgo: pthread_create failed: Resource temporarily una...\""},
      {"stack-frame-empty-alternative", "/signatures/bug/tasks/0/stack/0",
       "expected a normalised kernel function name such as \"fuse_flush\" (no offset, module or "
       ".isra/.part suffix), or such names separated by \"|\" for a function renamed between "
       "kernels (\"anon_pipe_write|pipe_write\"), got \"anon_pipe_write|\""},
      {"precondition-pids-limit-unknown-key", "/preconditions/0/fd",
       "unknown key \"fd\" for a \"pids-limit-hit\" precondition; allowed: name, kind, command, "
       "container, why"},
      {"precondition-pids-limit-missing-container", "/preconditions/0",
       "missing required key \"container\""},
      {"precondition-pipe-capacity-max-bytes-range", "/preconditions/1/max_bytes",
       "expected an integer from 4096 to 1048576, got 1024"},
      {"precondition-container-started-later", "/preconditions/0/container",
       "the container \"wedge-later\" is started by \"later\", which does not run before \"exec\""},
      {"spawn-container-without-fresh-stack", "/steps/0/container",
       "a fixture in a container may wedge it until recovery: set /stack/fresh to true (a stack of "
       "the scenario's own)"},
      {"spawn-container-bad-name", "/steps/0/container/name",
       "expected a container name matching [a-zA-Z0-9][a-zA-Z0-9_.-]+ (2 to 63 bytes), got "
       "\"-kill\""},
      {"spawn-container-init-label-is-the-spawn", "/steps/0/container/init_label",
       "the process name \"daemon\" is already used (by this spawn step)"},
      {"spawn-container-unknown-key", "/steps/0/container/image",
       "unknown key \"image\"; allowed: name, init_label"},
      {"watch-label-on-spawned-container", "/steps/1/watch/label",
       "the container \"wedge-fuse-kill\" is started by the spawn step /steps/0/container, which "
       "names its processes: the capture is its whole tree"},
      {"watch-stalled-state-unknown", "/steps/1/watch/stalled_states/0",
       "expected a state letter, one of R S D T t Z X I, got \"Q\""},
      {"kill-sandbox-without-sandbox", "/recovery/1",
       "\"kill-sandbox\" needs wedge's sandbox, and no step makes one (a spawn outside a "
       "container, a kill or a wait-for-stall step): the stack's containers are recovered by their "
       "own actions"},
  };
  return kCases;
}

class MalformedScenario : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedScenario, IsRefusedAtItsPointerWithItsMessage) {
  const MalformedCase& expected = GetParam();
  fs::path file = kMalformedDir / (std::string(expected.file) + ".json");
  LoadError error = ExpectError(LoadScenarioFile(file));
  EXPECT_EQ(error.file, file.string());
  EXPECT_EQ(error.pointer, expected.pointer);
  EXPECT_NE(error.message.find(expected.message), std::string::npos)
      << "message: " << error.message << "\nexpected to contain: " << expected.message;
  EXPECT_EQ(error.line, expected.line);
  EXPECT_EQ(error.column, expected.column);
  // Errors end up in JSON reports and terminals: they must be UTF-8 whatever the file held.
  EXPECT_TRUE(IsValidUtf8(error.ToString())) << error.ToString();
}

INSTANTIATE_TEST_SUITE_P(Corpus, MalformedScenario, ::testing::ValuesIn(MalformedCases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& param_info) {
                           std::string name(param_info.param.file);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(MalformedCorpus, EveryFileHasAnExpectationAndEveryExpectationAFile) {
  std::set<std::string> files;
  for (const fs::path& file : ExpandScenarioPaths(kMalformedDir)) files.insert(file.stem());
  std::set<std::string> expected;
  for (const MalformedCase& malformed : MalformedCases()) {
    EXPECT_TRUE(expected.insert(std::string(malformed.file)).second) << malformed.file;
  }
  EXPECT_EQ(files, expected);
  EXPECT_GE(files.size(), 25u);
}

// ---------------------------------------------------------------------------------------------
// LoadError, names, paths.

TEST(LoadError, ToStringNamesFilePointerAndMessage) {
  LoadError error{"s.json", "/steps/1/signal",
                  "expected a signal name such as \"SIGKILL\", got \"SIGFOO\"", 0, 0};
  EXPECT_EQ(error.ToString(),
            "s.json: /steps/1/signal: expected a signal name such as \"SIGKILL\", got \"SIGFOO\"");
}

TEST(LoadError, ToStringShowsTheEmptyPointerAsDocument) {
  LoadError error{"s.json", "", "missing required key \"steps\"", 0, 0};
  EXPECT_EQ(error.ToString(), "s.json: (document): missing required key \"steps\"");
}

TEST(LoadError, ToStringPutsLineAndColumnAfterTheFile) {
  LoadError error{"s.json", "/name", "invalid JSON: x", 4, 11};
  EXPECT_EQ(error.ToString(), "s.json:4:11: /name: invalid JSON: x");
}

TEST(ScenarioNames, VerdictNames) {
  EXPECT_EQ(VerdictName(Verdict::kReproduced), "reproduced");
  EXPECT_EQ(VerdictName(Verdict::kNotReproduced), "not-reproduced");
  EXPECT_EQ(VerdictName(Verdict::kUnexplained), "unexplained");
}

TEST(ScenarioNames, RequirementNames) {
  EXPECT_EQ(RequirementName(Requirement::kRoot), "root");
  EXPECT_EQ(RequirementName(Requirement::kFuseDevice), "fuse-device");
  EXPECT_EQ(RequirementName(Requirement::kFusectl), "fusectl");
  EXPECT_EQ(RequirementName(Requirement::kPidsCgroup), "pids-cgroup");
  EXPECT_EQ(RequirementName(Requirement::kKernelStacks), "kernel-stacks");
  EXPECT_EQ(RequirementName(Requirement::kSeccomp), "seccomp");
}

TEST(AllowedSysctls, AreThePipeLimits) {
  EXPECT_EQ(AllowedSysctls(),
            (std::vector<std::string>{"fs.pipe-user-pages-soft", "fs.pipe-user-pages-hard",
                                      "fs.pipe-max-size"}));
}

TEST(Scenario, FindFixtureReturnsNullForAnUnknownName) {
  Scenario scenario;
  scenario.fixtures.push_back(Fixture{"daemon", FuseDaemonFixture{}});
  EXPECT_EQ(scenario.FindFixture("daemon"), &scenario.fixtures[0]);
  EXPECT_EQ(scenario.FindFixture("other"), nullptr);
}

TEST(ExpandScenarioPaths, ListsTheJsonFilesOfADirectorySortedByName) {
  TempDir dir;
  dir.Write("b.json", "{}");
  dir.Write("a.json", "{}");
  dir.Write(".hidden.json", "{}");
  dir.Write("notes.txt", "");
  fs::create_directory(dir.path() / "sub.json");
  dir.Write("sub.json/c.json", "{}");
  EXPECT_EQ(ExpandScenarioPaths(dir.path()),
            (std::vector<fs::path>{dir.path() / "a.json", dir.path() / "b.json"}));
}

TEST(ExpandScenarioPaths, ReturnsAFileArgumentAsIs) {
  EXPECT_EQ(ExpandScenarioPaths("some/file.json"), std::vector<fs::path>{"some/file.json"});
  fs::path real = kScenarioDir / "fuse-flush-pidns-teardown.json";
  EXPECT_EQ(ExpandScenarioPaths(real), std::vector<fs::path>{real});
}

}  // namespace
}  // namespace wedge::scenario
