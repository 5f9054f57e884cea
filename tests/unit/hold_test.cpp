// `wedge run --hold`'s marker, what a held run prints, and its release by a later wedge: against
// real child processes, which the release signals and waits for.
#include "wedge/runner/hold.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::runner {
namespace {

namespace fs = std::filesystem;

class HeldRunMarker : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = fs::temp_directory_path() / ("wedge-hold-test-" + std::to_string(::getpid()));
    fs::remove_all(state_dir_);
    ASSERT_TRUE(sys::MakePrivateDirectory(state_dir_).ok());
  }
  void TearDown() override {
    for (pid_t child : children_) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    fs::remove_all(state_dir_);
  }

  // A child that waits to be signalled, named `comm` as a held wedge is named "wedge".
  pid_t StartChild(const char* comm) {
    int ready[2];
    if (::pipe(ready) != 0) return -1;
    const pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_NAME, comm);
      ::close(ready[0]);
      (void)!::write(ready[1], "r", 1);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char byte = 0;
    (void)!::read(ready[0], &byte, 1);
    ::close(ready[0]);
    children_.push_back(child);
    return child;
  }

  HeldRun HeldBy(pid_t pid) {
    return HeldRun{pid, sys::ProcessStartTime(pid).value_or(0), "fuse-flush-docker-kill", 4321};
  }

  std::vector<std::string> Release(Status* status) {
    std::vector<std::string> said;
    *status = ReleaseHeldRun(state_dir_, std::chrono::seconds(10),
                             [&said](const std::string& line) { said.push_back(line); });
    return said;
  }

  fs::path state_dir_;
  std::vector<pid_t> children_;
};

TEST_F(HeldRunMarker, IsAbsentUntilWrittenAndReadsBackAsWritten) {
  Result<std::optional<HeldRun>> none = ReadHeldMarker(state_dir_);
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_FALSE(none->has_value());
  const HeldRun held{1234, 987654321, "fuse-flush-pidns-teardown", 1240};
  ASSERT_TRUE(WriteHeldMarker(state_dir_, held).ok());
  struct stat st {};
  ASSERT_EQ(::stat(HeldMarkerPath(state_dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  Result<std::optional<HeldRun>> read = ReadHeldMarker(state_dir_);
  ASSERT_TRUE(read.ok()) << read.error().message();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, held);
  RemoveHeldMarker(state_dir_, 999);  // another run's pid: left alone
  EXPECT_TRUE(fs::exists(HeldMarkerPath(state_dir_)));
  RemoveHeldMarker(state_dir_, 1234);
  EXPECT_FALSE(fs::exists(HeldMarkerPath(state_dir_)));
}

TEST_F(HeldRunMarker, RefusesAMarkerWedgeDidNotWrite) {
  const fs::path marker = HeldMarkerPath(state_dir_);
  ASSERT_TRUE(WriteHeldMarker(state_dir_, HeldRun{1234, 1, "x", 0}).ok());
  ::chmod(marker.c_str(), 0644);
  Result<std::optional<HeldRun>> readable = ReadHeldMarker(state_dir_);
  ASSERT_FALSE(readable.ok());
  EXPECT_NE(readable.error().message().find("mode 0644, not 0600"), std::string::npos)
      << readable.error().message();

  fs::remove(marker);
  fs::create_symlink("/etc/hostname", marker);
  EXPECT_FALSE(ReadHeldMarker(state_dir_).ok());

  fs::remove(marker);
  ASSERT_TRUE(sys::WriteFileAtomically(marker, "{\"pid\": \"1234\"}\n", 0600).ok());
  Result<std::optional<HeldRun>> malformed = ReadHeldMarker(state_dir_);
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.error().message().find("not a held-run marker"), std::string::npos)
      << malformed.error().message();

  ASSERT_TRUE(sys::WriteFileAtomically(
                  marker, R"({"pid": 1, "start_time": 1, "scenario": "x", "match_pid": 0})", 0600)
                  .ok());
  EXPECT_FALSE(ReadHeldMarker(state_dir_).ok()) << "init is never a held wedge";

  // An untrusted marker is no reason to signal anything: the release says why and stops.
  Status status;
  Release(&status);
  EXPECT_FALSE(status.ok());
}

TEST_F(HeldRunMarker, WithoutAMarkerTheReleaseDoesNothing) {
  Status status;
  EXPECT_TRUE(Release(&status).empty());
  EXPECT_TRUE(status.ok()) << status.error().message();
}

TEST_F(HeldRunMarker, TheReleaseSignalsTheHeldWedgeAndWaitsForItToEnd) {
  const pid_t held = StartChild("wedge");
  ASSERT_TRUE(WriteHeldMarker(state_dir_, HeldBy(held)).ok());
  Status status;
  const std::vector<std::string> said = Release(&status);
  ASSERT_TRUE(status.ok()) << status.error().message();
  ASSERT_EQ(said.size(), 2u) << ::testing::PrintToString(said);
  EXPECT_EQ(said[0], "releasing the run holding fuse-flush-docker-kill (wedge pid " +
                         std::to_string(held) + ")");
  EXPECT_EQ(said[1].rfind("released the run holding", 0), 0u) << said[1];
  int wait_status = 0;
  ASSERT_EQ(::waitpid(held, &wait_status, 0), held);
  children_.clear();
  EXPECT_TRUE(WIFSIGNALED(wait_status));
  EXPECT_EQ(WTERMSIG(wait_status), SIGTERM);
}

TEST_F(HeldRunMarker, AProcessThatIsNotTheHeldWedgeIsNeverSignalled) {
  // The pid of the marker now belongs to something else: another name, or the same name started
  // later. Neither is signalled; the stale marker goes.
  const pid_t other = StartChild("sleep");
  ASSERT_TRUE(WriteHeldMarker(state_dir_, HeldBy(other)).ok());
  const pid_t later = StartChild("wedge");
  HeldRun reused = HeldBy(later);
  reused.start_time -= 1;
  Status status;
  for (const HeldRun& stale : {HeldBy(other), reused}) {
    ASSERT_TRUE(WriteHeldMarker(state_dir_, stale).ok());
    const std::vector<std::string> said = Release(&status);
    ASSERT_TRUE(status.ok()) << status.error().message();
    ASSERT_EQ(said.size(), 1u);
    EXPECT_NE(said[0].find("removed the marker"), std::string::npos) << said[0];
    EXPECT_FALSE(fs::exists(HeldMarkerPath(state_dir_)));
  }
  for (pid_t pid : {other, later}) {
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << pid << " was signalled";
  }
}

TEST_F(HeldRunMarker, AHeldWedgeThatDoesNotEndInTimeIsAnError) {
  const pid_t held = StartChild("wedge");
  ASSERT_TRUE(WriteHeldMarker(state_dir_, HeldBy(held)).ok());
  // Stopped, it cannot act on the SIGTERM: a wedge stuck in its teardown does not end either.
  // Until the stop has happened a SIGTERM would be taken first (lower signals go first).
  ::kill(held, SIGSTOP);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(held), &info, WSTOPPED | WNOWAIT), 0);
  std::vector<std::string> said;
  Status status = ReleaseHeldRun(state_dir_, std::chrono::milliseconds(200),
                                 [&said](const std::string& line) { said.push_back(line); });
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("did not finish releasing within 200 ms of SIGTERM"),
            std::string::npos)
      << status.error().message();
  ::kill(held, SIGCONT);
}

