#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "wedge/probe/signals.h"
#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

std::string Recorded(const std::string& relative) {
  const std::string path = std::string(WEDGE_TEST_DATA_DIR) + "/proc/" + relative;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SignalName, NamesStandardAndRealTimeSignals) {
  EXPECT_EQ(SignalName(9), "SIGKILL");
  EXPECT_EQ(SignalName(17), "SIGCHLD");
  EXPECT_EQ(SignalName(31), "SIGSYS");
  EXPECT_EQ(SignalName(32), "SIGRTMIN");
  EXPECT_EQ(SignalName(34), "SIGRTMIN+2");
  EXPECT_EQ(SignalName(0), "SIG0");
  EXPECT_EQ(SignalName(65), "SIG65");
}

TEST(SignalNumber, AcceptsNamesWithOrWithoutThePrefix) {
  EXPECT_EQ(SignalNumber("SIGKILL"), 9);
  EXPECT_EQ(SignalNumber("KILL"), 9);
  EXPECT_EQ(SignalNumber("sigterm"), 15);
  EXPECT_EQ(SignalNumber("SIGIOT"), 6);
  EXPECT_EQ(SignalNumber("SIGRTMIN+2"), 34);
  EXPECT_EQ(SignalNumber("SIGRTMAX"), 64);
  EXPECT_EQ(SignalNumber("SIGBOGUS"), std::nullopt);
  EXPECT_EQ(SignalNumber("SIGRTMIN+40"), std::nullopt);
}

TEST(SignalNumber, RoundTripsEveryNameSignalNameGives) {
  for (int signo = 1; signo <= 64; ++signo) {
    EXPECT_EQ(SignalNumber(SignalName(signo)), signo) << SignalName(signo);
  }
}

TEST(SignalSet, ShdPndBitEightIsSigkill) {
  const SignalSet set(0x100);
  EXPECT_TRUE(set.Contains(9));
  EXPECT_FALSE(set.Contains(8));
  EXPECT_FALSE(set.Contains(0));
  EXPECT_FALSE(set.Contains(65));
  EXPECT_EQ(set.Names(), std::vector<std::string>{"SIGKILL"});
  EXPECT_EQ(SignalSet(0x4100).Names(), (std::vector<std::string>{"SIGKILL", "SIGTERM"}));
  EXPECT_TRUE(SignalSet().empty());
}

TEST(ParseStatus, ReadsThisKernelsStatusOfCat) {
  Result<TaskStatus> status = ParseStatus(Recorded("6.18/status_cat.txt"));
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(status->name, "cat");
  EXPECT_EQ(status->state, 'R');
  EXPECT_EQ(status->state_text, "R (running)");
  EXPECT_EQ(status->pid, 6807);
  EXPECT_EQ(status->tgid, 6807);
  EXPECT_EQ(status->ppid, 6804);
  EXPECT_EQ(status->ns_pids, std::vector<pid_t>{6807});
  EXPECT_EQ(status->threads, 1);
  EXPECT_TRUE(status->shd_pnd.empty());
  EXPECT_TRUE(status->sig_pnd.empty());
  EXPECT_EQ(status->tracer_pid, 0);
  EXPECT_EQ(status->cap_eff, 0x000001fffeffffffULL);  // every capability but CAP_SYS_RESOURCE
}

TEST(ParseStatus, KeepsACommHoldingParenthesisAndSpace) {
  Result<TaskStatus> status = ParseStatus(Recorded("6.18/status_paren_comm.txt"));
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(status->name, "a) b");
  EXPECT_EQ(status->state, 'S');
  EXPECT_EQ(status->state_text, "S (sleeping)");
  // Started in the background by a shell: SIGINT and SIGQUIT ignored.
  EXPECT_EQ(status->sig_ign.Names(), (std::vector<std::string>{"SIGINT", "SIGQUIT"}));
  EXPECT_EQ(status->voluntary_ctxt_switches, 1U);
  EXPECT_EQ(status->nonvoluntary_ctxt_switches, 0U);
}

