// Tests of ChildProcess on ordinary unprivileged programs (true, false, sh, ls, sleep), with a
// journal in a private state directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "wedge/sys/child_process.h"
#include "wedge/sys/files.h"

namespace wedge::sys {
namespace {

namespace fs = std::filesystem;

// The process change an entry records, or null for another kind or a malformed entry.
const ProcessChange* ProcessOf(const JournalEntry& entry) {
  return entry.change.ok() ? std::get_if<ProcessChange>(&*entry.change) : nullptr;
}

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("wedge-child-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    Result<std::unique_ptr<Journal>> journal = Journal::Create(root_, "child-test");
    ASSERT_TRUE(journal.ok()) << journal.error().message();
    journal_ = std::move(*journal);
  }
  void TearDown() override {
    journal_.reset();
    fs::remove_all(root_);
  }

  // The spec of `argv` with its stdout (and stderr) on a pipe to the test.
  static ChildSpec Capturing(std::vector<std::string> argv) {
    ChildSpec spec;
    spec.role = "test";
    spec.argv = std::move(argv);
    spec.stdout_stream = ChildStream::Pipe();
    spec.stderr_stream = ChildStream::SameAsStdout();
    return spec;
  }

  // Everything the child wrote until it closed its output, then its wait status.
  static std::pair<std::string, int> Output(ChildProcess& child) {
    UniqueFd pipe = child.TakePipe(STDOUT_FILENO);
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe.get(), buffer, sizeof buffer)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      text.append(buffer, static_cast<size_t>(n));
    }
    return {text, child.Wait()};
  }

  std::vector<JournalEntry> PendingProcesses() const {
    std::vector<JournalEntry> processes;
    for (const JournalEntry& entry : journal_->Pending()) {
      if (ProcessOf(entry) != nullptr) processes.push_back(entry);
    }
    return processes;
  }

  fs::path root_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(ChildProcessTest, StartsTrueJournaledUntilReaped) {
  ChildSpec spec;
  spec.role = "true";
  spec.argv = {"/bin/true"};
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  const std::vector<JournalEntry> pending = PendingProcesses();
  ASSERT_EQ(pending.size(), 1U);
  EXPECT_EQ(pending[0].seq, child->journal_seq());
  const ProcessChange& process = *ProcessOf(pending[0]);
  EXPECT_EQ(process.pid, child->pid());
  EXPECT_EQ(process.role, "true");
  EXPECT_GT(process.start_time, 0U);
  const int status = child->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, ReportsTheExitStatusOfFalse) {
  ChildSpec spec;
  spec.role = "false";
  spec.argv = {"false"};  // looked up in PATH
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  const int status = child->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, AnExecFailureNamesTheStageAndErrnoAndLeavesNothingJournaled) {
  ChildSpec spec;
  spec.role = "missing";
  spec.argv = {"/nonexistent/wedge-child-test"};
  ChildSetupFailure failure;
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec, &failure);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(failure.stage, ChildStage::kExec);
  EXPECT_EQ(failure.error, ENOENT);
  EXPECT_EQ(child.error().message(),
            "starting /nonexistent/wedge-child-test: execve: ENOENT (No such file or directory)");
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, AProgramNotInPathFailsBeforeFork) {
  ChildSpec spec;
  spec.role = "missing";
  spec.argv = {"wedge-no-such-program"};
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.error().message(), "wedge-no-such-program: not found in PATH");
  EXPECT_TRUE(journal_->Pending().empty());
}