TEST(DescribeHold, NamesEveryBoundRoleWithItsProcPathsTheMatchCommandAndTheRelease) {
  report::RunResult result;
  result.verdict = scenario::Verdict::kReproduced;
  result.decisive = report::DecisiveSignature::kBug;
  signature::ObservedTask init;
  init.process = "docker-init";
  init.pid = 12429;
  init.tid = 12429;
  init.comm = "docker-init";
  init.state = 'S';
  signature::ObservedTask stuck;
  stuck.process = "daemon";
  stuck.pid = 12460;
  stuck.tid = 12461;
  stuck.comm = "fuse-holder";
  stuck.state = 'D';
  result.bug_match.bound = {{"pidns-init", init}, {"stuck-thread", stuck}};
  const std::vector<std::string> lines =
      DescribeHold(result, 12407, "unix:///run/wedge/runs/run-1-1/docker.sock");
  ASSERT_EQ(lines.size(), 6u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "held: the reproduced state stays live for inspection");
  EXPECT_EQ(lines[1],
            "  pidns-init: docker-init pid 12429 (docker-init, S), read "
            "/proc/12429/task/12429/{stack,status,wchan,syscall}");
  EXPECT_EQ(lines[2],
            "  stuck-thread: daemon pid 12460 tid 12461 (fuse-holder, D), read "
            "/proc/12460/task/12461/{stack,status,wchan,syscall}");
  EXPECT_EQ(lines[3], "  name it: wedge match 12407");
  EXPECT_EQ(lines[4],
            "  its private docker: docker -H unix:///run/wedge/runs/run-1-1/docker.sock ps");
  EXPECT_EQ(lines[5].rfind("  release it: wedge cleanup", 0), 0u) << lines[5];
  EXPECT_EQ(DescribeHold(result, 0, "").size(), 4u) << "no match command, no stack";
}

}  // namespace
}  // namespace wedge::runner
