#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

const std::string kSeedTree = std::string(WEDGE_TEST_DATA_DIR) + "/proc/seed001-6.18";

TEST(ReadProcess, ReadsARecordedTreeLeaderFirstAndToleratesMissingFiles) {
  Result<ProcessSnapshot> daemon = ReadProcess(4117, /*peek_pipes=*/true, kSeedTree);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  EXPECT_EQ(daemon->pid, 4117);
  ASSERT_EQ(daemon->tasks.size(), 2U);

  const TaskSnapshot& leader = daemon->tasks[0];
  EXPECT_EQ(leader.tid, 4117);
  EXPECT_EQ(leader.status.state, 'Z');
  EXPECT_TRUE(leader.stack.empty());
  EXPECT_FALSE(leader.syscall.has_value());  // no syscall file, as for a zombie
  EXPECT_EQ(leader.wchan, "0");

  const TaskSnapshot& thread = daemon->tasks[1];
  EXPECT_EQ(thread.tid, 4119);
  EXPECT_EQ(thread.status.state, 'D');
  EXPECT_TRUE(thread.status.shd_pnd.Contains(SIGKILL));
  EXPECT_EQ(thread.stat.comm, "wedge-fuse");
  ASSERT_EQ(thread.stack.size(), 13U);
  EXPECT_EQ(thread.stack[1].function, "__fuse_simple_request");
  EXPECT_NE(thread.stack_text.find("fuse_flush+0x1a3/0x1f0 [fuse]"), std::string::npos);
  EXPECT_EQ(thread.wchan, "request_wait_answer");

  EXPECT_TRUE(daemon->fds.empty());  // no fd directory
  EXPECT_TRUE(daemon->children.empty());
}

TEST(ReadProcess, ReadsTheSyscallAndChildrenOfTheRecordedInit) {
  Result<ProcessSnapshot> init = ReadProcess(4100, false, kSeedTree);
  ASSERT_TRUE(init.ok()) << init.error().message();
  ASSERT_EQ(init->tasks.size(), 1U);
  ASSERT_TRUE(init->tasks[0].syscall.has_value());
  EXPECT_EQ(init->tasks[0].syscall->number, 231);  // exit_group
  EXPECT_EQ(init->children, std::vector<pid_t>{4117});
}

TEST(ReadProcess, FailsForAProcessThatIsNotThere) {
  Result<ProcessSnapshot> missing = ReadProcess(999, false, kSeedTree);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("ENOENT"), std::string::npos)
      << missing.error().message();
}

TEST(ListDescendants, WalksTheRecordedTreeParentsFirst) {
  EXPECT_EQ(ListDescendants(4100, kSeedTree), (std::vector<pid_t>{4100, 4117}));
  EXPECT_EQ(ListDescendants(4117, kSeedTree), std::vector<pid_t>{4117});
  EXPECT_TRUE(ListDescendants(999, kSeedTree).empty());
}

TEST(ReadProcesses, LeavesOutProcessesThatAreGone) {
  const TreeSnapshot tree = ReadProcesses({4100, 999, 4117}, false, kSeedTree);
  ASSERT_EQ(tree.processes.size(), 2U);
  EXPECT_EQ(tree.processes[0].pid, 4100);
  EXPECT_EQ(tree.processes[1].pid, 4117);
  EXPECT_GT(tree.captured_at_ms, 0);
}

TEST(ReadActivity, ReadsStateTicksSwitchesAndWchanOfEveryTask) {
  const std::vector<TaskActivity> activity = ReadActivity({4117, 4100, 999}, kSeedTree);
  ASSERT_EQ(activity.size(), 3U);
  EXPECT_EQ(activity[0].tid, 4100);
  EXPECT_EQ(activity[0].state, 'S');
  EXPECT_EQ(activity[0].cpu_ticks, 1U);
  EXPECT_EQ(activity[0].wchan, "do_wait");
  EXPECT_EQ(activity[1].tid, 4117);
  EXPECT_EQ(activity[1].state, 'Z');
  EXPECT_EQ(activity[1].cpu_ticks, 14U);
  EXPECT_EQ(activity[2].tid, 4119);
  EXPECT_EQ(activity[2].state, 'D');
  EXPECT_EQ(activity[2].context_switches, 15U);
  EXPECT_EQ(activity[2].wchan, "request_wait_answer");
}