TEST_F(ChildProcessTest, AFailingRlimitAndSeccompHookAreReportedAsTheirStage) {
  ChildSpec spec = Capturing({"/bin/true"});
  spec.rlimits = {{999, rlimit{1, 1}}};  // no such resource: EINVAL
  ChildSetupFailure failure;
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec, &failure);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(failure.stage, ChildStage::kRlimit);
  EXPECT_EQ(failure.error, EINVAL);
  EXPECT_NE(child.error().message().find("setrlimit: EINVAL"), std::string::npos);

  spec.rlimits.clear();
  spec.install_seccomp = [] { return EPERM; };
  child = ChildProcess::Start(*journal_, spec, &failure);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(failure.stage, ChildStage::kSeccomp);
  EXPECT_EQ(failure.error, EPERM);
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, AppliesThePinnedRlimitBeforeExec) {
  rlimit own{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
  const rlim_t pinned = std::min<rlim_t>(own.rlim_max, 77);
  ChildSpec spec = Capturing({"/bin/sh", "-c", "ulimit -n"});
  spec.rlimits = {{RLIMIT_NOFILE, rlimit{pinned, pinned}}};
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  auto [output, status] = Output(*child);
  EXPECT_EQ(output, std::to_string(pinned) + "\n");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(ChildProcessTest, ClosesInheritedDescriptorsButTheKeptOnes) {
  // Neither is close-on-exec; 100 must be closed all the same, 101 kept.
  UniqueFd leaked(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leaked.valid());
  ASSERT_EQ(::dup2(leaked.get(), 100), 100);
  ASSERT_EQ(::dup2(leaked.get(), 101), 101);
  UniqueFd high(100);
  UniqueFd kept(101);
  ChildSpec spec = Capturing({"/bin/ls", "/proc/self/fd"});
  spec.keep_fds = {101};
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  auto [output, status] = Output(*child);
  std::istringstream listed(output);
  std::vector<std::string> fds;
  for (std::string fd; listed >> fd;) fds.push_back(fd);
  EXPECT_EQ(std::count(fds.begin(), fds.end(), "100"), 0) << output;
  EXPECT_EQ(std::count(fds.begin(), fds.end(), "101"), 1) << output;
  EXPECT_EQ(std::count(fds.begin(), fds.end(), "0"), 1) << output;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(ChildProcessTest, TheJournalEntryIsOnDiskBeforeTheProgramRuns) {
  ChildSpec spec = Capturing({"/bin/sh", "-c", "echo $$; cat \"$0\"", journal_->path().string()});
  spec.role = "reader";
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  const pid_t pid = child->pid();
  auto [output, status] = Output(*child);
  std::istringstream lines(output);
  std::string first;
  std::getline(lines, first);
  EXPECT_EQ(first, std::to_string(pid));  // the shell is the journaled process itself
  std::vector<JournalEntry> entries = ParseJournal(output.substr(output.find('\n') + 1));
  ASSERT_EQ(entries.size(), 1U) << output;
  const ProcessChange* process = ProcessOf(entries[0]);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->pid, pid);
  EXPECT_EQ(process->role, "reader");
}

TEST_F(ChildProcessTest, RunsWithExactlyTheGivenEnvironmentAndWorkingDirectory) {
  ChildSpec spec = Capturing({"/bin/sh", "-c", "pwd; env"});
  spec.environment = std::map<std::string, std::string>{{"WEDGE_TEST", "1 2"}};
  spec.working_directory = root_;
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_TRUE(child.ok()) << child.error().message();
  auto [output, status] = Output(*child);
  std::istringstream lines(output);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(fs::path(line), fs::canonical(root_));
  std::vector<std::string> environment;
  while (std::getline(lines, line)) {
    if (line.rfind("PWD=", 0) != 0 && line.rfind("OLDPWD=", 0) != 0 && line.rfind("SHLVL=", 0) != 0)
      environment.push_back(line);  // what sh itself adds
  }
  EXPECT_EQ(environment, std::vector<std::string>{"WEDGE_TEST=1 2"}) << output;
}

TEST_F(ChildProcessTest, EmptiesTheSignalMaskOfTheThreadThatStartedIt) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigset_t old;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  ChildSpec spec = Capturing({"/bin/sh", "-c", "grep SigBlk /proc/self/status"});
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(child.ok()) << child.error().message();
  auto [output, status] = Output(*child);
  EXPECT_EQ(output, "SigBlk:\t0000000000000000\n");
}

TEST_F(ChildProcessTest, DiesWhenTheThreadThatStartedItExits) {
  std::optional<ChildProcess> child;
  std::thread starter([&] {
    ChildSpec spec;
    spec.role = "sleeper";
    spec.argv = {"/bin/sleep", "30"};
    spec.parent_death_signal = SIGKILL;
    Result<ChildProcess> started = ChildProcess::Start(*journal_, spec);
    if (started.ok()) child.emplace(std::move(*started));
  });
  starter.join();
  ASSERT_TRUE(child.has_value());
  std::optional<int> status = child->WaitUntil(MonotonicMillis() + 10000);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, WithoutADeathSignalOutlivesTheThreadAndIsKilledByItsOwner) {
  std::optional<ChildProcess> child;
  std::thread starter([&] {
    ChildSpec spec;
    spec.role = "sleeper";
    spec.argv = {"/bin/sleep", "30"};
    spec.parent_death_signal = 0;
    Result<ChildProcess> started = ChildProcess::Start(*journal_, spec);
    if (started.ok()) child.emplace(std::move(*started));
  });
  starter.join();
  ASSERT_TRUE(child.has_value());
  EXPECT_FALSE(child->WaitUntil(MonotonicMillis() + 300).has_value());
  const pid_t pid = child->pid();
  child.reset();  // SIGKILL, reaped, unjournaled
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(PendingProcesses().empty());
}

TEST_F(ChildProcessTest, RefusesToKeepAStandardDescriptor) {
  ChildSpec spec;
  spec.role = "true";
  spec.argv = {"/bin/true"};
  spec.keep_fds = {1};
  Result<ChildProcess> child = ChildProcess::Start(*journal_, spec);
  ASSERT_FALSE(child.ok());
  EXPECT_TRUE(journal_->Pending().empty());
}

}  // namespace
}  // namespace wedge::sys
