#include "wedge/signature/signature.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace wedge::signature {
namespace {

using probe::StackFrame;
using probe::TreeSnapshot;

const std::string kProc = std::string(WEDGE_TEST_DATA_DIR) + "/proc";

// Reads a recorded seed 001 tree and labels its processes as a scenario would.
TreeSnapshot RecordedSeed001(const std::string& tree, pid_t init, pid_t daemon) {
  TreeSnapshot snapshot = probe::ReadProcesses({init, daemon}, false, kProc + "/" + tree);
  EXPECT_EQ(snapshot.processes.size(), 2U);
  for (probe::ProcessSnapshot& process : snapshot.processes) {
    process.label = process.pid == init ? "sandbox-init" : "daemon";
  }
  return snapshot;
}
TreeSnapshot Seed001On618() { return RecordedSeed001("seed001-6.18", 4100, 4117); }
TreeSnapshot Seed001OnOldKernel() {
  return RecordedSeed001("seed001-old-kernel", 1528591, 1544450);
}

TaskExpectation PidnsInit() {
  TaskExpectation init;
  init.role = "pidns-init";
  init.select.process = "sandbox-init";
  init.select.thread = TaskSelector::Thread::kLeader;
  init.states = {'S'};
  init.stack = {"do_wait", "kernel_wait4", "zap_pid_ns_processes", "do_exit"};
  return init;
}

TaskExpectation DaemonLeader() {
  TaskExpectation leader;
  leader.role = "daemon-leader";
  leader.select.process = "daemon";
  leader.select.thread = TaskSelector::Thread::kLeader;
  leader.states = {'Z'};
  return leader;
}

// The frames both kernels show: 6.18 adds __fuse_simple_request and filp_flush in between.
TaskExpectation StuckThread() {
  TaskExpectation thread;
  thread.role = "stuck-thread";
  thread.select.process = "daemon";
  thread.select.thread = TaskSelector::Thread::kNonLeader;
  thread.states = {'D'};
  thread.stack = {"request_wait_answer", "fuse_flush", "filp_close",
                  "put_files_struct",    "do_exit",    "get_signal"};
  thread.shd_pending = {"SIGKILL"};
  thread.task_flags = {"PF_EXITING"};
  return thread;
}

Signature Seed001Bug() {
  Signature signature;
  signature.description = "FUSE daemon killed during flush";
  signature.tasks = {PidnsInit(), DaemonLeader(), StuckThread()};
  return signature;
}

ObservedTask Task(std::string process, pid_t tid, bool leader, char state,
                  std::vector<std::string> stack = {}) {
  ObservedTask task;
  task.process = std::move(process);
  task.pid = leader ? tid : tid - 1;
  task.tid = tid;
  task.leader = leader;
  task.comm = "worker";
  task.state = state;
  task.stack = std::move(stack);
  return task;
}

TEST(NormalizeFrame, StripsOffsetsAndModules) {
  EXPECT_EQ(NormalizeFrame("fuse_flush+0x155/0x190"), "fuse_flush");
  EXPECT_EQ(NormalizeFrame("fuse_flush+0x155/0x190 [fuse]"), "fuse_flush");
  EXPECT_EQ(NormalizeFrame("request_wait_answer [fuse]"), "request_wait_answer");
  EXPECT_EQ(NormalizeFrame("[<0>] do_wait+0x5d/0x100"), "do_wait");
  EXPECT_EQ(NormalizeFrame("[<ffffffffadc4bd50>] pipe_wait+0x70/0xc0"), "pipe_wait");
  EXPECT_EQ(NormalizeFrame("do_exit"), "do_exit");
  EXPECT_EQ(NormalizeFrame("__x64_sys_exit_group"), "__x64_sys_exit_group");
}

TEST(NormalizeFrame, StripsCompilerCloneSuffixesRepeatedly) {
  EXPECT_EQ(NormalizeFrame("fuse_flush.isra.0"), "fuse_flush");
  EXPECT_EQ(NormalizeFrame("do_wait.part.12"), "do_wait");
  EXPECT_EQ(NormalizeFrame("filp_close.constprop.0"), "filp_close");
  EXPECT_EQ(NormalizeFrame("do_exit.cold"), "do_exit");
  EXPECT_EQ(NormalizeFrame("do_exit.cold.7"), "do_exit");
  EXPECT_EQ(NormalizeFrame("foo.llvm.4261947163781268917"), "foo");
  EXPECT_EQ(NormalizeFrame("foo.isra.0.cold"), "foo");
  EXPECT_EQ(NormalizeFrame("foo.constprop.0.isra.0+0x10/0x20 [mod]"), "foo");
  // Dots that are not clone suffixes stay.
  EXPECT_EQ(NormalizeFrame("foo.bar"), "foo.bar");
  EXPECT_EQ(NormalizeFrame("foo.isra"), "foo.isra");
}

TEST(NormalizeStack, ReducesBothKernelsFuseStacksToFunctionNames) {
  const std::vector<std::string> old_stack = NormalizeStack({
      StackFrame{"request_wait_answer", "0x12f/0x210", "fuse", ""},
      StackFrame{"fuse_simple_request.isra.0", "0x109/0x2c0", "fuse", ""},
      StackFrame{"fuse_flush", "", "", ""},
  });
  EXPECT_EQ(old_stack,
            (std::vector<std::string>{"request_wait_answer", "fuse_simple_request", "fuse_flush"}));
}

TEST(SignatureMatch, FramesMatchAsOrderedSubsequence) {
  const std::vector<std::string> on_618 = {
      "request_wait_answer", "__fuse_simple_request", "fuse_flush", "filp_flush",
      "filp_close",          "put_files_struct",      "do_exit",    "do_group_exit",
      "get_signal"};
  const std::vector<std::string> expected = {"request_wait_answer", "fuse_flush", "filp_close",
                                             "do_exit"};
  EXPECT_TRUE(IsOrderedSubsequence(expected, on_618));
  EXPECT_TRUE(IsOrderedSubsequence({}, on_618));
  EXPECT_TRUE(IsOrderedSubsequence(on_618, on_618));
  EXPECT_FALSE(IsOrderedSubsequence({"filp_close", "fuse_flush"}, on_618));
  EXPECT_FALSE(IsOrderedSubsequence({"fuse_flush", "fuse_flush"}, on_618));
  EXPECT_FALSE(IsOrderedSubsequence({"request_wait_answer"}, {}));
}

TEST(Observe, ReducesEveryTaskOfEveryProcess) {
  const Observation observation = Observe(Seed001On618(), /*all_exited=*/false);
  ASSERT_EQ(observation.tasks.size(), 3U);
  const ObservedTask& init = observation.tasks[0];
  EXPECT_EQ(init.process, "sandbox-init");
  EXPECT_EQ(init.tid, 4100);
  EXPECT_TRUE(init.leader);
  EXPECT_EQ(init.comm, "wedge-init");
  EXPECT_EQ(init.state, 'S');
  EXPECT_EQ(init.wchan, "do_wait");
  EXPECT_EQ(init.stack.front(), "do_wait");

  const ObservedTask& thread = observation.tasks[2];
  EXPECT_EQ(thread.process, "daemon");
  EXPECT_EQ(thread.pid, 4117);
  EXPECT_EQ(thread.tid, 4119);
  EXPECT_FALSE(thread.leader);
  EXPECT_EQ(thread.comm, "wedge-fuse");
  EXPECT_EQ(thread.state, 'D');
  EXPECT_EQ(
      thread.stack,
      (std::vector<std::string>{
          "request_wait_answer", "__fuse_simple_request", "fuse_flush", "filp_flush", "filp_close",
          "put_files_struct", "do_exit", "do_group_exit", "get_signal", "arch_do_signal_or_restart",
          "exit_to_user_mode_loop", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"}));
  EXPECT_EQ(thread.shd_pending, std::vector<std::string>{"SIGKILL"});
  EXPECT_TRUE(thread.sig_pending.empty());
  EXPECT_EQ(thread.task_flags, (std::vector<std::string>{"PF_EXITING", "PF_FORKNOEXEC",
                                                         "PF_SIGNALED", "PF_RANDOMIZE"}));
  EXPECT_FALSE(Observe(Seed001On618(), false).all_exited);
  EXPECT_TRUE(Observe(TreeSnapshot{}, true).all_exited);
}

TEST(SignatureMatch, Seed001MatchesOnThisKernelAndOnTheOldOne) {
  for (const TreeSnapshot& tree : {Seed001On618(), Seed001OnOldKernel()}) {
    const MatchResult result = Match(Seed001Bug(), Observe(tree, false));
    EXPECT_TRUE(result.matched);
    EXPECT_TRUE(result.mismatches.empty());
    ASSERT_EQ(result.bound.size(), 3U);
    EXPECT_EQ(result.bound[0].first, "pidns-init");
    EXPECT_EQ(result.bound[1].first, "daemon-leader");
    EXPECT_EQ(result.bound[2].first, "stuck-thread");
    EXPECT_EQ(result.bound[2].second.state, 'D');
    EXPECT_FALSE(result.bound[2].second.leader);
  }
}

TEST(SignatureMatch, ReportsStateAndStackDifferencesOfTheClosestTask) {
  Observation observation = Observe(Seed001On618(), false);
  ObservedTask& thread = observation.tasks[2];
  thread.state = 'S';
  thread.stack = {"futex_wait_queue", "futex_wait", "do_futex"};

  const MatchResult result = Match(Seed001Bug(), observation);
  EXPECT_FALSE(result.matched);
  ASSERT_EQ(result.mismatches.size(), 2U);
  EXPECT_EQ(result.mismatches[0].role, "stuck-thread");
  EXPECT_EQ(result.mismatches[0].field, "state");
  EXPECT_EQ(result.mismatches[0].expected, "D");
  EXPECT_EQ(result.mismatches[0].observed, "S");
  EXPECT_EQ(result.mismatches[1].field, "stack");
  EXPECT_EQ(result.mismatches[1].expected,
            "request_wait_answer <- fuse_flush <- filp_close <- put_files_struct <- do_exit <- "
            "get_signal");
  EXPECT_EQ(result.mismatches[1].observed, "futex_wait_queue <- futex_wait <- do_futex");
  // The closest candidate stays bound, so the report can show it.
  ASSERT_EQ(result.bound.size(), 3U);
  EXPECT_EQ(result.bound[2].second.tid, 4119);
}

TEST(SignatureMatch, ReportsPendingSignalAndFlagDifferences) {
  Signature signature;
  TaskExpectation thread = StuckThread();
  thread.shd_pending = {"KILL", "SIGTERM"};
  thread.sig_pending = {"SIGKILL"};
  thread.task_flags = {"PF_EXITING", "PF_KTHREAD"};
  signature.tasks = {thread};

  const MatchResult result = Match(signature, Observe(Seed001On618(), false));
  EXPECT_FALSE(result.matched);
  ASSERT_EQ(result.mismatches.size(), 3U);
  EXPECT_EQ(result.mismatches[0].field, "shd_pending");
  EXPECT_EQ(result.mismatches[0].expected, "KILL, SIGTERM");
  EXPECT_EQ(result.mismatches[0].observed, "SIGKILL");
  EXPECT_EQ(result.mismatches[1].field, "sig_pending");
  EXPECT_EQ(result.mismatches[1].observed, "(none)");
  EXPECT_EQ(result.mismatches[2].field, "task_flags");
  EXPECT_EQ(result.mismatches[2].expected, "PF_EXITING, PF_KTHREAD");
  EXPECT_EQ(result.mismatches[2].observed, "PF_EXITING, PF_FORKNOEXEC, PF_SIGNALED, PF_RANDOMIZE");
}

TEST(SignatureMatch, AcceptsAnyOfSeveralStatesAndSignalNamesWithoutPrefix) {
  Signature signature;
  TaskExpectation thread = StuckThread();
  thread.states = {'S', 'D'};
  thread.shd_pending = {"KILL"};
  signature.tasks = {thread};
  EXPECT_TRUE(Match(signature, Observe(Seed001On618(), false)).matched);

  thread.states = {'R', 'S'};
  signature.tasks = {thread};
  const MatchResult result = Match(signature, Observe(Seed001On618(), false));
  ASSERT_EQ(result.mismatches.size(), 1U);
  EXPECT_EQ(result.mismatches[0].expected, "R or S");
  EXPECT_EQ(result.mismatches[0].observed, "D");
}

TEST(SignatureMatch, ReportsATaskNoSelectorFinds) {
  Signature signature = Seed001Bug();
  signature.tasks[0].select.process = "containerd-shim";
  const MatchResult result = Match(signature, Observe(Seed001On618(), false));
  EXPECT_FALSE(result.matched);
  ASSERT_EQ(result.mismatches.size(), 1U);
  EXPECT_EQ(result.mismatches[0].role, "pidns-init");
  EXPECT_EQ(result.mismatches[0].field, "task");
  EXPECT_EQ(result.mismatches[0].expected, "process=containerd-shim thread=leader");
  EXPECT_EQ(result.mismatches[0].observed, "no such task");
  EXPECT_EQ(result.bound.size(), 2U);
}

TEST(SignatureMatch, SelectorsBindByProcessCommAndThread) {
  Observation observation;
  observation.tasks = {Task("daemon", 10, true, 'S'), Task("daemon", 11, false, 'S'),
                       Task("init", 20, true, 'S')};
  observation.tasks[1].comm = "flusher";

  TaskExpectation by_comm;
  by_comm.role = "flusher";
  by_comm.select.comm = "flusher";
  TaskExpectation non_leader;
  non_leader.role = "daemon-thread";
  non_leader.select.process = "daemon";
  non_leader.select.thread = TaskSelector::Thread::kNonLeader;
  TaskExpectation init_leader;
  init_leader.role = "init";
  init_leader.select.process = "init";
  init_leader.select.thread = TaskSelector::Thread::kLeader;

  for (const TaskExpectation& expectation : {by_comm, non_leader}) {
    Signature signature;
    signature.tasks = {expectation};
    const MatchResult result = Match(signature, observation);
    ASSERT_TRUE(result.matched) << expectation.role;
    EXPECT_EQ(result.bound[0].second.tid, 11);
  }
  Signature signature;
  signature.tasks = {init_leader};
  const MatchResult result = Match(signature, observation);
  ASSERT_TRUE(result.matched);
  EXPECT_EQ(result.bound[0].second.tid, 20);
}

TEST(SignatureMatch, PrefersTheTaskThatSatisfiesTheExpectation) {
  Observation observation;
  observation.tasks = {Task("daemon", 11, false, 'S', {"futex_wait"}),
                       Task("daemon", 12, false, 'D', {"request_wait_answer", "fuse_flush"}),
                       Task("daemon", 13, false, 'S', {"do_epoll_wait"})};
  TaskExpectation stuck;
  stuck.role = "stuck-thread";
  stuck.select.process = "daemon";
  stuck.states = {'D'};
  stuck.stack = {"fuse_flush"};
  Signature signature;
  signature.tasks = {stuck};

  const MatchResult result = Match(signature, observation);
  EXPECT_TRUE(result.matched);
  ASSERT_EQ(result.bound.size(), 1U);
  EXPECT_EQ(result.bound[0].second.tid, 12);
}

TEST(SignatureMatch, BindsEachExpectationToADistinctTask) {
  TaskExpectation stuck;
  stuck.role = "first";
  stuck.select.process = "daemon";
  stuck.states = {'D'};
  TaskExpectation second = stuck;
  second.role = "second";
  Signature signature;
  signature.tasks = {stuck, second};

  Observation one_task;
  one_task.tasks = {Task("daemon", 11, false, 'D')};
  const MatchResult failed = Match(signature, one_task);
  EXPECT_FALSE(failed.matched);
  ASSERT_EQ(failed.mismatches.size(), 1U);
  EXPECT_EQ(failed.mismatches[0].role, "second");
  EXPECT_EQ(failed.mismatches[0].field, "task");
  EXPECT_EQ(failed.mismatches[0].observed, "every such task is bound to another role");

  Observation two_tasks;
  two_tasks.tasks = {Task("daemon", 11, false, 'D'), Task("daemon", 12, false, 'D')};
  const MatchResult matched = Match(signature, two_tasks);
  EXPECT_TRUE(matched.matched);
  ASSERT_EQ(matched.bound.size(), 2U);
  EXPECT_NE(matched.bound[0].second.tid, matched.bound[1].second.tid);
}

TEST(SignatureMatch, FindsTheBindingAGreedyChoiceWouldMiss) {
  // "any" would take task 11 first, leaving "stuck" (which only 11 satisfies) without a task.
  TaskExpectation any;
  any.role = "any";
  any.select.process = "daemon";
  TaskExpectation stuck;
  stuck.role = "stuck";
  stuck.select.process = "daemon";
  stuck.states = {'D'};
  Signature signature;
  signature.tasks = {any, stuck};
  Observation observation;
  observation.tasks = {Task("daemon", 11, false, 'D'), Task("daemon", 12, false, 'S')};

  const MatchResult result = Match(signature, observation);
  EXPECT_TRUE(result.matched);
  ASSERT_EQ(result.bound.size(), 2U);
  EXPECT_EQ(result.bound[0].first, "any");
  EXPECT_EQ(result.bound[0].second.tid, 12);
  EXPECT_EQ(result.bound[1].first, "stuck");
  EXPECT_EQ(result.bound[1].second.tid, 11);
}

TEST(SignatureMatch, AllExitedMatchesOnlyWhenEverythingExited) {
  Signature healthy;
  healthy.all_exited = true;
  EXPECT_TRUE(Match(healthy, Observe(TreeSnapshot{}, true)).matched);

  const MatchResult stuck = Match(healthy, Observe(Seed001On618(), false));
  EXPECT_FALSE(stuck.matched);
  ASSERT_EQ(stuck.mismatches.size(), 1U);
  EXPECT_EQ(stuck.mismatches[0].field, "all_exited");
  EXPECT_EQ(stuck.mismatches[0].expected, "true");
  EXPECT_EQ(stuck.mismatches[0].observed, "false (3 tasks left)");

  // The bug signature does not match a tree that exited.
  EXPECT_FALSE(Match(Seed001Bug(), Observe(TreeSnapshot{}, true)).matched);
}

TEST(SignatureHash, IgnoresPidsOffsetsAndTiming) {
  const TreeSnapshot first = Seed001On618();
  TreeSnapshot second = first;
  second.captured_at_ms += 12345;
  for (probe::ProcessSnapshot& process : second.processes) {
    process.pid += 1000;
    for (probe::TaskSnapshot& task : process.tasks) {
      task.tid += 1000;
      task.status.pid += 1000;
      task.stat.start_time += 777;
      task.stat.utime += 5;
      task.status.voluntary_ctxt_switches += 9;
      for (probe::StackFrame& frame : task.stack) frame.offset = "0x1/0x2";
    }
  }
  const Observation a = Observe(first, false);
  const Observation b = Observe(second, false);
  const std::string hash = Hash(Match(Seed001Bug(), a), a);
  EXPECT_EQ(hash, Hash(Match(Seed001Bug(), b), b));
  EXPECT_EQ(hash.size(), 16U);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos) << hash;
}

TEST(SignatureHash, ChangesWhenAStateChanges) {
  const Observation a = Observe(Seed001On618(), false);
  Observation b = a;
  b.tasks[0].state = 'D';  // the init, stuck uninterruptibly instead
  Signature signature = Seed001Bug();
  signature.tasks[0].states = {'S', 'D'};
  EXPECT_NE(Hash(Match(signature, a), a), Hash(Match(signature, b), b));
}

// Measured in a 6.1 guest: the pid-namespace init's stack ended "... exit_to_user_mode_prepare,
// syscall_exit_to_user_mode, do_syscall_64, entry_SYSCALL_64_after_hwframe" in 19 runs and
// "... exit_to_user_mode_prepare, irqentry_exit_to_user_mode, asm_sysvec_reschedule_ipi" in one:
// SIGKILL found it in a syscall or running. Below do_exit, the signature's outermost frame, the
// frames say how the task entered the kernel, not what the bug did.
TEST(SignatureHash, IgnoresFramesBelowTheOutermostExpectedFrame) {
  const Observation a = Observe(Seed001On618(), false);
  Observation b = a;
  ASSERT_EQ(b.tasks[0].process, "sandbox-init");
  const auto do_exit = std::find(b.tasks[0].stack.begin(), b.tasks[0].stack.end(), "do_exit");
  ASSERT_NE(do_exit, b.tasks[0].stack.end());
  b.tasks[0].stack.erase(do_exit + 1, b.tasks[0].stack.end());
  b.tasks[0].stack.push_back("irqentry_exit_to_user_mode");
  b.tasks[0].stack.push_back("asm_sysvec_reschedule_ipi");
  const MatchResult match_a = Match(Seed001Bug(), a);
  const MatchResult match_b = Match(Seed001Bug(), b);
  ASSERT_TRUE(match_a.matched);
  ASSERT_TRUE(match_b.matched);
  EXPECT_EQ(Hash(match_a, a), Hash(match_b, b));
  // A frame inside the anchored part still counts: another path to the same wait.
  Observation c = a;
  c.tasks[0].stack.insert(c.tasks[0].stack.begin() + 1, "do_wait_pid");
  const MatchResult match_c = Match(Seed001Bug(), c);
  ASSERT_TRUE(match_c.matched);
  EXPECT_NE(Hash(match_a, a), Hash(match_c, c));
  // The bound task keeps its whole stack for the report.
  EXPECT_EQ(match_b.bound[0].second.stack.back(), "asm_sysvec_reschedule_ipi");
}

TEST(SignatureHash, DiffersBetweenKernelsThatPrintDifferentStacks) {
  const Observation on_618 = Observe(Seed001On618(), false);
  const Observation on_old = Observe(Seed001OnOldKernel(), false);
  EXPECT_NE(Hash(Match(Seed001Bug(), on_618), on_618), Hash(Match(Seed001Bug(), on_old), on_old));
}

TEST(SignatureHash, HashesAnExitedTreeAsAllExited) {
  Signature healthy;
  healthy.all_exited = true;
  const Observation exited = Observe(TreeSnapshot{}, true);
  const Observation empty_but_running = Observe(TreeSnapshot{}, false);
  const std::string hash = Hash(Match(healthy, exited), exited);
  EXPECT_EQ(hash, "8fb2a205fe7c821a");  // FNV-1a 64 of "all-exited"
  EXPECT_NE(hash, Hash(Match(healthy, empty_but_running), empty_but_running));
}

// ---------------------------------------------------------------------------------------------
// Commands (seed 002: the docker CLI killed by SIGSYS under SystemCallFilter=~@resources).

CommandExpectation KilledOnSetrlimit() {
  CommandExpectation killed;
  killed.command = "image-ls";
  killed.killed_by = "SIGSYS";
  killed.refused_syscall = "setrlimit";
  return killed;
}

CommandExpectation ListsTheImage() {
  CommandExpectation listed;
  listed.command = "image-ls";
  listed.exit_code = 0;
  listed.output_contains = {"wedge/busybox"};
  return listed;
}

Signature CommandSignature(std::vector<CommandExpectation> commands) {
  Signature signature;
  signature.description = "how docker image ls ended";
  signature.commands = std::move(commands);
  return signature;
}

ObservedCommand Exited(int status, std::string output = "") {
  ObservedCommand command;
  command.command = "image-ls";
  command.binary = "/usr/bin/docker";
  command.argv = {"docker", "image", "ls"};
  command.exit_code = status;
  command.output = std::move(output);
  command.duration_ms = 140;
  return command;
}

ObservedCommand Killed(std::string signal, std::optional<std::string> syscall = std::nullopt) {
  ObservedCommand command = Exited(0);
  command.exit_code.reset();
  command.killed_by = std::move(signal);
  command.refused_syscall = std::move(syscall);
  if (command.refused_syscall == "setrlimit") {
    command.refused_syscall_number = 160;
    command.audit_record =
        "audit: type=1326 audit(1677283392.831:2): auid=4294967295 uid=0 gid=0 ses=4294967295 "
        "pid=77763 comm=\"docker\" exe=\"/usr/bin/docker\" sig=31 arch=c000003e syscall=160";
  }
  return command;
}

Observation Ran(std::vector<ObservedCommand> commands) {
  Observation observation;
  observation.commands = std::move(commands);
  return observation;
}

TEST(CommandMatch, Seed002BugMatchesTheCliKilledBySigsysOnSetrlimitWithoutAnyTask) {
  const Observation observed = Ran({Killed("SIGSYS", "setrlimit")});
  const MatchResult match = Match(CommandSignature({KilledOnSetrlimit()}), observed);
  EXPECT_TRUE(match.matched);
  EXPECT_TRUE(match.mismatches.empty());
  EXPECT_TRUE(match.bound.empty());
  ASSERT_EQ(match.commands.size(), 1U);
  EXPECT_EQ(match.commands[0].first, "image-ls");
  ASSERT_TRUE(match.commands[0].second.has_value());
  EXPECT_EQ(match.commands[0].second->refused_syscall_number, 160);
  // The healthy signature does not match the killed command.
  EXPECT_FALSE(Match(CommandSignature({ListsTheImage()}), observed).matched);
}

TEST(CommandMatch, HealthyMatchesExitZeroWithTheImageListed) {
  const Observation observed =
      Ran({Exited(0, "sha256:1f0c\twedge/busybox\t5e3a\t2026-11-22 23:30:24 +0000 UTC\n")});
  EXPECT_TRUE(Match(CommandSignature({ListsTheImage()}), observed).matched);
  EXPECT_FALSE(Match(CommandSignature({KilledOnSetrlimit()}), observed).matched);
}

TEST(CommandMatch, ComparesSignalsByNumber) {
  CommandExpectation short_name = KilledOnSetrlimit();
  short_name.killed_by = "SYS";
  EXPECT_TRUE(Match(CommandSignature({short_name}), Ran({Killed("SIGSYS", "setrlimit")})).matched);
  EXPECT_TRUE(
      Match(CommandSignature({KilledOnSetrlimit()}), Ran({Killed("SYS", "setrlimit")})).matched);
}

TEST(CommandMatch, ReportsACommandThatDidNotRun) {
  const MatchResult match = Match(CommandSignature({KilledOnSetrlimit()}), Observation{});
  EXPECT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].role, "image-ls");
  EXPECT_EQ(match.mismatches[0].field, "command");
  EXPECT_EQ(match.mismatches[0].expected, "ran");
  EXPECT_EQ(match.mismatches[0].observed, "did not run");
  ASSERT_EQ(match.commands.size(), 1U);
  EXPECT_FALSE(match.commands[0].second.has_value());
}

TEST(CommandMatch, ReportsAnExitWhereASignalWasExpected) {
  const MatchResult match = Match(CommandSignature({KilledOnSetrlimit()}), Ran({Exited(0)}));
  EXPECT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 2U);
  EXPECT_EQ(match.mismatches[0].field, "killed_by");
  EXPECT_EQ(match.mismatches[0].expected, "SIGSYS");
  EXPECT_EQ(match.mismatches[0].observed, "exit 0");
  EXPECT_EQ(match.mismatches[1].field, "refused_syscall");
  EXPECT_EQ(match.mismatches[1].expected, "setrlimit");
  EXPECT_EQ(match.mismatches[1].observed, "(none)");
}

