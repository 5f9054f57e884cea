// Tests of what a watched run-command step adds to signatures: frame alternatives, pipe
// expectations on a captured task, running_at_capture, and the bound pipe's capacity in the hash.
// The observations are built as signature::Observe builds them from a capture of runc exec's
// pipe-full hang (scenarios/runc-exec-pipe-full-injected.json).
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/signature/signature.h"

namespace wedge::signature {
namespace {

constexpr std::string_view kCrashDump =
    "runtime/cgo: pthread_create failed: Resource temporarily unavailable\nSIGABRT: abort\n";

// The frames of runc init blocked writing its crash dump, on Linux 6.18 (anon_pipe_write) and on
// kernels before the rename (pipe_write).
const std::vector<std::string> kStackOn618 = {"anon_pipe_write", "vfs_write", "ksys_write",
                                              "do_syscall_64", "entry_SYSCALL_64_after_hwframe"};
const std::vector<std::string> kStackBeforeRename = {
    "pipe_write", "new_sync_write", "vfs_write",
    "ksys_write", "do_syscall_64",  "entry_SYSCALL_64_after_hwframe"};

TaskExpectation BlockedRuncInit() {
  TaskExpectation blocked;
  blocked.role = "blocked-runc-init";
  blocked.select.process = "runc-init";
  blocked.states = {'S'};
  blocked.stack = {"anon_pipe_write|pipe_write", "vfs_write", "ksys_write"};
  blocked.pipe = TaskExpectation::Pipe{2, 0.9, "runtime/cgo: pthread_create failed"};
  return blocked;
}

// runc init as captured: asleep in the write, its stderr (fd 2) holding `unread` of `capacity`
// bytes that start with `head`; fd 1 is another pipe, nearly empty.
ObservedTask RuncInit(int unread, int capacity = 4096, std::string head = std::string(kCrashDump),
                      std::vector<std::string> stack = kStackOn618) {
  ObservedTask task;
  task.process = "runc-init";
  task.pid = 5120;
  task.tid = 5120;
  task.leader = true;
  task.comm = "runc:[2:INIT]";
  task.state = 'S';
  task.stack = std::move(stack);
  task.wchan = "anon_pipe_write";
  task.pipes = {{1, 65536, 3, "ok\n"}, {2, capacity, unread, std::move(head)}};
  return task;
}

Signature PipeFullBug() {
  Signature bug;
  bug.description = "runc init blocked on a full stderr pipe";
  bug.tasks = {BlockedRuncInit()};
  return bug;
}

Observation Captured(ObservedTask task) {
  Observation observation;
  observation.tasks = {std::move(task)};
  return observation;
}

// ---------------------------------------------------------------------------------------------
// Frame alternatives.

TEST(FrameMatches, MatchesThePlainNameOrAnyAlternative) {
  EXPECT_TRUE(FrameMatches("pipe_write", "pipe_write"));
  EXPECT_TRUE(FrameMatches("anon_pipe_write|pipe_write", "anon_pipe_write"));
  EXPECT_TRUE(FrameMatches("anon_pipe_write|pipe_write", "pipe_write"));
  EXPECT_TRUE(FrameMatches("a|b|c", "c"));
  EXPECT_FALSE(FrameMatches("anon_pipe_write|pipe_write", "pipe_read"));
  // Whole names only: no prefixes, suffixes or the joined text.
  EXPECT_FALSE(FrameMatches("anon_pipe_write|pipe_write", "pipe"));
  EXPECT_FALSE(FrameMatches("anon_pipe_write|pipe_write", "pipe_write2"));
  EXPECT_FALSE(FrameMatches("anon_pipe_write|pipe_write", "anon_pipe_write|pipe_write"));
  EXPECT_FALSE(FrameMatches("pipe_write", "anon_pipe_write"));
  EXPECT_FALSE(FrameMatches("pipe_write", ""));
}

TEST(FrameMatches, IsOrderedSubsequenceMatchesEitherKernelsName) {
  const std::vector<std::string> expected = BlockedRuncInit().stack;
  EXPECT_TRUE(IsOrderedSubsequence(expected, kStackOn618));
  EXPECT_TRUE(IsOrderedSubsequence(expected, kStackBeforeRename));
  // The alternative takes one frame's place: order still matters.
  EXPECT_FALSE(IsOrderedSubsequence(expected, {"vfs_write", "anon_pipe_write", "ksys_write"}));
  EXPECT_FALSE(IsOrderedSubsequence(expected, {"pipe_read", "vfs_read", "ksys_read"}));
  // One observed frame satisfies one expected frame, even when both alternatives are shown.
  EXPECT_FALSE(IsOrderedSubsequence({"anon_pipe_write|pipe_write", "pipe_write"},
                                    {"anon_pipe_write", "vfs_write"}));
  EXPECT_TRUE(IsOrderedSubsequence({"anon_pipe_write|pipe_write", "pipe_write"},
                                   {"anon_pipe_write", "pipe_write"}));
}

TEST(FrameMatches, BothKernelsMatchTheSignatureAndHashByTheirOwnFrames) {
  const Observation on_618 = Captured(RuncInit(4095));
  const Observation before_rename =
      Captured(RuncInit(4095, 4096, std::string(kCrashDump), kStackBeforeRename));
  const MatchResult new_match = Match(PipeFullBug(), on_618);
  const MatchResult old_match = Match(PipeFullBug(), before_rename);
  EXPECT_TRUE(new_match.matched);
  EXPECT_TRUE(old_match.matched);
  // The hash covers the observed stack, so two kernels that print different frames differ.
  EXPECT_NE(Hash(new_match, on_618), Hash(old_match, before_rename));
}

// ---------------------------------------------------------------------------------------------
// Pipe expectations.

TEST(PipeMatch, AFullPipeStartingWithTheDumpMatches) {
  const MatchResult match = Match(PipeFullBug(), Captured(RuncInit(4095)));
  EXPECT_TRUE(match.matched);
  EXPECT_TRUE(match.mismatches.empty());
  ASSERT_EQ(match.bound.size(), 1U);
  // The bound task keeps only the pipe its role talks about.
  ASSERT_EQ(match.bound[0].second.pipes.size(), 1U);
  EXPECT_EQ(match.bound[0].second.pipes[0].fd, 2);
}

TEST(PipeMatch, FillIsUnreadOverCapacityAndTheBoundIsInclusive) {
  // 0.9 of 4096 is 3686.4: 3687 bytes are enough, 3686 are not.
  EXPECT_TRUE(Match(PipeFullBug(), Captured(RuncInit(3687))).matched);
  const MatchResult below = Match(PipeFullBug(), Captured(RuncInit(3686)));
  ASSERT_FALSE(below.matched);
  ASSERT_EQ(below.mismatches.size(), 1U);
  EXPECT_EQ(below.mismatches[0].role, "blocked-runc-init");
  EXPECT_EQ(below.mismatches[0].field, "pipe");
  EXPECT_EQ(below.mismatches[0].expected,
            "fd 2 a pipe at least 90% full, unread bytes starting \"runtime/cgo: pthread_create "
            "failed\"");
  EXPECT_EQ(below.mismatches[0].observed, "3686 of 4096 bytes unread");
  // The same bytes in a 64 KiB pipe are far from full: the capacity counts.
  const MatchResult roomy = Match(PipeFullBug(), Captured(RuncInit(4095, 65536)));
  ASSERT_FALSE(roomy.matched);
  EXPECT_EQ(roomy.mismatches[0].observed, "4095 of 65536 bytes unread");
  // min_fill 1: only a completely full pipe.
  Signature full = PipeFullBug();
  full.tasks[0].pipe->min_fill = 1.0;
  EXPECT_TRUE(Match(full, Captured(RuncInit(4096))).matched);
  EXPECT_FALSE(Match(full, Captured(RuncInit(4095))).matched);
}

TEST(PipeMatch, ReportsUnreadBytesThatStartOtherwise) {
  const MatchResult match =
      Match(PipeFullBug(), Captured(RuncInit(4095, 4096, "fatal error: out of memory\n")));
  ASSERT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].field, "pipe");
  EXPECT_EQ(match.mismatches[0].observed,
            "4095 of 4096 bytes unread, starting \"fatal error: out of memory\\n\"");
  // A prefix of the expected text is not enough, nor is the text later in the pipe.
  EXPECT_FALSE(Match(PipeFullBug(), Captured(RuncInit(4095, 4096, "runtime/cgo"))).matched);
  EXPECT_FALSE(
      Match(PipeFullBug(), Captured(RuncInit(4095, 4096, " " + std::string(kCrashDump)))).matched);
}