TEST(ParseStatus, ReadsThePendingSigkillOfTheStuckFuseThread) {
  Result<TaskStatus> status = ParseStatus(Recorded("seed001-6.18/4117/task/4119/status"));
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(status->state, 'D');
  EXPECT_EQ(status->state_text, "D (disk sleep)");
  EXPECT_EQ(status->tgid, 4117);
  EXPECT_EQ(status->pid, 4119);
  EXPECT_EQ(status->ns_pids, (std::vector<pid_t>{4119, 3}));
  EXPECT_EQ(status->threads, 2);
  EXPECT_EQ(status->shd_pnd.mask(), 0x100U);
  EXPECT_EQ(status->shd_pnd.Names(), std::vector<std::string>{"SIGKILL"});
  EXPECT_TRUE(status->sig_pnd.empty());
  EXPECT_EQ(status->voluntary_ctxt_switches, 12U);
  EXPECT_EQ(status->nonvoluntary_ctxt_switches, 3U);
}

TEST(ParseStatus, AcceptsAnOldKernelStatusWithoutNSpid) {
  Result<TaskStatus> status = ParseStatus(Recorded("old-kernel/status_no_nspid.txt"));
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(status->name, "ndrive");
  EXPECT_EQ(status->pid, 2314);
  EXPECT_TRUE(status->ns_pids.empty());
  EXPECT_EQ(status->sig_cgt.mask(), 0x14003U);
}

TEST(ParseStatus, NamesAMissingStateField) {
  Result<TaskStatus> status = ParseStatus("Name:\tx\nPid:\t5\n");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("State"), std::string::npos) << status.error().message();
}

TEST(ParseStatus, NamesAMissingPidField) {
  Result<TaskStatus> status = ParseStatus("Name:\tx\nState:\tS (sleeping)\n");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("Pid"), std::string::npos) << status.error().message();
}

TEST(ParseStatus, RejectsAMalformedSignalMask) {
  Result<TaskStatus> status =
      ParseStatus("State:\tS (sleeping)\nPid:\t5\nShdPnd:\t00000000000001zz\n");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("ShdPnd"), std::string::npos) << status.error().message();
}

TEST(ParseStatus, ReadsATracerAndRejectsAMalformedCapabilityMask) {
  Result<TaskStatus> traced = ParseStatus("State:\tt (tracing stop)\nPid:\t5\nTracerPid:\t42\n");
  ASSERT_TRUE(traced.ok()) << traced.error().message();
  EXPECT_EQ(traced->tracer_pid, 42);
  Result<TaskStatus> bad =
      ParseStatus("State:\tS (sleeping)\nPid:\t5\nCapEff:\t0000001fffffffffff\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("CapEff"), std::string::npos) << bad.error().message();
}

TEST(ParseStat, TakesTheCommUpToTheLastParenthesis) {
  Result<TaskStat> stat = ParseStat(Recorded("6.18/stat_paren_comm.txt"));
  ASSERT_TRUE(stat.ok()) << stat.error().message();
  EXPECT_EQ(stat->comm, "a) b");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 6809);
  EXPECT_EQ(stat->flags, 0x400000U);  // PF_RANDOMIZE
  EXPECT_EQ(stat->utime, 0U);
  EXPECT_EQ(stat->stime, 0U);
  EXPECT_EQ(stat->start_time, 62583U);
}

TEST(ParseStat, ReadsTheFlagsAndTimesOfTheStuckFuseThread) {
  Result<TaskStat> stat = ParseStat(Recorded("seed001-6.18/4117/task/4119/stat"));
  ASSERT_TRUE(stat.ok()) << stat.error().message();
  EXPECT_EQ(stat->comm, "wedge-fuse");
  EXPECT_EQ(stat->state, 'D');
  EXPECT_EQ(stat->ppid, 4100);
  EXPECT_EQ(stat->stime, 2U);
  EXPECT_EQ(stat->start_time, 883431U);
  EXPECT_EQ(TaskFlagNames(stat->flags), (std::vector<std::string>{"PF_EXITING", "PF_FORKNOEXEC",
                                                                  "PF_SIGNALED", "PF_RANDOMIZE"}));
}

