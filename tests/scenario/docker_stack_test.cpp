// Tests of wedge's private docker stack: the real containerd, dockerd and runc of this host,
// started in a sandbox of their own and checked, after they stop or are abandoned, against the
// host as it was before. They run as root.
#include "wedge/stack/docker_stack.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scenario_test_support.h"
#include "wedge/runner/runner.h"
#include "wedge/stack/release_root.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const fs::path kFixtures = fs::path(WEDGE_BINARY).parent_path();

// Paths a stock dockerd or containerd would create on the host; the private stack must not.
const std::vector<fs::path> kStockPaths = {
    "/var/run/docker.sock", "/run/docker",         "/run/containerd", "/etc/docker/key.json",
    "/var/lib/docker",      "/var/lib/containerd", "/opt/containerd", "/etc/cni"};

// Whether each stock path exists, and its change time when it does.
std::map<fs::path, std::string> StockPathsNow() {
  std::map<fs::path, std::string> now;
  for (const auto& path : kStockPaths) {
    struct stat st {};
    now[path] = ::lstat(path.c_str(), &st) == 0 ? "ctime " + std::to_string(st.st_ctim.tv_sec) +
                                                      "." + std::to_string(st.st_ctim.tv_nsec)
                                                : "absent";
  }
  return now;
}

std::string MountsNow() { return sys::ReadFile("/proc/self/mounts").value(); }

std::vector<std::string> StackCgroups(const std::string& run_id) {
  std::vector<std::string> found;
  for (const auto& point : sys::CgroupMountPoints()) {
    for (const fs::path& directory :
         {point / ("wedge-docker-" + run_id), point / "wedge" / run_id}) {
      if (fs::exists(directory)) found.push_back(directory.string());
    }
  }
  return found;
}

std::string NewRunId() {
  static std::atomic<int> counter{0};
  return "docker-stack-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

class PrivateDockerStack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the private docker stack runs as root";
    for (const auto& [name, path] : stack::Binaries::Defaults().paths) {
      if (::access(path.c_str(), X_OK) != 0) GTEST_SKIP() << name << " is not installed";
    }
    state_dir_ = sys::DefaultStateDirectory();
    // Other wedge runs wait while this test holds the run lock, so the host stays comparable.
    Result<sys::RunLock> lock = sys::RunLock::Acquire(state_dir_, [](const std::string&) {});
    ASSERT_TRUE(lock.ok()) << lock.error().message();
    lock_ = std::make_unique<sys::RunLock>(std::move(*lock));
    before_ = testing::HostNow();
    stock_before_ = StockPathsNow();
    mounts_before_ = MountsNow();
    run_id_ = NewRunId();
    run_dir_ = state_dir_ / "runs" / run_id_;
  }

  stack::StackOptions Options() const {
    stack::StackOptions options;
    options.binaries = stack::Binaries::Defaults();
    options.run_directory = run_dir_;
    options.fixtures_dir = kFixtures;
    return options;
  }

  // A journal for this test's run, with its run directory journaled and created.
  std::unique_ptr<sys::Journal> NewJournal() const {
    Result<std::unique_ptr<sys::Journal>> journal = sys::Journal::Create(state_dir_, run_id_);
    if (!journal.ok()) return nullptr;
    if (!(*journal)->Record(sys::DirectoryChange{run_dir_}).ok()) return nullptr;
    fs::create_directories(run_dir_);
    return std::move(*journal);
  }

  void ExpectNothingLeft() {
    EXPECT_TRUE(testing::RunProcesses(run_id_).empty())
        << "processes left: " << ::testing::PrintToString(testing::RunProcesses(run_id_));
    EXPECT_TRUE(StackCgroups(run_id_).empty())
        << "cgroups left: " << ::testing::PrintToString(StackCgroups(run_id_));
    EXPECT_EQ(MountsNow(), mounts_before_);
    EXPECT_EQ(StockPathsNow(), stock_before_);
    EXPECT_FALSE(fs::exists(run_dir_ / "stack"));
    // The kernel finishes tearing down dead namespaces and cgroups in kworkers, briefly in D
    // state: the host is back at rest within moments, not necessarily at once.
    testing::ExpectHostUnchanged(before_, std::chrono::seconds(2));
  }

  fs::path state_dir_;
  std::unique_ptr<sys::RunLock> lock_;
  testing::HostSnapshot before_;
  std::map<fs::path, std::string> stock_before_;
  std::string mounts_before_;
  std::string run_id_;
  fs::path run_dir_;
};