TEST(PipeMatch, StartsWithAloneNeedsNoFill) {
  Signature bug = PipeFullBug();
  bug.tasks[0].pipe->min_fill = 0;
  EXPECT_TRUE(Match(bug, Captured(RuncInit(70, 65536))).matched);
  EXPECT_FALSE(Match(bug, Captured(RuncInit(70, 65536, "hello"))).matched);
}

TEST(PipeMatch, ReportsAnFdThatIsNotAMeasuredPipe) {
  ObservedTask without_stderr = RuncInit(4095);
  without_stderr.pipes.erase(without_stderr.pipes.begin() + 1);  // fd 2 is not a pipe
  const MatchResult match = Match(PipeFullBug(), Captured(without_stderr));
  ASSERT_FALSE(match.matched);
  ASSERT_EQ(match.mismatches.size(), 1U);
  EXPECT_EQ(match.mismatches[0].field, "pipe");
  EXPECT_EQ(match.mismatches[0].observed, "fd 2 not a measured pipe");
  // A task without any pipe.
  ObservedTask bare = RuncInit(4095);
  bare.pipes.clear();
  EXPECT_EQ(Match(PipeFullBug(), Captured(bare)).mismatches.at(0).observed,
            "fd 2 not a measured pipe");
  // Another fd's full pipe does not stand in for fd 2.
  Signature on_stdout = PipeFullBug();
  on_stdout.tasks[0].pipe->fd = 1;
  EXPECT_FALSE(Match(on_stdout, Captured(RuncInit(4095))).matched);
}

