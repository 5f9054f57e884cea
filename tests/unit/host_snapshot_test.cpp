// Tests of the tests' own host check (tests/support/host_snapshot.h): its parsers on recorded
// /proc text, the whole capture on a recorded /proc tree of the FUSE deadlock, and live child
// processes of this test that hold /dev/fuse or are named as the stack's programs.
#include "host_snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

#include "wedge/scenario/scenario.h"

namespace wedge::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kProcData = fs::path(WEDGE_TEST_DATA_DIR) / "proc";

std::string ReadData(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> LinesNaming(const std::vector<std::string>& lines,
                                     const std::string& text) {
  std::vector<std::string> found;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(found),
               [&](const std::string& line) { return line.find(text) != std::string::npos; });
  return found;
}

// A forked child of this test that runs `setup` (in a child, so it may exit its own main thread
// or rename itself), says it is ready, and lives until Release(). `setup` returns false to make
// the child exit at once with status 1.
class Child {
 public:
  explicit Child(const std::function<bool(int ready_fd, int release_fd)>& setup) {
    int ready[2], release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      if (!setup(ready[1], release[0])) ::_exit(1);
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    release_fd_ = release[1];
    char byte = 0;
    ready_ = ::read(ready[0], &byte, 1) == 1;
    ::close(ready[0]);
  }
  ~Child() {
    Release();
    Reap();
  }

  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  // Lets the child exit; it stays a zombie of ours until Reap().
  void Release() {
    if (release_fd_ >= 0) ::close(release_fd_);
    release_fd_ = -1;
  }
  // Waits for the child to have exited, without reaping it.
  void WaitExitedNotReaped() {
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  }
  void Reap() {
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // In the child: tells the test it is ready, then blocks until the test releases it.
  static void ReadyThenWait(int ready_fd, int release_fd) {
    char byte = 1;
    (void)::write(ready_fd, &byte, 1);
    while (::read(release_fd, &byte, 1) < 0 && errno == EINTR) {
    }
  }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool ready_ = false;
};

bool FuseDeviceOpenable() {
  const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

TEST(HostSnapshotParse, ATaskInDStateIsRecognisedFromItsStatLine) {
  // The FUSE daemon's holding thread of the seed 001 recording, in D in fuse_flush.
  std::optional<TaskStat> stat =
      ParseTaskStat(ReadData(kProcData / "seed001-6.18/4117/task/4119/stat"));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->tid, 4119);
  EXPECT_EQ(stat->comm, "wedge-fuse");
  EXPECT_EQ(stat->state, 'D');
  EXPECT_EQ(stat->ppid, 4100);
  EXPECT_FALSE(IsKernelThread(*stat));
}

TEST(HostSnapshotParse, ACommHoldingParenthesesEndsAtTheLastOne) {
  std::optional<TaskStat> stat = ParseTaskStat(ReadData(kProcData / "6.18/stat_paren_comm.txt"));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->comm, "a) b");
  EXPECT_EQ(stat->state, 'S');
}