TEST(CommandMatch, ReportsAnotherSignalAndASyscallKnownOnlyByNumber) {
  ObservedCommand killed = Killed("SIGKILL");
  MatchResult match = Match(CommandSignature({KilledOnSetrlimit()}), Ran({killed}));
  ASSERT_EQ(match.mismatches.size(), 2U);
  EXPECT_EQ(match.mismatches[0].field, "killed_by");
  EXPECT_EQ(match.mismatches[0].observed, "SIGKILL");

  ObservedCommand unnamed = Killed("SIGSYS");
  unnamed.refused_syscall_number = 160;
  match = Match(CommandSignature({KilledOnSetrlimit()}), Ran({unnamed}));
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].field, "refused_syscall");
  EXPECT_EQ(match.mismatches[0].observed, "syscall 160 (no name)");

  match =
      Match(CommandSignature({KilledOnSetrlimit()}), Ran({Killed("SIGSYS", "sched_setaffinity")}));
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].observed, "sched_setaffinity");
}

TEST(CommandMatch, ReportsASignalWhereAnExitWasExpected) {
  CommandExpectation exits;
  exits.command = "image-ls";
  exits.exit_code = 0;
  const MatchResult match = Match(CommandSignature({exits}), Ran({Killed("SIGSYS", "setrlimit")}));
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].field, "exit_code");
  EXPECT_EQ(match.mismatches[0].expected, "exit 0");
  EXPECT_EQ(match.mismatches[0].observed, "SIGSYS");

  const MatchResult other = Match(CommandSignature({exits}), Ran({Exited(1)}));
  ASSERT_EQ(other.mismatches.size(), 1U);
  EXPECT_EQ(other.mismatches[0].observed, "exit 1");
}