// A forked child with a second thread named "wedge-helper" and a pipe holding 10 unread bytes.
// Both threads block reading `release_` until the test closes it; the destructor reaps it.
class PipeHoldingChild {
 public:
  PipeHoldingChild() {
    int data[2];
    int ready[2];
    int release[2];
    if (pipe2(data, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0 ||
        pipe2(release, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return;
    }
    data_read_fd_ = data[0];
    data_write_fd_ = data[1];
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(release[1]);
      if (write(data[1], "0123456789", 10) != 10) _exit(1);
      std::thread helper([fd = release[0]] {
        char byte;
        while (read(fd, &byte, 1) > 0) {
        }
      });
      pthread_setname_np(helper.native_handle(), "wedge-helper");
      if (write(ready[1], "r", 1) != 1) _exit(1);
      char byte;
      while (read(release[0], &byte, 1) > 0) {
      }
      helper.join();
      _exit(0);
    }
    close(data[0]);
    close(data[1]);
    close(ready[1]);
    close(release[0]);
    release_ = release[1];
    char byte;
    if (read(ready[0], &byte, 1) != 1) ADD_FAILURE() << "child did not start";
    close(ready[0]);
  }
  ~PipeHoldingChild() {
    if (release_ >= 0) close(release_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  PipeHoldingChild(const PipeHoldingChild&) = delete;
  PipeHoldingChild& operator=(const PipeHoldingChild&) = delete;

  pid_t pid() const { return pid_; }
  int data_read_fd() const { return data_read_fd_; }
  int data_write_fd() const { return data_write_fd_; }

  // Waits until both threads are asleep in read(), so their state no longer changes. A task
  // shows S as soon as it prepares to wait, while still on the CPU; its wchan is "0" until it
  // has switched out.
  bool WaitUntilAsleep() const {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::vector<TaskActivity> activity = ReadActivity({pid_});
      if (activity.size() == 2 &&
          std::all_of(activity.begin(), activity.end(), [](const TaskActivity& task) {
            return task.state == 'S' && !task.wchan.empty() && task.wchan != "0";
          })) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  int data_read_fd_ = -1;
  int data_write_fd_ = -1;
};

const FileDescriptor* FindFd(const ProcessSnapshot& process, int number) {
  for (const FileDescriptor& fd : process.fds) {
    if (fd.fd == number) return &fd;
  }
  return nullptr;
}

TEST(ReadProcess, ReadsALiveChildWithItsThreadAndPipe) {
  if (geteuid() != 0) GTEST_SKIP() << "reading another task's stack needs root";
  PipeHoldingChild child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.WaitUntilAsleep());

  Result<ProcessSnapshot> process = ReadProcess(child.pid(), /*peek_pipes=*/true);
  ASSERT_TRUE(process.ok()) << process.error().message();
  ASSERT_EQ(process->tasks.size(), 2U);
  const TaskSnapshot& leader = process->tasks[0];
  const TaskSnapshot& helper = process->tasks[1];
  EXPECT_EQ(leader.tid, child.pid());
  EXPECT_EQ(leader.status.tgid, child.pid());
  EXPECT_EQ(leader.status.ppid, getpid());
  EXPECT_EQ(leader.status.threads, 2);
  EXPECT_EQ(leader.status.state, 'S');
  EXPECT_EQ(helper.status.name, "wedge-helper");
  EXPECT_EQ(helper.stat.comm, "wedge-helper");
  EXPECT_EQ(helper.status.tgid, child.pid());
  EXPECT_FALSE(leader.stack.empty()) << "stack unreadable as root?";
  ASSERT_TRUE(leader.syscall.has_value()) << leader.syscall_text;
  EXPECT_EQ(leader.syscall->kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(leader.syscall->number, SYS_read);

  const FileDescriptor* read_end = FindFd(*process, child.data_read_fd());
  const FileDescriptor* write_end = FindFd(*process, child.data_write_fd());
  ASSERT_NE(read_end, nullptr);
  ASSERT_NE(write_end, nullptr);
  ASSERT_TRUE(read_end->pipe_inode.has_value()) << read_end->target;
  EXPECT_EQ(read_end->pipe_inode, write_end->pipe_inode);
  EXPECT_EQ(read_end->flags & O_ACCMODE, static_cast<std::uint32_t>(O_RDONLY));
  EXPECT_EQ(write_end->flags & O_ACCMODE, static_cast<std::uint32_t>(O_WRONLY));
  EXPECT_EQ(read_end->pipe_unread_bytes, 10);
  EXPECT_EQ(write_end->pipe_unread_bytes, 10);

  // Peeking consumed nothing; without peek_pipes nothing is measured.
  Result<ProcessSnapshot> again = ReadProcess(child.pid(), /*peek_pipes=*/true);
  ASSERT_TRUE(again.ok()) << again.error().message();
  ASSERT_NE(FindFd(*again, child.data_read_fd()), nullptr);
  EXPECT_EQ(FindFd(*again, child.data_read_fd())->pipe_unread_bytes, 10);
  Result<ProcessSnapshot> unpeeked = ReadProcess(child.pid(), /*peek_pipes=*/false);
  ASSERT_TRUE(unpeeked.ok()) << unpeeked.error().message();
  ASSERT_NE(FindFd(*unpeeked, child.data_read_fd()), nullptr);
  EXPECT_FALSE(FindFd(*unpeeked, child.data_read_fd())->pipe_unread_bytes.has_value());
}

TEST(ListDescendants, FindsAForkedChild) {
  PipeHoldingChild child;
  ASSERT_GT(child.pid(), 0);
  const std::vector<pid_t> children = ReadChildren(getpid());
  EXPECT_NE(std::find(children.begin(), children.end(), child.pid()), children.end());
  const std::vector<pid_t> descendants = ListDescendants(getpid());
  ASSERT_FALSE(descendants.empty());
  EXPECT_EQ(descendants[0], getpid());
  EXPECT_NE(std::find(descendants.begin(), descendants.end(), child.pid()), descendants.end());
}

TEST(ReadActivity, IsUnchangedWhileEveryTaskSleeps) {
  PipeHoldingChild child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.WaitUntilAsleep());
  const std::vector<TaskActivity> first = ReadActivity({child.pid()});
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(first[0].tid, child.pid());
  EXPECT_LT(first[0].tid, first[1].tid);
  EXPECT_FALSE(first[0].wchan.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ReadActivity({child.pid()}), first);
}

TEST(ReadProcess, ReadsAZombieWithoutFdsOrSyscall) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  // WNOWAIT: wait until it is a zombie, but leave it unreaped.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);

  Result<ProcessSnapshot> zombie = ReadProcess(pid, /*peek_pipes=*/true);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(zombie.ok()) << zombie.error().message();
  ASSERT_EQ(zombie->tasks.size(), 1U);
  EXPECT_EQ(zombie->tasks[0].status.state, 'Z');
  EXPECT_EQ(zombie->tasks[0].stat.state, 'Z');
  EXPECT_TRUE(zombie->fds.empty());
  EXPECT_TRUE(zombie->children.empty());
}

}  // namespace
}  // namespace wedge::probe