TEST(HostSnapshotParse, AKernelThreadIsToldApartByItsFlags) {
  // A kworker's stat read on 6.18, its state changed from I to D.
  std::optional<TaskStat> stat = ParseTaskStat(
      "10 (kworker/0:0H-events_highpri) D 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 0 -20 1 0 26 0 0 "
      "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->state, 'D');
  EXPECT_TRUE(IsKernelThread(*stat));
}

TEST(HostSnapshotParse, MalformedStatTextIsRefused) {
  EXPECT_FALSE(ParseTaskStat("").has_value());
  EXPECT_FALSE(ParseTaskStat("12 (sleep").has_value());
  EXPECT_FALSE(ParseTaskStat("12 (sleep) S").has_value());
}

TEST(HostSnapshotParse, MountinfoGivesEveryFuseEntryAndWhatIsUnderTheStateDirectory) {
  // Lines of a 6.18 mountinfo, with the mounts a FUSE scenario's sandbox makes added in the same
  // format: wedge-fuse's connection (fsname wedge-fuse, subtype wedge), fusectl, and a run
  // directory's tmpfs whose name holds a space (\040).
  constexpr const char* kMountinfo =
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "612 598 0:40 / /run/wedge/runs/fuse-1/mnt rw,nosuid,nodev,relatime shared:7 - fuse.wedge "
      "wedge-fuse rw,user_id=0,group_id=0,default_permissions,allow_other\n"
      "614 598 0:53 / /sys/fs/fuse/connections rw,relatime - fusectl fusectl rw\n"
      "615 598 8:1 / /media/usb rw,relatime - fuseblk /dev/sdb1 rw\n"
      "616 598 0:54 / /run/wedge/runs/a\\040b rw,relatime - tmpfs tmpfs rw\n"
      "617 598 0:55 / /run/wedgeling rw,relatime - tmpfs tmpfs rw\n";
  std::vector<MountEntry> mounts = ParseMountInfo(kMountinfo);
  ASSERT_EQ(mounts.size(), 8u);
  std::vector<std::string> fuse, under;
  for (const MountEntry& mount : mounts) {
    if (IsFuseType(mount.fstype)) fuse.push_back(mount.mount_point + " " + mount.fstype);
    if (IsUnder(mount.mount_point, "/run/wedge/")) under.push_back(mount.mount_point);
  }
  EXPECT_EQ(fuse,
            (std::vector<std::string>{"/run/wedge/runs/fuse-1/mnt fuse.wedge",
                                      "/sys/fs/fuse/connections fusectl", "/media/usb fuseblk"}));
  EXPECT_EQ(under, (std::vector<std::string>{"/run/wedge/runs/fuse-1/mnt", "/run/wedge/runs/a b"}));
  EXPECT_EQ(mounts[3].source, "wedge-fuse");
  EXPECT_FALSE(IsFuseType("fuselike"));
  EXPECT_FALSE(IsFuseType("ext4"));
}

TEST(HostSnapshotParse, TheStacksAndWedgesProgramsAreKnownByTheirCutComm) {
  for (const char* comm : {"dockerd", "containerd", "containerd-shim", "runc", "runc:[2:INIT]",
                           "strace", "qemu-system-x86", "wedge-fuse", "wedge-init", "wedge"}) {
    EXPECT_TRUE(IsStackOrWedgeProgram(comm)) << comm;
  }
  for (const char* comm : {"wedge_scenario_", "wedge_soak", "wedge_unit_test", "dockerd-x", "sh",
                           "containerd-x", "runcx"}) {
    EXPECT_FALSE(IsStackOrWedgeProgram(comm)) << comm;
  }
}

TEST(HostSnapshotParse, EverySysctlAScenarioMaySetIsWatched) {
  for (const std::string& name : scenario::AllowedSysctls()) {
    EXPECT_NE(std::find(WatchedSysctls().begin(), WatchedSysctls().end(), name),
              WatchedSysctls().end())
        << name << " may be set by a scenario but the host check does not read it";
  }
}

TEST(HostSnapshotCapture, TheRecordedDeadlockShowsItsDStateThreadAndItsPrograms) {
  // seed 001 on 6.18: the pid-namespace init 4100, the FUSE daemon 4117 a zombie leader whose
  // thread 4119 is in D. The zombie leader counts: its thread lives.
  const fs::path state_dir = fs::temp_directory_path() / "wedge-host-snapshot-test-none";
  HostSnapshot snapshot = CaptureHostSnapshot(state_dir, kProcData / "seed001-6.18");
  EXPECT_EQ(snapshot.d_state_tasks, (std::set<std::string>{"4119(wedge-fuse)"}));
  EXPECT_EQ(snapshot.processes, (std::set<std::string>{"4100(wedge-init)", "4117(wedge-fuse)"}));
  std::vector<std::string> lines = Diff(HostSnapshot{}, snapshot);
  EXPECT_EQ(lines,
            (std::vector<std::string>{"D-state task 4119(wedge-fuse)", "process 4100(wedge-init)",
                                      "process 4117(wedge-fuse)"}));
}

TEST(HostSnapshotCapture, ThisHostsSysctlsAndMountNamespacesAreRead) {
  HostSnapshot snapshot = CaptureHostSnapshot();
  EXPECT_GE(snapshot.mount_namespaces, 1);
  for (const std::string& name : WatchedSysctls()) {
    std::string file = "/proc/sys/" + name;
    std::replace(file.begin() + 10, file.end(), '.', '/');
    if (fs::exists(file)) {
      EXPECT_TRUE(snapshot.sysctls.contains(name)) << name;
    }
  }
  EXPECT_TRUE(Diff(snapshot, snapshot).empty());
}

TEST(HostSnapshotCapture, JournalsAndRunDirectoriesOfTheStateDirectoryAreListed) {
  const fs::path state_dir =
      fs::temp_directory_path() / ("wedge-host-snapshot-test-" + std::to_string(::getpid()));
  fs::remove_all(state_dir);
  fs::create_directories(state_dir / "journal");
  fs::create_directories(state_dir / "runs");
  const HostSnapshot before = CaptureHostSnapshot(state_dir);
  std::ofstream(state_dir / "journal" / "run-1.jsonl") << "{}\n";
  fs::create_directories(state_dir / "runs" / "run-1");
  std::vector<std::string> lines = Diff(before, CaptureHostSnapshot(state_dir));
  EXPECT_EQ(LinesNaming(lines, "run-1"),
            (std::vector<std::string>{"journal run-1.jsonl",
                                      "run directory " + (state_dir / "runs" / "run-1").string()}));
  fs::remove_all(state_dir);
}

TEST(HostSnapshotCapture, AChildHoldingDevFuseIsFoundAndTheDiffNamesIt) {
  if (!FuseDeviceOpenable()) GTEST_SKIP() << "/dev/fuse cannot be opened here";
  const HostSnapshot before = CaptureHostSnapshot();
  Child child([](int ready, int release) {
    const int fuse = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    const int again = ::dup(fuse);
    if (fuse < 0 || again < 0) return false;
    Child::ReadyThenWait(ready, release);
    return true;
  });
  ASSERT_TRUE(child.ready());
  const std::string holder = std::to_string(child.pid()) + "(";
  const HostSnapshot during = CaptureHostSnapshot();
  std::vector<std::string> lines = LinesNaming(Diff(before, during), "held by " + holder);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(Diff(before, during));
  EXPECT_NE(lines[0].find(": 2 descriptor(s), 0 before"), std::string::npos) << lines[0];

  child.Release();
  child.Reap();
  EXPECT_TRUE(LinesNaming(Diff(before, CaptureHostSnapshot()), holder).empty());
}

TEST(HostSnapshotCapture, AThreadWithItsOwnFdTableUnderAZombieLeaderIsFoundHoldingDevFuse) {
  // The FUSE daemon of the deadlock: its leader has exited, and the thread left holds /dev/fuse
  // in a table of its own (unshare(CLONE_FILES)). /proc/PID/fd shows nothing of it.
  if (!FuseDeviceOpenable()) GTEST_SKIP() << "/dev/fuse cannot be opened here";
  const HostSnapshot before = CaptureHostSnapshot();
  Child child([](int ready, int release) {
    ::prctl(PR_SET_NAME, "wedge-fuse");
    std::thread holder([ready, release] {
      if (::unshare(CLONE_FILES) != 0 || ::open("/dev/fuse", O_RDWR | O_CLOEXEC) < 0) ::_exit(1);
      Child::ReadyThenWait(ready, release);
      ::_exit(0);
    });
    holder.detach();
    ::syscall(SYS_exit, 0);  // the leader alone
    return true;
  });
  ASSERT_TRUE(child.ready());
  const std::string pid = std::to_string(child.pid());
  // The leader is a zombie by now or soon: wait for it, so the test is of that state.
  auto leader_state = [&pid] {
    std::optional<TaskStat> stat =
        ParseTaskStat(ReadData("/proc/" + pid + "/task/" + pid + "/stat"));
    return stat ? stat->state : '?';
  };
  for (int i = 0; i < 500 && leader_state() != 'Z'; ++i) ::usleep(2000);
  ASSERT_EQ(leader_state(), 'Z');
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty("/proc/" + pid + "/fd", ec) || ec);

  std::vector<std::string> lines = Diff(before, CaptureHostSnapshot());
  EXPECT_EQ(LinesNaming(lines, pid + "("),
            (std::vector<std::string>{
                "/dev/fuse held by " + pid + "(wedge-fuse): 1 descriptor(s), 0 before",
                "process " + pid + "(wedge-fuse)"}));
}