TEST(ParseStat, RejectsATruncatedLine) {
  EXPECT_FALSE(ParseStat("12 (sleep) S 1 12 12 0 -1").ok());
  EXPECT_FALSE(ParseStat("12 sleep S 1").ok());
}

TEST(TaskFlagNames, NamesTheBitsWedgeKnows) {
  EXPECT_EQ(TaskFlagNames(0x200000), std::vector<std::string>{"PF_KTHREAD"});
  EXPECT_EQ(TaskFlagNames(0x2 | 0x8 | 0x10 | 0x20 | 0x200 | 0x800 | 0x8000),
            (std::vector<std::string>{"PF_IDLE", "PF_POSTCOREDUMP", "PF_IO_WORKER", "PF_WQ_WORKER",
                                      "PF_DUMPCORE", "PF_MEMALLOC", "PF_NOFREEZE"}));
  EXPECT_TRUE(TaskFlagNames(0).empty());
}

TEST(ParseStack, SplitsFunctionOffsetAndModule) {
  const std::vector<StackFrame> frames = ParseStack(Recorded("seed001-6.18/4117/task/4119/stack"));
  ASSERT_EQ(frames.size(), 13U);
  EXPECT_EQ(frames[0].function, "request_wait_answer");
  EXPECT_EQ(frames[0].offset, "0x1d7/0x2a0");
  EXPECT_EQ(frames[0].module, "fuse");
  EXPECT_EQ(frames[0].raw, "[<0>] request_wait_answer+0x1d7/0x2a0 [fuse]");
  EXPECT_EQ(frames[3].function, "filp_flush");
  EXPECT_EQ(frames[3].module, "");
  EXPECT_EQ(frames[12].function, "entry_SYSCALL_64_after_hwframe");
}

TEST(ParseStack, ReadsThisKernelsStackOfASleepingTask) {
  const std::vector<StackFrame> frames = ParseStack(Recorded("6.18/stack_paren_comm.txt"));
  ASSERT_EQ(frames.size(), 5U);
  EXPECT_EQ(frames[0].function, "hrtimer_nanosleep");
  EXPECT_EQ(frames[0].offset, "0x74/0xf0");
  EXPECT_EQ(frames[2].function, "__x64_sys_clock_nanosleep");
}

TEST(ParseStack, DropsTheTerminatorOlderKernelsPrint) {
  const std::vector<StackFrame> frames =
      ParseStack(Recorded("old-kernel/stack_fuse_flush_addresses.txt"));
  ASSERT_EQ(frames.size(), 12U);
  EXPECT_EQ(frames[0].function, "request_wait_answer");
  EXPECT_EQ(frames[0].module, "fuse");
  EXPECT_EQ(frames[1].function, "fuse_simple_request");
  EXPECT_EQ(frames[0].raw, "[<ffffffffc06d1a2f>] request_wait_answer+0x12f/0x210 [fuse]");
  EXPECT_EQ(frames[11].function, "entry_SYSCALL_64_after_hwframe");

  const std::vector<StackFrame> pipe =
      ParseStack(Recorded("old-kernel/stack_pipe_wait_addresses.txt"));
  ASSERT_EQ(pipe.size(), 6U);
  EXPECT_EQ(pipe[0].function, "pipe_wait");
  EXPECT_EQ(pipe[0].offset, "0x70/0xc0");
}

TEST(ParseStack, KeepsCloneSuffixesAndReadsFramesWithoutOffset) {
  const std::vector<StackFrame> frames =
      ParseStack("[<0>] do_wait.isra.0+0x5d/0x100\n[<0>] schedule\n\n");
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0].function, "do_wait.isra.0");
  EXPECT_EQ(frames[1].function, "schedule");
  EXPECT_EQ(frames[1].offset, "");
  EXPECT_TRUE(ParseStack("").empty());
}