TEST(CommandMatch, ATimedOutCommandNeitherExitedNorWasKilledByTheBug) {
  ObservedCommand hung = Killed("SIGKILL");  // wedge's own kill at the timeout
  hung.timed_out = true;
  hung.duration_ms = 30012;
  CommandExpectation killed;
  killed.command = "image-ls";
  killed.killed_by = "SIGKILL";
  MatchResult match = Match(CommandSignature({killed}), Ran({hung}));
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].field, "killed_by");
  EXPECT_EQ(match.mismatches[0].observed, "timed out after 30012 ms");

  hung.killed_by.reset();
  match = Match(CommandSignature({ListsTheImage()}), Ran({hung}));
  ASSERT_EQ(match.mismatches.size(), 2U);
  EXPECT_EQ(match.mismatches[0].field, "exit_code");
  EXPECT_EQ(match.mismatches[0].observed, "timed out after 30012 ms");
}

TEST(CommandMatch, ListsEachMissingOutputStringWithTheStartOfTheOutput) {
  CommandExpectation listed = ListsTheImage();
  listed.output_contains = {"wedge/busybox", "REPOSITORY", "alpine"};
  const MatchResult match =
      Match(CommandSignature({listed}), Ran({Exited(0, "REPOSITORY\tTAG\n")}));
  ASSERT_EQ(match.mismatches.size(), 2U);
  EXPECT_EQ(match.mismatches[0].field, "output");
  EXPECT_EQ(match.mismatches[0].expected, "wedge/busybox");
  EXPECT_EQ(match.mismatches[0].observed, "not in the 15 bytes of output: \"REPOSITORY\\tTAG\\n\"");
  EXPECT_EQ(match.mismatches[1].expected, "alpine");

  const MatchResult silent = Match(CommandSignature({ListsTheImage()}), Ran({Exited(0)}));
  ASSERT_EQ(silent.mismatches.size(), 1U);
  EXPECT_EQ(silent.mismatches[0].observed, "not in the 0 bytes of output");
}