TEST_F(PrivateDockerStack, RunsABusyboxContainerAndStopsLeavingTheHostClean) {
  std::unique_ptr<sys::Journal> journal = NewJournal();
  ASSERT_NE(journal, nullptr);
  {
    Result<std::unique_ptr<stack::DockerStack>> started =
        stack::DockerStack::Start(*journal, Options());
    ASSERT_TRUE(started.ok()) << started.error().message();
    stack::DockerStack& docker = **started;
    EXPECT_GT(docker.startup_ms(), 0);
    EXPECT_GT(docker.dockerd_pid(), 0);
    EXPECT_GT(docker.containerd_pid(), 0);

    Result<std::string> image = docker.EnsureBusyboxImage();
    ASSERT_TRUE(image.ok()) << image.error().message();
    EXPECT_EQ(image->rfind("wedge/busybox:", 0), 0u) << *image;
    auto inspect = docker.Docker({"image", "inspect", "--format", "{{.Id}}", *image}, seconds(30));
    ASSERT_TRUE(inspect.ok()) << inspect.error().message();
    // The second call finds the image: same reference, same image, nothing imported again.
    Result<std::string> again = docker.EnsureBusyboxImage();
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(*again, *image);
    auto reinspect =
        docker.Docker({"image", "inspect", "--format", "{{.Id}}", *image}, seconds(30));
    ASSERT_TRUE(reinspect.ok()) << reinspect.error().message();
    EXPECT_EQ(reinspect->second, inspect->second);

    auto hello =
        docker.Docker({"run", "--rm", "--network", "none", *image, "echo", "hello"}, seconds(60));
    ASSERT_TRUE(hello.ok()) << hello.error().message();
    EXPECT_EQ(hello->first, 0) << hello->second << docker.DockerdLog();
    EXPECT_EQ(hello->second, "hello\n");
    auto images =
        docker.Docker({"image", "ls", "--format", "{{.Repository}}:{{.Tag}}"}, seconds(30));
    ASSERT_TRUE(images.ok()) << images.error().message();
    EXPECT_NE(images->second.find(*image), std::string::npos) << images->second;

    // A container still running when the stack stops, so Stop has something to remove.
    auto sleeper = docker.Docker({"run", "--detach", "--network", "none", *image, "sleep", "1000"},
                                 seconds(60));
    ASSERT_TRUE(sleeper.ok()) << sleeper.error().message();
    EXPECT_EQ(sleeper->first, 0) << sleeper->second;
    // The daemons' mounts (overlay rootfs, network namespaces) stay in the stack's namespace.
    EXPECT_EQ(MountsNow(), mounts_before_);
    EXPECT_EQ(StockPathsNow(), stock_before_);
    EXPECT_FALSE(StackCgroups(run_id_).empty());

    for (const auto& [name, version] : Options().binaries.Versions()) {
      EXPECT_EQ(version.find("unavailable"), std::string::npos) << name << ": " << version;
    }
    Status stopped = docker.Stop();
    EXPECT_TRUE(stopped.ok()) << stopped.error().message();
    EXPECT_NE(docker.DockerdLog().find("API listen on"), std::string::npos) << docker.DockerdLog();
  }
  // What is left in the journal is the test's own run directory, nothing of the stack's.
  std::vector<sys::JournalEntry> pending = journal->Pending();
  ASSERT_EQ(pending.size(), 1u) << ::testing::PrintToString(journal->undo_log());
  EXPECT_TRUE(std::holds_alternative<sys::DirectoryChange>(*pending[0].change));
  ASSERT_TRUE(journal->UndoAll().ok());
  journal.reset();
  ExpectNothingLeft();
}

// `--stack bookworm --with runc=bullseye`: bookworm's daemons, in bookworm's root, run bullseye's
// runc, bound over bookworm's own; dockerd reports the runc it runs (`runc --version`'s commit).
TEST_F(PrivateDockerStack, AComponentFromAnotherReleaseIsTheOneTheReleasesDaemonsRun) {
  std::unique_ptr<sys::Journal> journal = NewJournal();
  ASSERT_NE(journal, nullptr);
  const fs::path cache = sys::DefaultStackCacheDirectory();
  Result<stack::ReleaseRoot> bookworm = stack::EnsureReleaseRoot("bookworm", *journal, cache, {});
  ASSERT_TRUE(bookworm.ok()) << bookworm.error().message();
  Result<stack::ReleaseRoot> bullseye = stack::EnsureReleaseRoot("bullseye", *journal, cache, {});
  ASSERT_TRUE(bullseye.ok()) << bullseye.error().message();
  stack::StackOptions options = Options();
  options.binaries = bookworm->StackBinaries();
  ASSERT_TRUE(options.binaries.UseComponent("runc", "bullseye", bullseye->root).ok());
  ASSERT_TRUE(options.binaries.CheckComponentsRun().ok());
  EXPECT_EQ(options.binaries.Label(), "bookworm+runc=bullseye");
  {
    Result<std::unique_ptr<stack::DockerStack>> started =
        stack::DockerStack::Start(*journal, options);
    ASSERT_TRUE(started.ok()) << started.error().message();
    stack::DockerStack& docker = **started;
    auto server = docker.Docker({"version", "--format", "{{.Server.Version}}"}, seconds(30));
    ASSERT_TRUE(server.ok()) << server.error().message();
    EXPECT_EQ(server->second, "20.10.24+dfsg1\n") << "bookworm's dockerd";
    auto runc = docker.Docker({"info", "--format", "{{.RuncCommit.ID}}"}, seconds(30));
    ASSERT_TRUE(runc.ok()) << runc.error().message();
    EXPECT_EQ(runc->second.rfind("1.0.0~rc93+ds1-", 0), 0u) << "bullseye's runc: " << runc->second;
    Result<std::string> image = docker.EnsureBusyboxImage();
    ASSERT_TRUE(image.ok()) << image.error().message();
    auto hello =
        docker.Docker({"run", "--rm", "--network", "none", *image, "echo", "hello"}, seconds(60));
    ASSERT_TRUE(hello.ok()) << hello.error().message();
    EXPECT_EQ(hello->first, 0) << hello->second << docker.DockerdLog();
    EXPECT_EQ(hello->second, "hello\n");
    Status stopped = docker.Stop();
    EXPECT_TRUE(stopped.ok()) << stopped.error().message();
  }
  ASSERT_TRUE(journal->UndoAll().ok());
  journal.reset();
  ExpectNothingLeft();
}