TEST(HostSnapshotCapture, AStackProgramCountsUntilReapedWhenItIsOurChild) {
  const HostSnapshot before = CaptureHostSnapshot();
  Child child([](int ready, int release) {
    ::prctl(PR_SET_NAME, "dockerd");
    Child::ReadyThenWait(ready, release);
    return true;
  });
  ASSERT_TRUE(child.ready());
  const std::string line = "process " + std::to_string(child.pid()) + "(dockerd)";
  const std::string pid = std::to_string(child.pid()) + "(";
  EXPECT_EQ(LinesNaming(Diff(before, CaptureHostSnapshot()), pid), std::vector<std::string>{line});
  // Exited but not reaped: a zombie of ours is still ours.
  child.Release();
  child.WaitExitedNotReaped();
  EXPECT_EQ(LinesNaming(Diff(before, CaptureHostSnapshot()), pid), std::vector<std::string>{line});
  child.Reap();
  EXPECT_TRUE(LinesNaming(Diff(before, CaptureHostSnapshot()), pid).empty());
}

TEST(HostSnapshotCapture, AWedgeThisProcessStartedIsItsOwnButWhatThatStartsCounts) {
  const HostSnapshot before = CaptureHostSnapshot();
  Child wedge([](int ready, int release) {
    ::prctl(PR_SET_NAME, "wedge");
    Child helper([](int helper_ready, int helper_release) {
      ::prctl(PR_SET_NAME, "wedge-init");
      Child::ReadyThenWait(helper_ready, helper_release);
      return true;
    });
    if (!helper.ready()) return false;
    Child::ReadyThenWait(ready, release);
    return true;
  });
  ASSERT_TRUE(wedge.ready());
  std::vector<std::string> lines = Diff(before, CaptureHostSnapshot());
  EXPECT_TRUE(LinesNaming(lines, std::to_string(wedge.pid()) + "(").empty())
      << ::testing::PrintToString(lines);
  EXPECT_EQ(LinesNaming(lines, "(wedge-init)").size(), 1u) << ::testing::PrintToString(lines);
}