TEST(CommandMatch, ReportsMismatchesInSignatureOrderAndFindsCommandsByName) {
  CommandExpectation pull;
  pull.command = "pull";
  pull.exit_code = 0;
  ObservedCommand version = Exited(0);
  version.command = "version";
  ObservedCommand image_ls = Exited(0);
  const MatchResult match =
      Match(CommandSignature({pull, KilledOnSetrlimit()}), Ran({version, image_ls}));
  ASSERT_EQ(match.mismatches.size(), 3U);
  EXPECT_EQ(match.mismatches[0].role, "pull");
  EXPECT_EQ(match.mismatches[0].field, "command");
  EXPECT_EQ(match.mismatches[1].role, "image-ls");
  EXPECT_EQ(match.mismatches[1].field, "killed_by");
  EXPECT_EQ(match.mismatches[2].field, "refused_syscall");
  ASSERT_EQ(match.commands.size(), 2U);
  EXPECT_EQ(match.commands[0].first, "pull");
  EXPECT_EQ(match.commands[1].first, "image-ls");
}

TEST(CommandMatch, TasksAndCommandsMustBothHold) {
  Signature both = Seed001Bug();
  both.commands = {ListsTheImage()};
  Observation observed = Observe(Seed001On618(), false);
  observed.commands = {Exited(0, "wedge/busybox")};
  const MatchResult match = Match(both, observed);
  EXPECT_TRUE(match.matched);
  EXPECT_EQ(match.bound.size(), 3U);

  observed.commands.clear();
  const MatchResult missing = Match(both, observed);
  EXPECT_FALSE(missing.matched);
  ASSERT_EQ(missing.mismatches.size(), 1U);
  EXPECT_EQ(missing.mismatches[0].field, "command");
}

