// Tests of the process-level /proc readers (comm, cmdline, cgroup, stat, parent) on recorded
// text and a recorded tree, and of the pipe measurements on pipes of the test process itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "wedge/probe/pipe.h"
#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

const std::string kSeedTree = std::string(WEDGE_TEST_DATA_DIR) + "/proc/seed001-6.18";

std::string Recorded(const std::string& relative) {
  const std::string path = std::string(WEDGE_TEST_DATA_DIR) + "/proc/" + relative;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ParseComm, DropsOnlyTheNewlineOfACommHoldingParenthesesAndSpaces) {
  EXPECT_EQ(ParseComm(Recorded("6.18/comm_paren_comm.txt")), "a) b");
  EXPECT_EQ(ParseComm("kworker/0:1+netns\n"), "kworker/0:1+netns");
  EXPECT_EQ(ParseComm("trailing \n"), "trailing ");
  EXPECT_EQ(ParseComm(""), "");
}

TEST(ParseCmdline, SplitsOnNulKeepingSpacesAndAnEmptyLastArgument) {
  EXPECT_EQ(ParseCmdline(Recorded("6.18/cmdline_sh_args.txt")),
            (std::vector<std::string>{"sh", "-c", "sleep 3; :", "arg with space", ""}));
}

TEST(ParseCmdline, ReadsTheArgvOfAShim) {
  EXPECT_EQ(
      ParseCmdline(Recorded("6.18/cmdline_shim.txt")),
      (std::vector<std::string>{"/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id",
                                "0123abcd", "-address", "/run/containerd/containerd.sock"}));
}

TEST(ParseCmdline, TakesARewrittenArgvWithoutNulAsOneArgumentAndAZombiesAsNone) {
  EXPECT_EQ(ParseCmdline("nginx: worker process"),
            std::vector<std::string>{"nginx: worker process"});
  EXPECT_TRUE(ParseCmdline("").empty());
}

TEST(ParseCgroups, ReadsEveryHierarchyOfAHybridHost) {
  const std::vector<CgroupMembership> cgroups = ParseCgroups(Recorded("6.18/cgroup_hybrid.txt"));
  ASSERT_EQ(cgroups.size(), 10U);
  EXPECT_EQ(cgroups[0].hierarchy_id, 9);
  EXPECT_EQ(cgroups[0].controllers, std::vector<std::string>{"name=systemd"});
  EXPECT_EQ(cgroups[1].controllers, std::vector<std::string>{"pids"});
  EXPECT_EQ(cgroups[1].path, "/");
  EXPECT_EQ(cgroups.back().hierarchy_id, 0);
  EXPECT_TRUE(cgroups.back().controllers.empty());
  EXPECT_EQ(cgroups.back().path, "/");
}

TEST(ParseCgroups, SplitsSharedControllersAndKeepsColonsInThePath) {
  const std::vector<CgroupMembership> cgroups =
      ParseCgroups(Recorded("old-kernel/cgroup_v1_container.txt"));
  ASSERT_EQ(cgroups.size(), 4U);
  EXPECT_EQ(cgroups[1].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(cgroups[1].path, "/docker/0123abcd");
  const std::vector<CgroupMembership> odd = ParseCgroups("0::/a:b\nnot a line\nx:pids:/y\n");
  ASSERT_EQ(odd.size(), 1U);
  EXPECT_EQ(odd[0].path, "/a:b");
}

TEST(PidsCgroupPath, PrefersTheV1PidsLineAndFallsBackToV2) {
  EXPECT_EQ(PidsCgroupPath(ParseCgroups(Recorded("old-kernel/cgroup_v1_container.txt"))),
            "/docker/0123abcd");
  EXPECT_EQ(PidsCgroupPath(ParseCgroups(Recorded("6.18/cgroup_v2_container.txt"))),
            "/wedge-docker-suite-1/0123abcd");
  EXPECT_EQ(PidsCgroupPath(ParseCgroups("8:pids:/v1\n0::/v2\n")), "/v1");
  EXPECT_EQ(PidsCgroupPath(ParseCgroups("4:memory:/m\n")), std::nullopt);
}

TEST(ReadComm, ReadsTheRecordedTree) {
  Result<std::string> comm = ReadComm(4100, kSeedTree);
  ASSERT_TRUE(comm.ok()) << comm.error().message();
  EXPECT_EQ(*comm, "wedge-init");
  Result<std::string> missing = ReadComm(999, kSeedTree);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("ENOENT"), std::string::npos);
}