TEST(PipeMatch, ObserveTakesThePipesOfTheCapturedProcess) {
  probe::TreeSnapshot snapshot;
  probe::ProcessSnapshot process;
  process.pid = 5120;
  process.label = "runc-init";
  probe::TaskSnapshot task;
  task.tid = 5120;
  task.status.state = 'S';
  task.status.tgid = 5120;
  task.stat.comm = "runc:[2:INIT]";
  process.tasks.push_back(task);
  probe::FileDescriptor stderr_pipe;
  stderr_pipe.fd = 2;
  stderr_pipe.target = "pipe:[77]";
  stderr_pipe.pipe_inode = 77;
  stderr_pipe.pipe_unread_bytes = 4095;
  stderr_pipe.pipe_capacity_bytes = 4096;
  stderr_pipe.pipe_head = std::string(kCrashDump);
  probe::FileDescriptor unpeeked = stderr_pipe;  // a pipe wedge could not measure
  unpeeked.fd = 5;
  unpeeked.pipe_unread_bytes.reset();
  unpeeked.pipe_capacity_bytes.reset();
  unpeeked.pipe_head.reset();
  probe::FileDescriptor file;  // not a pipe at all
  file.fd = 3;
  file.target = "/dev/null";
  process.fds = {stderr_pipe, file, unpeeked};
  snapshot.processes.push_back(process);

  const Observation observation = Observe(snapshot, false);
  ASSERT_EQ(observation.tasks.size(), 1U);
  ASSERT_EQ(observation.tasks[0].pipes.size(), 1U);
  const ObservedTask::Pipe& pipe = observation.tasks[0].pipes[0];
  EXPECT_EQ(pipe.fd, 2);
  EXPECT_EQ(pipe.capacity_bytes, 4096);
  EXPECT_EQ(pipe.unread_bytes, 4095);
  EXPECT_EQ(pipe.head, kCrashDump);
  Signature bug = PipeFullBug();
  bug.tasks[0].stack.clear();  // the synthetic task has no stack
  EXPECT_TRUE(Match(bug, observation).matched);
}

