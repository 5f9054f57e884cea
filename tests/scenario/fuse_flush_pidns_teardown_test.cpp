// Scenario tests for the FUSE flush deadlock of pid-namespace teardown (Netflix report;
// kernel commits 5a8bee63b10f and its revert 91ec6c85599b). They run the real wedge binary as
// root against the real kernel, and check the host afterwards independently of wedge's own check.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/process.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace bp = boost::process;
using testing::ReadJson;
using testing::RunWedge;
using testing::WedgeRun;
namespace fs = std::filesystem;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

// Runs wedge stopped at the fault point before `phase` (WEDGE_FAULT_STOP_AT), then sends it
// `signo` (and SIGCONT, so a caught signal is handled): the point is exact, not a race with
// wedge's progress output.
WedgeRun SignalWedgeAt(const std::vector<std::string>& args, const std::string& phase, int signo) {
  bp::ipstream out;
  bp::environment env = boost::this_process::environment();
  env["WEDGE_FAULT_STOP_AT"] = phase;
  bp::child child(WEDGE_BINARY, bp::args(args), env, (bp::std_out & bp::std_err) > out);
  WedgeRun run;
  bool sent = false;
  for (std::string line; std::getline(out, line);) {
    run.output += line + "\n";
    if (!sent && line == "fault point: stopped before " + phase) {
      // The line is written just before SIGSTOP: wait until wedge is actually stopped.
      for (int i = 0; i < 5000; ++i) {
        std::ifstream stat("/proc/" + std::to_string(child.id()) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        size_t close = text.rfind(')');
        if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'T') break;
        ::usleep(1000);
      }
      ::kill(child.id(), signo);
      ::kill(child.id(), SIGCONT);
      sent = true;
    }
  }
  child.wait();
  int status = child.native_exit_code();
  run.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  return run;
}

class FuseFlushPidnsTeardown : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "scenario tests run as root";
    before_ = testing::HostNow();
    report_ =
        fs::temp_directory_path() / ("wedge-scenario-test-" + std::to_string(::getpid()) + ".json");
  }
  void TearDown() override { fs::remove(report_); }

  testing::HostSnapshot before_;
  fs::path report_;
};