TEST(CommandMatch, AllExitedAndCommandsMustBothHold) {
  Signature healthy = CommandSignature({ListsTheImage()});
  healthy.all_exited = true;
  Observation exited = Observe(TreeSnapshot{}, true);
  exited.commands = {Exited(0, "wedge/busybox")};
  EXPECT_TRUE(Match(healthy, exited).matched);
  exited.commands = {Exited(1, "wedge/busybox")};
  EXPECT_FALSE(Match(healthy, exited).matched);
  Observation running = Observe(Seed001On618(), false);
  running.commands = {Exited(0, "wedge/busybox")};
  const MatchResult stuck = Match(healthy, running);
  ASSERT_EQ(stuck.mismatches.size(), 1U);
  EXPECT_EQ(stuck.mismatches[0].field, "all_exited");
}

TEST(SignatureHash, PinsTheCommandPart) {
  const Observation observed = Ran({Killed("SIGSYS", "setrlimit")});
  // FNV-1a 64 of "command=image-ls\nended=signal SIGSYS\nrefused_syscall=setrlimit\n".
  EXPECT_EQ(Hash(Match(CommandSignature({KilledOnSetrlimit()}), observed), observed),
            "3450bee5f625f291");
}

TEST(SignatureHash, IgnoresACommandsDurationOutputArgvAndAuditRecord) {
  const Observation a = Ran({Killed("SIGSYS", "setrlimit")});
  ObservedCommand other = Killed("SYS", "setrlimit");
  other.binary = "/usr/local/bin/docker";
  other.argv = {"docker", "images"};
  other.duration_ms = 9999;
  other.output = "core dumped";
  other.audit_record = "audit: type=1326 pid=1 syscall=160";
  const Observation b = Ran({other});
  const Signature bug = CommandSignature({KilledOnSetrlimit()});
  EXPECT_EQ(Hash(Match(bug, a), a), Hash(Match(bug, b), b));
}