namespace wedge::probe {
namespace {

TaskActivity Sleeping(pid_t tid, std::uint64_t switches) {
  return TaskActivity{tid, 'S', 7, switches, "do_wait"};
}

TEST(SettleWatch, SettlesOnlyAfterTheWholeWindowAsleepAndUnchanged) {
  SettleWatch settle(/*settle_ms=*/50, /*now_ms=*/1000);
  const std::vector<TaskActivity> quiet = {Sleeping(1, 3), Sleeping(2, 9)};
  EXPECT_FALSE(settle.Settled(quiet, 1000));  // the first sample starts the window
  EXPECT_FALSE(settle.Settled(quiet, 1049));
  EXPECT_TRUE(settle.Settled(quiet, 1050));
  EXPECT_EQ(settle.quiet_since_ms(), 1000);
}

TEST(SettleWatch, AnyChangeOrARunningTaskRestartsTheWindow) {
  SettleWatch settle(50, 0);
  EXPECT_FALSE(settle.Settled({Sleeping(1, 3)}, 0));
  EXPECT_FALSE(settle.Settled({Sleeping(1, 4)}, 40));  // a context switch: not quiet
  EXPECT_EQ(settle.quiet_since_ms(), 40);
  EXPECT_FALSE(settle.Settled({Sleeping(1, 4)}, 80));
  TaskActivity running = Sleeping(1, 4);
  running.state = 'R';
  EXPECT_FALSE(settle.Settled({running}, 95));
  EXPECT_FALSE(settle.Settled({running}, 200));  // unchanged, but running
  EXPECT_FALSE(settle.Settled({Sleeping(1, 4)}, 210));
  EXPECT_TRUE(settle.Settled({Sleeping(1, 4)}, 260));
}

TEST(SettleWatch, NothingToWatchNeverSettles) {
  SettleWatch settle(10, 0);
  EXPECT_FALSE(settle.Settled({}, 0));
  EXPECT_FALSE(settle.Settled({}, 1000));
  EXPECT_TRUE(IsAsleep('D'));
  EXPECT_TRUE(IsAsleep('Z'));
  EXPECT_FALSE(IsAsleep('t'));  // a task in a tracing stop is held, not asleep
}

}  // namespace
}  // namespace wedge::probe