TEST_F(PrivateDockerStack, CleanupUndoesAStackWhoseOwnerDiedWithoutStoppingIt) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The owner: starts a stack with a running container and dies without any teardown.
    ::close(ready[0]);
    std::unique_ptr<sys::Journal> journal = NewJournal();
    if (journal == nullptr) ::_exit(2);
    auto started = stack::DockerStack::Start(*journal, Options());
    if (!started.ok()) ::_exit(3);
    auto image = (*started)->EnsureBusyboxImage();
    if (!image.ok()) ::_exit(4);
    auto sleeper = (*started)->Docker(
        {"run", "--detach", "--network", "none", *image, "sleep", "1000"}, seconds(60));
    if (!sleeper.ok() || sleeper->first != 0) ::_exit(5);
    (void)!::write(ready[1], "1", 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  pollfd pfd{ready[0], POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 120000), 1);
  char byte = 0;
  EXPECT_EQ(::read(ready[0], &byte, 1), 1) << "the owner failed before abandoning its stack";
  ::close(ready[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // The owner's journal survives it, and so do the cgroups only the journal knows about.
  EXPECT_TRUE(fs::exists(state_dir_ / "journal" / (run_id_ + ".jsonl")));
  EXPECT_FALSE(StackCgroups(run_id_).empty());

  sys::JournalRecovery cleanup = runner::Cleanup(state_dir_);
  EXPECT_TRUE(cleanup.failed.empty()) << ::testing::PrintToString(cleanup.failed);
  EXPECT_TRUE(cleanup.skipped.empty()) << ::testing::PrintToString(cleanup.skipped);
  const std::string undone = ::testing::PrintToString(cleanup.undone);
  EXPECT_NE(undone.find("removed cgroup tree"), std::string::npos) << undone;
  EXPECT_FALSE(fs::exists(state_dir_ / "journal" / (run_id_ + ".jsonl"))) << undone;
  EXPECT_FALSE(fs::exists(run_dir_)) << undone;
  ExpectNothingLeft();
}

TEST_F(PrivateDockerStack, AFailedStartNamesTheLogLineAndLeavesTheHostClean) {
  // A dockerd that fails the way a real one does: a fatal log line, then exit.
  const fs::path fake = fs::temp_directory_path() / (run_id_ + "-dockerd");
  {
    std::ofstream script(fake);
    script << "#!/bin/sh\necho 'time=\"2026-01-01T00:00:00Z\" level=info msg=\"starting up\"'\n"
           << "echo 'time=\"2026-01-01T00:00:01Z\" level=fatal msg=\"wedge test: no such "
              "thing\"'\necho 'the end' >&2\nexit 1\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  std::unique_ptr<sys::Journal> journal = NewJournal();
  ASSERT_NE(journal, nullptr);
  stack::StackOptions options = Options();
  ASSERT_TRUE(options.binaries.Override("dockerd=" + fake.string()).ok());
  Result<std::unique_ptr<stack::DockerStack>> started =
      stack::DockerStack::Start(*journal, options);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message().find("level=fatal msg=\"wedge test: no such thing\""),
            std::string::npos)
      << started.error().message();
  // Only the logs are left, for the error to point at; the run directory's owner removes them.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(run_dir_ / "stack")) {
    left.push_back(entry.path().filename());
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"containerd.log", "dockerd.log"}));
  EXPECT_NE(started.error().message().find((run_dir_ / "stack" / "dockerd.log").string()),
            std::string::npos);
  std::vector<sys::JournalEntry> pending = journal->Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<sys::DirectoryChange>(*pending[0].change));
  ASSERT_TRUE(journal->UndoAll().ok());
  journal.reset();
  fs::remove(fake);
  ExpectNothingLeft();
}

TEST(CgroupTreeUndo, RefusesATreeThatIsNotWedges) {
  std::vector<std::string> log;
  for (const std::string name : {"docker", "system.slice", "wedge-", "wedge-x/../../docker", ""}) {
    Status undone = sys::UndoEntry({1, sys::JournalChange{sys::CgroupTreeChange{name}}}, log);
    EXPECT_FALSE(undone.ok()) << name;
  }
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace wedge