TEST(SignatureHash, DiffersByHowTheCommandEndedAndWhichSyscallWasRefused) {
  ObservedCommand timed_out = Killed("SIGKILL");
  timed_out.timed_out = true;
  const std::vector<Observation> observations = {
      Ran({Killed("SIGSYS", "setrlimit")}),
      Ran({Killed("SIGSYS", "sched_setaffinity")}),
      Ran({Killed("SIGSYS")}),
      Ran({Killed("SIGKILL")}),
      Ran({timed_out}),
      Ran({Exited(0)}),
      Ran({Exited(1)}),
      Observation{},
  };
  const Signature bug = CommandSignature({KilledOnSetrlimit()});
  std::set<std::string> hashes;
  for (const Observation& observed : observations) {
    EXPECT_TRUE(hashes.insert(Hash(Match(bug, observed), observed)).second);
  }
}

TEST(SignatureHash, AddsTheCommandPartAfterTheTaskPart) {
  Signature tasks_only = Seed001Bug();
  Signature both = Seed001Bug();
  both.commands = {ListsTheImage()};
  Observation observed = Observe(Seed001On618(), false);
  observed.commands = {Exited(0, "wedge/busybox")};
  const std::string task_hash = Hash(Match(tasks_only, observed), observed);
  const std::string both_hash = Hash(Match(both, observed), observed);
  EXPECT_NE(task_hash, both_hash);
  // Commands the signature does not name are not hashed.
  Observation plain = Observe(Seed001On618(), false);
  EXPECT_EQ(task_hash, Hash(Match(tasks_only, plain), plain));
}

// Rates (seed 000: dockerd churning connect() on the containerd socket while containerd is away).

RateExpectation Rate(std::optional<double> min, std::optional<double> max, double fraction = 1.0,
                     std::string window = "outage") {
  RateExpectation rate;
  rate.metric = "connect";
  rate.window = std::move(window);
  rate.min_per_second = min;
  rate.max_per_second = max;
  rate.for_fraction = fraction;
  return rate;
}

// The bug bound of scenarios/containerd-socket-flap.json: >= 50/s in 2 of 3 outage seconds.
RateExpectation Churn() { return Rate(50, std::nullopt, 0.666); }
// Its healthy bound: <= 15/s in every outage second.
RateExpectation Calm() { return Rate(std::nullopt, 15); }

Signature RateSignature(std::vector<RateExpectation> rates) {
  Signature signature;
  signature.description = "dockerd's connect rate while containerd is away";
  signature.rates = std::move(rates);
  return signature;
}

Observation Measured(std::vector<double> outage, std::string metric = "connect") {
  Observation observation;
  observation.series.push_back(ObservedSeries{metric, "outage", std::move(outage)});
  return observation;
}

TEST(RateMatch, HealthyBoundHoldsWhenEveryOutageSecondIsCalm) {
  const MatchResult match = Match(RateSignature({Calm()}), Measured({8, 10, 9}));
  EXPECT_TRUE(match.matched);
  EXPECT_TRUE(match.mismatches.empty());
  ASSERT_EQ(match.rates.size(), 1U);
  EXPECT_EQ(match.rates[0].metric, "connect");
  EXPECT_EQ(match.rates[0].window, "outage");
  EXPECT_TRUE(match.rates[0].held);
  EXPECT_EQ(match.rates[0].seconds, 3U);
  EXPECT_EQ(match.rates[0].satisfying, 3U);
  EXPECT_EQ(match.rates[0].required, 3U);
}

TEST(RateMatch, BugBoundNeedsTwoOfThreeOutageSeconds) {
  EXPECT_TRUE(Match(RateSignature({Churn()}), Measured({107, 108, 106})).matched);
  // The second in which dockerd first notices the loss may be slow.
  const MatchResult slow_start = Match(RateSignature({Churn()}), Measured({3, 107, 110}));
  EXPECT_TRUE(slow_start.matched);
  EXPECT_EQ(slow_start.rates[0].satisfying, 2U);
  EXPECT_EQ(slow_start.rates[0].required, 2U);

  const MatchResult once = Match(RateSignature({Churn()}), Measured({3, 107, 2}));
  EXPECT_FALSE(once.matched);
  EXPECT_FALSE(once.rates[0].held);
  ASSERT_EQ(once.mismatches.size(), 1U);
  EXPECT_EQ(once.mismatches[0].role, "connect/outage");
  EXPECT_EQ(once.mismatches[0].field, "rate");
  EXPECT_EQ(once.mismatches[0].expected, ">= 50/s in 66.6% of outage seconds");
  EXPECT_EQ(once.mismatches[0].observed, "1 of 3 s (2 needed): 3, 107, 2 /s");
}

TEST(RateMatch, RoundsTheRequiredSecondsUpWithoutFloatingPointNoise) {
  struct Case {
    double fraction;
    std::size_t seconds;
    std::size_t required;
  };
  for (const Case& c : std::vector<Case>{{1.0, 1, 1},
                                         {1.0, 7, 7},
                                         {0.8, 3, 3},    // 2.4 -> 3
                                         {0.8, 5, 4},    // exactly 4
                                         {0.5, 3, 2},    // 1.5 -> 2
                                         {0.666, 3, 2},  // 1.998 -> 2
                                         {0.667, 3, 3},  // 2.001 -> 3
                                         {0.7, 10, 7},   // 7.000000000000001 in a double
                                         {0.3, 10, 3},   // 3.0000000000000004
                                         {0.001, 5, 1}}) {
    std::vector<double> values(c.seconds, 100.0);
    const MatchResult match =
        Match(RateSignature({Rate(50, std::nullopt, c.fraction)}), Measured(values));
    ASSERT_EQ(match.rates.size(), 1U);
    EXPECT_EQ(match.rates[0].required, c.required) << c.fraction << " of " << c.seconds;
    // Exactly the required number of satisfying seconds holds; one fewer does not.
    std::fill(values.begin(), values.begin() + static_cast<long>(c.seconds - c.required), 0.0);
    EXPECT_TRUE(
        Match(RateSignature({Rate(50, std::nullopt, c.fraction)}), Measured(values)).matched)
        << c.fraction << " of " << c.seconds;
    values[c.seconds - c.required] = 0.0;
    EXPECT_FALSE(
        Match(RateSignature({Rate(50, std::nullopt, c.fraction)}), Measured(values)).matched)
        << c.fraction << " of " << c.seconds;
  }
}