TEST(HostSnapshotSettle, ADifferenceThatGoesAwayIsNotReportedOneThatStaysIs) {
  const HostSnapshot before = CaptureHostSnapshot();
  // A "wedge-init" that lives 100 ms and is reaped at once.
  const pid_t brief = ::fork();
  if (brief == 0) {
    ::prctl(PR_SET_NAME, "wedge-init");
    ::usleep(100000);
    ::_exit(0);
  }
  std::thread reaper([brief] { ::waitpid(brief, nullptr, 0); });
  ::usleep(20000);
  const std::string brief_pid = std::to_string(brief) + "(";
  EXPECT_FALSE(LinesNaming(Diff(before, CaptureHostSnapshot()), brief_pid).empty());
  EXPECT_TRUE(LinesNaming(SettledDiff(before, StateDirectory(), std::chrono::seconds(3)), brief_pid)
                  .empty());
  reaper.join();

  Child stays([](int ready, int release) {
    ::prctl(PR_SET_NAME, "strace");
    Child::ReadyThenWait(ready, release);
    return true;
  });
  ASSERT_TRUE(stays.ready());
  EXPECT_EQ(LinesNaming(SettledDiff(before, StateDirectory(), std::chrono::milliseconds(100)),
                        std::to_string(stays.pid()) + "("),
            std::vector<std::string>{"process " + std::to_string(stays.pid()) + "(strace)"});
}

TEST(HostSnapshotDiff, NamesNewValuesAndLargerHoldingsButNotWhatWentAway) {
  HostSnapshot before;
  before.sysctls = {{"fs.pipe-user-pages-soft", "16384"}, {"fs.pipe-max-size", "1048576"}};
  before.fuse_device_holders = {{"10(wedge-fuse)", 1}, {"11(sshfs)", 2}};
  before.processes = {"12(dockerd)"};
  before.wedge_cgroups = {"/sys/fs/cgroup/pids/wedge/old"};
  HostSnapshot after;
  after.sysctls = {{"fs.pipe-user-pages-soft", "1"}, {"fs.pipe-max-size", "1048576"}};
  after.fuse_device_holders = {{"10(wedge-fuse)", 2}, {"11(sshfs)", 1}};
  after.wedge_cgroups = {"/sys/fs/cgroup/pids/wedge-docker-r"};
  after.fuse_mounts = {"/run/wedge/runs/r/mnt (fuse.wedge) in mnt:[4026532001]"};
  after.state_dir_mounts = {"/run/wedge/runs/r/mnt (fuse.wedge) in mnt:[4026532001]"};
  EXPECT_EQ(Diff(before, after),
            (std::vector<std::string>{
                "/dev/fuse held by 10(wedge-fuse): 2 descriptor(s), 1 before",
                "FUSE mount /run/wedge/runs/r/mnt (fuse.wedge) in mnt:[4026532001]",
                "cgroup /sys/fs/cgroup/pids/wedge-docker-r",
                "sysctl fs.pipe-user-pages-soft is 1, was 16384",
                "mount under the state directory /run/wedge/runs/r/mnt (fuse.wedge) in "
                "mnt:[4026532001]",
            }));
  after.sysctls.erase("fs.pipe-max-size");
  EXPECT_EQ(LinesNaming(Diff(before, after), "pipe-max-size"),
            std::vector<std::string>{"sysctl fs.pipe-max-size no longer readable"});
}

}  // namespace
}  // namespace wedge::testing