// ---------------------------------------------------------------------------------------------
// running_at_capture.

ObservedCommand Exec() {
  ObservedCommand command;
  command.command = "exec";
  command.binary = "/usr/bin/docker";
  command.argv = {"/usr/bin/docker", "exec", "wedge-pipe-full", "true"};
  command.duration_ms = 2400;
  return command;
}
ObservedCommand RunningExec() {
  ObservedCommand command = Exec();
  command.running_at_capture = true;
  return command;
}
ObservedCommand ReturnedExec(int status) {
  ObservedCommand command = Exec();
  command.exit_code = status;
  return command;
}
Signature ExecSignature(CommandExpectation expectation) {
  Signature signature;
  signature.description = "how docker exec ended";
  expectation.command = "exec";
  signature.commands = {std::move(expectation)};
  return signature;
}
CommandExpectation StillRunning(bool running) {
  CommandExpectation expectation;
  expectation.running_at_capture = running;
  return expectation;
}
Observation Ran(ObservedCommand command) {
  Observation observation;
  observation.commands = {std::move(command)};
  return observation;
}

TEST(RunningAtCaptureMatch, MatchesACommandStillRunningWhenTheStallWasCaptured) {
  EXPECT_TRUE(Match(ExecSignature(StillRunning(true)), Ran(RunningExec())).matched);
  const MatchResult returned = Match(ExecSignature(StillRunning(true)), Ran(ReturnedExec(1)));
  ASSERT_FALSE(returned.matched);
  ASSERT_EQ(returned.mismatches.size(), 1U);
  EXPECT_EQ(returned.mismatches[0].role, "exec");
  EXPECT_EQ(returned.mismatches[0].field, "running_at_capture");
  EXPECT_EQ(returned.mismatches[0].expected, "still running at capture");
  EXPECT_EQ(returned.mismatches[0].observed, "exit 1");
}

TEST(RunningAtCaptureMatch, FalseMatchesOnlyACommandThatReturnedFirst) {
  EXPECT_TRUE(Match(ExecSignature(StillRunning(false)), Ran(ReturnedExec(0))).matched);
  const MatchResult running = Match(ExecSignature(StillRunning(false)), Ran(RunningExec()));
  ASSERT_FALSE(running.matched);
  ASSERT_EQ(running.mismatches.size(), 1U);
  EXPECT_EQ(running.mismatches[0].field, "running_at_capture");
  EXPECT_EQ(running.mismatches[0].expected, "returned before capture");
  EXPECT_EQ(running.mismatches[0].observed, "still running at capture");
}

TEST(RunningAtCaptureMatch, ACommandRunningAtCaptureNeitherExitedNorWasKilled) {
  // Even with an exit status recorded after recovery, the match saw it still running: recovery
  // ended it, not the bug.
  ObservedCommand recovered = RunningExec();
  recovered.exit_code = 0;
  CommandExpectation exits;
  exits.exit_code = 0;
  const MatchResult exit_match = Match(ExecSignature(exits), Ran(recovered));
  ASSERT_FALSE(exit_match.matched);
  ASSERT_EQ(exit_match.mismatches.size(), 1U);
  EXPECT_EQ(exit_match.mismatches[0].field, "exit_code");
  EXPECT_EQ(exit_match.mismatches[0].expected, "exit 0");
  EXPECT_EQ(exit_match.mismatches[0].observed, "still running at capture");

  ObservedCommand killed = RunningExec();
  killed.killed_by = "SIGKILL";
  CommandExpectation killed_by;
  killed_by.killed_by = "SIGKILL";
  const MatchResult kill_match = Match(ExecSignature(killed_by), Ran(killed));
  ASSERT_FALSE(kill_match.matched);
  EXPECT_EQ(kill_match.mismatches.at(0).field, "killed_by");
  EXPECT_EQ(kill_match.mismatches.at(0).observed, "still running at capture");
  // The healthy expectation of the scenario, exit 0, holds for an exec that returned.
  EXPECT_TRUE(Match(ExecSignature(exits), Ran(ReturnedExec(0))).matched);
}