TEST(RateMatch, BoundsAreInclusiveAndMayBeCombined) {
  EXPECT_TRUE(Match(RateSignature({Rate(50, std::nullopt)}), Measured({50})).matched);
  EXPECT_TRUE(Match(RateSignature({Rate(std::nullopt, 15)}), Measured({15})).matched);
  EXPECT_FALSE(Match(RateSignature({Rate(std::nullopt, 15)}), Measured({15.5})).matched);
  const MatchResult band = Match(RateSignature({Rate(15, 25, 0.5)}), Measured({10, 20, 30, 25}));
  EXPECT_TRUE(band.matched);
  EXPECT_EQ(band.rates[0].satisfying, 2U);
  const MatchResult narrow = Match(RateSignature({Rate(15, 25)}), Measured({10, 20}));
  ASSERT_EQ(narrow.mismatches.size(), 1U);
  EXPECT_EQ(narrow.mismatches[0].expected, ">= 15/s and <= 25/s in 100% of outage seconds");
  EXPECT_EQ(narrow.mismatches[0].observed, "1 of 2 s (2 needed): 10, 20 /s");
}

TEST(RateMatch, AMissingOrEmptySeriesIsNoSamplesAndNeverHolds) {
  // Even a bound every value would satisfy: no measurement is not a calm measurement.
  const RateExpectation anything = Rate(0, std::nullopt);
  for (const Observation& observed :
       {Observation{}, Measured({}), Measured({1, 2}, "socket"), [] {
          Observation after;
          after.series.push_back(ObservedSeries{"connect", "after", {0, 0}});
          return after;
        }()}) {
    const MatchResult match = Match(RateSignature({anything}), observed);
    EXPECT_FALSE(match.matched);
    ASSERT_EQ(match.mismatches.size(), 1U);
    EXPECT_EQ(match.mismatches[0].role, "connect/outage");
    EXPECT_EQ(match.mismatches[0].field, "rate");
    EXPECT_EQ(match.mismatches[0].expected, ">= 0/s in 100% of outage seconds");
    EXPECT_EQ(match.mismatches[0].observed, "no samples");
    ASSERT_EQ(match.rates.size(), 1U);
    EXPECT_FALSE(match.rates[0].held);
    EXPECT_EQ(match.rates[0].seconds, 0U);
    EXPECT_EQ(match.rates[0].required, 0U);
  }
}

TEST(RateMatch, FindsTheSeriesByMetricAndWindow) {
  Observation observed;
  observed.series = {ObservedSeries{"connect", "after", {0, 0, 0}},
                     ObservedSeries{"socket", "outage", {0, 0, 0}},
                     ObservedSeries{"connect", "outage", {100, 100, 100}}};
  EXPECT_TRUE(Match(RateSignature({Churn()}), observed).matched);
  EXPECT_TRUE(Match(RateSignature({Rate(std::nullopt, 0, 1.0, "after")}), observed).matched);
  RateExpectation socket = Churn();
  socket.metric = "socket";
  const MatchResult match = Match(RateSignature({socket}), observed);
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].role, "socket/outage");
  EXPECT_EQ(match.mismatches[0].observed, "0 of 3 s (2 needed): 0, 0, 0 /s");
}

TEST(RateMatch, SummarisesALongSeriesAndPrintsGaugesWithOneDecimal) {
  std::vector<double> values;
  for (int i = 0; i < 20; ++i) values.push_back(i == 9 ? 108 : i % 3);
  const MatchResult match = Match(RateSignature({Rate(50, std::nullopt, 0.8)}), Measured(values));
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].expected, ">= 50/s in 80% of outage seconds");
  EXPECT_EQ(match.mismatches[0].observed,
            "1 of 20 s (16 needed): 0, 1, 2, 0, 1, 2, ..., 2, 0, 1, 2, 0, 1 /s; min 0, max 108");

  RateExpectation threads = Rate(std::nullopt, 100);
  threads.metric = "threads";
  const MatchResult gauge =
      Match(RateSignature({threads}), Measured({185.333333, 186.0, 0.25}, "threads"));
  ASSERT_EQ(gauge.mismatches.size(), 1U);
  EXPECT_EQ(gauge.mismatches[0].role, "threads/outage");
  EXPECT_EQ(gauge.mismatches[0].observed, "1 of 3 s (3 needed): 185.3, 186, 0.2 /s");
}

TEST(RateMatch, RatesAndCommandsMustBothHoldAndReportInSignatureOrder) {
  Signature healthy = RateSignature({Calm(), Rate(std::nullopt, 5, 1.0, "after")});
  healthy.commands = {ListsTheImage()};
  Observation observed = Measured({8, 9, 10});
  observed.series.push_back(ObservedSeries{"connect", "after", {1, 0}});
  observed.commands = {Exited(0, "wedge/busybox")};
  EXPECT_TRUE(Match(healthy, observed).matched);

  observed.commands = {Exited(1, "wedge/busybox")};
  observed.series[0].per_second = {8, 90, 10};
  const MatchResult match = Match(healthy, observed);
  EXPECT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 2U);
  EXPECT_EQ(match.mismatches[0].field, "exit_code");
  EXPECT_EQ(match.mismatches[1].field, "rate");
  EXPECT_EQ(match.mismatches[1].role, "connect/outage");
  ASSERT_EQ(match.rates.size(), 2U);
  EXPECT_FALSE(match.rates[0].held);
  EXPECT_TRUE(match.rates[1].held);
  EXPECT_EQ(match.rates[1].window, "after");
}

TEST(SignatureHash, PinsTheRatePart) {
  const Observation observed = Measured({107, 108, 106});
  // FNV-1a 64 of "rate=connect\nwindow=outage\nheld\n".
  EXPECT_EQ(Hash(Match(RateSignature({Churn()}), observed), observed), "e2341145da2d0237");
  // After the command part: "command=victim\nended=exit 0\nrefused_syscall=\n" comes first.
  Signature bug = RateSignature({Churn()});
  CommandExpectation victim;
  victim.command = "victim";
  victim.exit_code = 0;
  bug.commands = {victim};
  Observation ran = observed;
  ObservedCommand started = Exited(0);
  started.command = "victim";
  ran.commands = {started};
  EXPECT_EQ(Hash(Match(bug, ran), ran), "ad8a572534e46fcf");
}