TEST_F(FuseFlushPidnsTeardown, ReproducesAndRecoversLeavingTheHostClean) {
  WedgeRun run = RunWedge({"run", (kScenarios / "fuse-flush-pidns-teardown.json").string(),
                           "--json", report_.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  nlohmann::json report = ReadJson(report_);
  ASSERT_EQ(report["results"].size(), 1u);
  const nlohmann::json& result = report["results"][0];
  EXPECT_EQ(result["verdict"], "reproduced") << run.output;
  EXPECT_EQ(result["host_clean"], true) << run.output;
  // The evidence holds the raw stack of the stuck thread, offsets and all.
  bool found_flush = false;
  for (const auto& process : result["evidence"]["processes"]) {
    for (const auto& task : process["tasks"]) {
      if (task["stack_text"].get<std::string>().find("fuse_flush+0x") != std::string::npos) {
        found_flush = true;
      }
    }
  }
  EXPECT_TRUE(found_flush) << result["evidence"].dump(2);
  EXPECT_NE(run.output.find("aborted FUSE connection"), std::string::npos) << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(FuseFlushPidnsTeardown, WithoutAHeldFileTheNamespaceTearsDownCleanly) {
  WedgeRun run =
      RunWedge({"run", (kScenarios / "fuse-flush-pidns-teardown-no-holder.json").string(), "--json",
                report_.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(ReadJson(report_)["results"][0]["verdict"], "not-reproduced") << run.output;
  testing::ExpectHostUnchanged(before_);
}

// The controls: the holder's file is closed (its flush answered) before the kill, or it is an
// O_PATH file whose close sends no flush. Either way the namespace tears down.
TEST_F(FuseFlushPidnsTeardown, TheHolderKnobControlsTearDownCleanly) {
  for (const char* control :
       {"fuse-flush-pidns-teardown-holder-closes.json", "fuse-flush-pidns-teardown-o-path.json"}) {
    SCOPED_TRACE(control);
    WedgeRun run = RunWedge({"run", (kScenarios / control).string(), "--json", report_.string()});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const nlohmann::json result = ReadJson(report_)["results"][0];
    EXPECT_EQ(result["verdict"], "not-reproduced") << run.output;
    EXPECT_EQ(result["signature_hash"], "8fb2a205fe7c821a") << run.output;  // of "all-exited"
    EXPECT_EQ(result["host_clean"], true) << run.output;
    testing::ExpectHostUnchanged(before_);
  }
}

TEST_F(FuseFlushPidnsTeardown, GivesTheSameSignatureHashEveryRun) {
  std::set<std::string> hashes;
  for (int i = 0; i < 3; ++i) {
    WedgeRun run = RunWedge({"run", (kScenarios / "fuse-flush-pidns-teardown.json").string(),
                             "--json", report_.string()});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    hashes.insert(ReadJson(report_)["results"][0]["signature_hash"].get<std::string>());
  }
  EXPECT_EQ(hashes.size(), 1u);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(FuseFlushPidnsTeardown, CleanupUndoesARunKilledWhileTheDeadlockHolds) {
  if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
  // SIGKILL wedge while the deadlock holds: a D-state thread, an open FUSE connection, a
  // cgroup, fusectl mounted, a run directory. `wedge cleanup` must undo all of it.
  WedgeRun killed = SignalWedgeAt({"run", (kScenarios / "fuse-flush-pidns-teardown.json").string()},
                                  "recover", SIGKILL);
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
  // The tests' own check sees the deadlock the killed run left: the daemon's thread in D, its
  // FUSE connection mounted in the sandbox's mount namespace (which that thread, stuck in
  // exit_files, still holds), and the run's journal.
  const std::vector<std::string> left = testing::Diff(before_, testing::HostNow());
  auto names = [&left](const std::string& kind) {
    return std::any_of(left.begin(), left.end(),
                       [&kind](const std::string& line) { return line.rfind(kind, 0) == 0; });
  };
  EXPECT_TRUE(names("D-state task ")) << ::testing::PrintToString(left);
  EXPECT_TRUE(names("FUSE mount ")) << ::testing::PrintToString(left);
  EXPECT_TRUE(names("journal ")) << ::testing::PrintToString(left);
  WedgeRun cleanup = RunWedge({"cleanup"});
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.output;
  EXPECT_NE(cleanup.output.find("aborted FUSE connection"), std::string::npos) << cleanup.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(FuseFlushPidnsTeardown, MatchNamesTheDeadlockOfALiveStuckTreeWithoutChangingIt) {
  if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
  // Leave the deadlock in place (wedge stopped before recovery), match it, then clean up.
  bp::ipstream out;
  bp::environment env = boost::this_process::environment();
  env["WEDGE_FAULT_STOP_AT"] = "recover";
  bp::child wedge(WEDGE_BINARY, "run", (kScenarios / "fuse-flush-pidns-teardown.json").string(),
                  env, (bp::std_out & bp::std_err) > out);
  std::string init;
  for (std::string line; std::getline(out, line);) {
    if (auto at = line.find("sandbox init is pid "); at != std::string::npos) {
      init = line.substr(at + 20, line.find(' ', at + 20) - at - 20);
    }
    if (line == "fault point: stopped before recover") break;
  }
  ASSERT_FALSE(init.empty());
  const testing::HostSnapshot stuck = testing::HostNow();
  WedgeRun match = RunWedge({"match", init});
  EXPECT_EQ(match.exit_code, 0) << match.output;
  EXPECT_NE(match.output.find("MATCH fuse-flush-pidns-teardown: 3 of 3 roles"), std::string::npos)
      << match.output;
  EXPECT_NE(match.output.find("see commit 5a8bee63b10f"), std::string::npos) << match.output;
  EXPECT_TRUE(testing::Diff(stuck, testing::HostNow()).empty()) << "match must not change the host";
  ::kill(wedge.id(), SIGKILL);
  wedge.wait();
  EXPECT_EQ(RunWedge({"cleanup"}).exit_code, 0);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(FuseFlushPidnsTeardown, SigintStopsTheRunWithRecoveryAndTeardown) {
  if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
  WedgeRun run = SignalWedgeAt({"run", (kScenarios / "fuse-flush-pidns-teardown.json").string()},
                               "stall", SIGINT);
  EXPECT_EQ(run.exit_code, 128 + SIGINT) << run.output;
  EXPECT_NE(run.output.find("stopped by SIGINT"), std::string::npos) << run.output;
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