TEST(ParseSyscall, ReadsTheNumberArgumentsAndRegisters) {
  Result<SyscallState> state = ParseSyscall(Recorded("6.18/syscall_paren_comm.txt"));
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_EQ(state->kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(state->number, 230);  // clock_nanosleep
  EXPECT_EQ(state->args[2], 0x7ffe5a08beb0U);
  EXPECT_EQ(state->args[5], 0U);
  EXPECT_EQ(state->stack_pointer, 0x7ffe5a08be98U);
  EXPECT_EQ(state->program_counter, 0x7ff7a4c7e503U);
}

TEST(ParseSyscall, ReadsRunningAndNotInSyscall) {
  Result<SyscallState> running = ParseSyscall(Recorded("old-kernel/syscall_running.txt"));
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->kind, SyscallState::Kind::kRunning);

  Result<SyscallState> outside = ParseSyscall(Recorded("old-kernel/syscall_not_in_syscall.txt"));
  ASSERT_TRUE(outside.ok()) << outside.error().message();
  EXPECT_EQ(outside->kind, SyscallState::Kind::kNotInSyscall);
  EXPECT_EQ(outside->number, -1);
  EXPECT_EQ(outside->stack_pointer, 0x7ffc4a2b3c58U);
  EXPECT_EQ(outside->program_counter, 0x7f2d1c0e4a3dU);
}

TEST(ParseSyscall, RejectsMalformedText) {
  EXPECT_FALSE(ParseSyscall("").ok());
  EXPECT_FALSE(ParseSyscall("0 0x1 0x2").ok());
  EXPECT_FALSE(ParseSyscall("x 0x0 0x0 0x0 0x0 0x0 0x0 0x0 0x0").ok());
  EXPECT_FALSE(ParseSyscall("0 0x0 0x0 0x0 0x0 0x0 zz 0x0 0x0").ok());
}

TEST(ParsePipeInode, ReadsOnlyPipeTargets) {
  EXPECT_EQ(ParsePipeInode("pipe:[15842]"), 15842U);
  EXPECT_EQ(ParsePipeInode("socket:[15842]"), std::nullopt);
  EXPECT_EQ(ParsePipeInode("pipe:[]"), std::nullopt);
  EXPECT_EQ(ParsePipeInode("/dev/null"), std::nullopt);
}

TEST(ParseFdinfo, ReadsFlagsAsOctal) {
  FileDescriptor pipe;
  ASSERT_TRUE(ParseFdinfo(Recorded("6.18/fdinfo_pipe.txt"), pipe).ok());
  EXPECT_EQ(pipe.pos, 0U);
  EXPECT_EQ(pipe.flags, static_cast<std::uint32_t>(O_WRONLY | O_CLOEXEC));

  FileDescriptor dev_null;
  ASSERT_TRUE(ParseFdinfo(Recorded("6.18/fdinfo_dev_null.txt"), dev_null).ok());
  EXPECT_EQ(dev_null.flags & O_ACCMODE, static_cast<std::uint32_t>(O_RDONLY));

  FileDescriptor rdwr;
  ASSERT_TRUE(ParseFdinfo("pos:\t42\nflags:\t02000002\nmnt_id:\t15\nino:\t7\n", rdwr).ok());
  EXPECT_EQ(rdwr.pos, 42U);
  EXPECT_EQ(rdwr.flags, static_cast<std::uint32_t>(O_RDWR | O_CLOEXEC));
}

TEST(ParseFdinfo, RejectsMissingOrNonOctalFlags) {
  FileDescriptor fd;
  EXPECT_FALSE(ParseFdinfo("pos:\t0\n", fd).ok());
  EXPECT_FALSE(ParseFdinfo("pos:\t0\nflags:\t0800\n", fd).ok());
}

}  // namespace
}  // namespace wedge::probe