TEST(SignatureHash, IgnoresTheRawRatesWhileTheBoundsHoldTheSameWay) {
  const Signature bug = RateSignature({Churn(), Calm()});
  // Churning at ~107/s or at 51..200/s: the churn bound holds, the calm one does not.
  const std::vector<std::vector<double>> churning = {
      {107, 108, 106}, {3, 107, 110}, {51, 200, 60, 0}, {1000, 1000, 1000, 1000, 1000, 1000}};
  std::set<std::string> hashes;
  for (const std::vector<double>& values : churning) {
    const Observation observed = Measured(values);
    hashes.insert(Hash(Match(bug, observed), observed));
  }
  EXPECT_EQ(hashes.size(), 1U);
  // Calm at 0/s or at 10/s: neither holds churn, both hold calm.
  const Observation idle = Measured({0, 0, 0});
  const Observation polling = Measured({10, 9, 11, 10});
  EXPECT_EQ(Hash(Match(bug, idle), idle), Hash(Match(bug, polling), polling));
  // A missing series is "not held" like any other failed bound.
  const Signature calm_only = RateSignature({Calm()});
  const Observation missing;
  const Observation loud = Measured({100, 100});
  EXPECT_EQ(Hash(Match(calm_only, missing), missing), Hash(Match(calm_only, loud), loud));
}

TEST(SignatureHash, DiffersWhenABoundFlips) {
  const Signature bug = RateSignature({Churn(), Calm()});
  const Observation churning = Measured({107, 108, 106});
  const Observation calm = Measured({8, 9, 10});
  const Observation between = Measured({30, 30, 30});  // neither bound holds
  const Observation one_fast_second = Measured({8, 9, 16});
  std::set<std::string> hashes;
  for (const Observation& observed : {churning, calm, between}) {
    EXPECT_TRUE(hashes.insert(Hash(Match(bug, observed), observed)).second);
  }
  const Signature healthy = RateSignature({Calm()});
  EXPECT_NE(Hash(Match(healthy, calm), calm),
            Hash(Match(healthy, one_fast_second), one_fast_second));
  // The window and the metric are part of the hash too.
  Observation after;
  after.series.push_back(ObservedSeries{"connect", "after", {8, 9, 10}});
  EXPECT_NE(Hash(Match(healthy, calm), calm),
            Hash(Match(RateSignature({Rate(std::nullopt, 15, 1.0, "after")}), after), after));
}

}  // namespace
}  // namespace wedge::signature

namespace wedge::signature {
namespace {

Observation BurstyOutage(std::vector<double> per_second) {
  Observation observation;
  observation.series.push_back({"connect", "outage", std::move(per_second)});
  return observation;
}

TEST(SignatureMatchRates, AMeanBoundHoldsForBurstsWhateverSecondsTheyFallIn) {
  Signature churn;
  RateExpectation rate;
  rate.metric = "connect";
  rate.min_per_second = 50;
  rate.aggregate = "mean";
  churn.rates.push_back(rate);
  MatchResult early = Match(churn, BurstyOutage({188, 2, 188}));
  MatchResult late = Match(churn, BurstyOutage({2, 188, 186}));
  EXPECT_TRUE(early.matched);
  EXPECT_TRUE(late.matched);
  EXPECT_EQ(Hash(early, BurstyOutage({188, 2, 188})), Hash(late, BurstyOutage({2, 188, 186})));
}

TEST(SignatureMatchRates, AMeanBelowTheBoundIsAMismatchShowingTheMean) {
  Signature churn;
  RateExpectation rate;
  rate.metric = "connect";
  rate.min_per_second = 50;
  rate.aggregate = "mean";
  churn.rates.push_back(rate);
  MatchResult match = Match(churn, BurstyOutage({2, 2, 2}));
  ASSERT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 1u);
  EXPECT_EQ(match.mismatches[0].expected, ">= 50/s on average over the outage");
  EXPECT_EQ(match.mismatches[0].observed.rfind("mean 2/s over 3 s", 0), 0u)
      << match.mismatches[0].observed;
}

Signature MeanBound(std::optional<double> min, std::optional<double> max) {
  Signature signature;
  RateExpectation rate;
  rate.metric = "connect";
  rate.min_per_second = min;
  rate.max_per_second = max;
  rate.aggregate = "mean";
  signature.rates.push_back(rate);
  return signature;
}

TEST(SignatureMatchRates, SevenSecondsOfExactlyFifteenHaveAMeanOfExactlyFifteen) {
  // A sum of 15/7s is 14.999999999999998; the sum divided once is 15.
  const std::vector<double> fifteens(7, 15);
  EXPECT_TRUE(Match(MeanBound(15, std::nullopt), BurstyOutage(fifteens)).matched);
  EXPECT_TRUE(Match(MeanBound(std::nullopt, 15), BurstyOutage(fifteens)).matched);
  EXPECT_TRUE(Match(MeanBound(15, 15), BurstyOutage(fifteens)).matched);
  // Exactly: the nearest doubles on either side of 15 are not met.
  EXPECT_FALSE(
      Match(MeanBound(std::nextafter(15.0, 16.0), std::nullopt), BurstyOutage(fifteens)).matched);
  EXPECT_FALSE(
      Match(MeanBound(std::nullopt, std::nextafter(15.0, 0.0)), BurstyOutage(fifteens)).matched);
}

TEST(SignatureMatchRates, AMeanBoundHoldsAtTheBoundAndNotOneCountBelowIt) {
  // One burst of 150 in three seconds is 50/s on average; no second but the burst reaches 50.
  EXPECT_TRUE(Match(MeanBound(50, std::nullopt), BurstyOutage({0, 0, 150})).matched);
  EXPECT_TRUE(Match(MeanBound(50, std::nullopt), BurstyOutage({150, 0, 0})).matched);
  const MatchResult short_by_one = Match(MeanBound(50, std::nullopt), BurstyOutage({0, 0, 149}));
  EXPECT_FALSE(short_by_one.matched);
  ASSERT_EQ(short_by_one.mismatches.size(), 1u);
  EXPECT_EQ(short_by_one.mismatches[0].role, "connect/outage");
  EXPECT_EQ(short_by_one.mismatches[0].field, "rate");
}

TEST(SignatureMatchRates, AMeanBoundIsNeitherTheMaximumNorTheMedianNorTheMinimum) {
  // 0, 10, 200: mean 70, median 10, maximum 200, minimum 0.
  const std::vector<double> series = {0, 10, 200};
  // Mean 70 >= 50; the median and the minimum are below 50.
  EXPECT_TRUE(Match(MeanBound(50, std::nullopt), BurstyOutage(series)).matched);
  // Mean 70 < 100; the maximum is above 100.
  EXPECT_FALSE(Match(MeanBound(100, std::nullopt), BurstyOutage(series)).matched);
  // Mean 70 > 50; the median and the minimum are below 50.
  EXPECT_FALSE(Match(MeanBound(std::nullopt, 50), BurstyOutage(series)).matched);
  // Mean 70 <= 100; the maximum is above 100.
  EXPECT_TRUE(Match(MeanBound(std::nullopt, 100), BurstyOutage(series)).matched);
}

}  // namespace
}  // namespace wedge::signature