TEST(ReadCmdline, ReadsTheRecordedInitAndTheZombiesEmptyArgv) {
  Result<std::vector<std::string>> init = ReadCmdline(4100, kSeedTree);
  ASSERT_TRUE(init.ok()) << init.error().message();
  ASSERT_EQ(init->size(), 6U);
  EXPECT_EQ(init->front(), "/usr/libexec/wedge/wedge-init");
  EXPECT_EQ(init->back(), "--mount-proc");
  Result<std::vector<std::string>> zombie = ReadCmdline(4117, kSeedTree);
  ASSERT_TRUE(zombie.ok()) << zombie.error().message();
  EXPECT_TRUE(zombie->empty());
}

TEST(ReadCgroups, ReadsTheRecordedTree) {
  Result<std::vector<CgroupMembership>> cgroups = ReadCgroups(4117, kSeedTree);
  ASSERT_TRUE(cgroups.ok()) << cgroups.error().message();
  EXPECT_EQ(PidsCgroupPath(*cgroups), "/wedge/seed001/sandbox");
}

TEST(ReadStat, ReadsOneTaskAndReadParentTheLeadersPpid) {
  Result<TaskStat> thread = ReadStat(4117, 4119, kSeedTree);
  ASSERT_TRUE(thread.ok()) << thread.error().message();
  EXPECT_EQ(thread->state, 'D');
  EXPECT_EQ(ReadParent(4117, kSeedTree).value(), 4100);
  EXPECT_EQ(ReadParent(4100, kSeedTree).value(), 4088);
  EXPECT_FALSE(ReadParent(999, kSeedTree).ok());
}

TEST(ReadParent, ReadsTheLiveParentOfThisProcess) {
  EXPECT_EQ(ReadParent(getpid()).value(), getppid());
  EXPECT_EQ(ReadComm(getpid()).value().empty(), false);
}

TEST(MeasurePipe, MeasuresCapacityAndUnreadBytesOfEitherEnd) {
  int ends[2];
  ASSERT_EQ(pipe2(ends, O_CLOEXEC), 0);
  UniqueFd read_end(ends[0]);
  UniqueFd write_end(ends[1]);
  ASSERT_EQ(fcntl(write_end.get(), F_SETPIPE_SZ, 4096), 4096);
  ASSERT_EQ(write(write_end.get(), "0123456789", 10), 10);
  for (int fd : {read_end.get(), write_end.get()}) {
    Result<PipeFill> fill = MeasurePipe(fd, "test pipe");
    ASSERT_TRUE(fill.ok()) << fill.error().message();
    EXPECT_EQ(fill->capacity_bytes, 4096);
    EXPECT_EQ(fill->unread_bytes, 10);
  }
}

TEST(MeasurePipe, FailsOnWhatIsNotAPipeNamingIt) {
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(null.valid());
  Result<PipeFill> fill = MeasurePipe(null.get(), "fd 3 of pid 1 (/dev/null)");
  ASSERT_FALSE(fill.ok());
  EXPECT_EQ(fill.error().message().rfind("F_GETPIPE_SZ on fd 3 of pid 1 (/dev/null): EBADF", 0), 0U)
      << fill.error().message();
}

TEST(MeasureHeldPipe, MeasuresAPipeOfALiveProcessThroughACopy) {
  if (syscall(SYS_pidfd_getfd, -1, 0, 0) < 0 && errno == ENOSYS) {
    GTEST_SKIP() << "pidfd_getfd needs Linux 5.6";
  }
  int ends[2];
  ASSERT_EQ(pipe2(ends, O_CLOEXEC), 0);
  UniqueFd read_end(ends[0]);
  UniqueFd write_end(ends[1]);
  ASSERT_EQ(write(write_end.get(), "abc", 3), 3);
  Result<HeldPipe> held = MeasureHeldPipe(getpid(), read_end.get());
  ASSERT_TRUE(held.ok()) << held.error().message();
  EXPECT_EQ(held->target.rfind("pipe:[", 0), 0U) << held->target;
  EXPECT_EQ(held->fill.unread_bytes, 3);
  EXPECT_GT(held->fill.capacity_bytes, 0);
  char left[4] = {};
  EXPECT_EQ(read(read_end.get(), left, sizeof left), 3);  // nothing was consumed

  Result<HeldPipe> closed = MeasureHeldPipe(getpid(), 999);
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().message().rfind("readlink /proc/", 0), 0U) << closed.error().message();
}

}  // namespace
}  // namespace wedge::probe