TEST(RunningAtCaptureMatch, OutputIsStillCheckedForARunningCommand) {
  CommandExpectation expectation = StillRunning(true);
  expectation.output_contains = {"pthread_create failed"};
  ObservedCommand running = RunningExec();
  EXPECT_FALSE(Match(ExecSignature(expectation), Ran(running)).matched);
  running.output = std::string(kCrashDump);
  EXPECT_TRUE(Match(ExecSignature(expectation), Ran(running)).matched);
}

// ---------------------------------------------------------------------------------------------
// The hash.

Signature WholeBug() {
  Signature bug = PipeFullBug();
  bug.commands = ExecSignature(StillRunning(true)).commands;
  return bug;
}
Observation WholeCapture(ObservedTask task, ObservedCommand command = RunningExec()) {
  Observation observation = Captured(std::move(task));
  observation.commands = {std::move(command)};
  return observation;
}
std::string HashOf(const Signature& signature, const Observation& observation) {
  return Hash(Match(signature, observation), observation);
}

TEST(PipeHash, CoversTheBoundPipesCapacityButNotItsFillOrHead) {
  const Signature bug = WholeBug();
  const Observation full = WholeCapture(RuncInit(4095));
  const std::string hash = HashOf(bug, full);
  // How far the dump got when captured varies from run to run.
  EXPECT_EQ(hash, HashOf(bug, WholeCapture(RuncInit(3900))));
  EXPECT_EQ(hash, HashOf(bug, WholeCapture(RuncInit(4096, 4096, std::string(kCrashDump) + "x"))));
  // The capacity is how the pipe was made (one page or the default 16): it is hashed.
  Signature any_fill = bug;
  any_fill.tasks[0].pipe->min_fill = 0;
  EXPECT_NE(HashOf(any_fill, WholeCapture(RuncInit(4095, 4096))),
            HashOf(any_fill, WholeCapture(RuncInit(4095, 8192))));
  EXPECT_NE(HashOf(any_fill, WholeCapture(RuncInit(4095, 4096))),
            HashOf(any_fill, WholeCapture(RuncInit(4095, 65536))));
}

TEST(PipeHash, IgnoresPipesTheSignatureDoesNotName) {
  const Signature bug = WholeBug();
  const Observation captured = WholeCapture(RuncInit(4095));
  ObservedTask other_stdout = RuncInit(4095);
  other_stdout.pipes[0].capacity_bytes = 4096;  // fd 1, not named by the expectation
  other_stdout.pipes.push_back({7, 1048576, 12, "x"});
  EXPECT_EQ(HashOf(bug, captured), HashOf(bug, WholeCapture(other_stdout)));
  // Without a pipe expectation, no pipe is hashed at all.
  Signature no_pipe = bug;
  no_pipe.tasks[0].pipe.reset();
  EXPECT_EQ(HashOf(no_pipe, WholeCapture(RuncInit(4095, 4096))),
            HashOf(no_pipe, WholeCapture(RuncInit(4095, 65536))));
  // ... and a pipe expectation changes the hash of the same capture.
  EXPECT_NE(HashOf(no_pipe, captured), HashOf(bug, captured));
}

TEST(PipeHash, DiffersBetweenACommandRunningAtCaptureAndOneThatReturned) {
  const Signature bug = WholeBug();
  const std::string running = HashOf(bug, WholeCapture(RuncInit(4095)));
  const std::string returned = HashOf(bug, WholeCapture(RuncInit(4095), ReturnedExec(0)));
  EXPECT_NE(running, returned);
  // The exit status recorded after recovery does not change the hash of a run still running at
  // capture.
  ObservedCommand recovered = RunningExec();
  recovered.exit_code = 1;
  recovered.duration_ms = 12000;
  EXPECT_EQ(running, HashOf(bug, WholeCapture(RuncInit(4095), recovered)));
}

}  // namespace
}  // namespace wedge::signature
