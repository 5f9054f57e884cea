// `wedge run --hold`: the reproduced state stays live after the verdict, `wedge match` names it
// from the pid the hold prints, and `wedge cleanup` (or the next `wedge run`) releases it, after
// which the host is as it was.
#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using testing::RunWedge;
using testing::ScenarioTest;
using testing::WedgeRun;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

// A `wedge run --hold` in the background, read line by line.
class HeldWedge {
 public:
  HeldWedge(const fs::path& scenario, const fs::path& report)
      : child_(WEDGE_BINARY,
               bp::args({"run", "--hold", scenario.string(), "--json", report.string()}),
               (bp::std_out & bp::std_err) > out_, bp::std_in < bp::null) {}
  ~HeldWedge() {
    if (child_.running()) {
      ::kill(child_.id(), SIGTERM);
      Finish();
    }
  }

  // Reads until the hold prints its `wedge match` command; its pid, or 0 if the run ended first.
  pid_t ReadUntilHeld() {
    static const std::regex kMatchLine(R"(name it: wedge match (\d+)$)");
    for (std::string line; std::getline(out_, line);) {
      output_ += line + "\n";
      std::smatch found;
      if (std::regex_search(line, found, kMatchLine)) match_pid_ = std::stoi(found[1]);
      if (line.find("release it: wedge cleanup") != std::string::npos) return match_pid_;
    }
    return 0;
  }

  // Reads to the end and waits; the exit code.
  int Finish() {
    for (std::string line; std::getline(out_, line);) output_ += line + "\n";
    child_.wait();
    return child_.exit_code();
  }

  const std::string& output() const { return output_; }
  pid_t pid() { return child_.id(); }

 private:
  bp::ipstream out_;
  bp::child child_;
  std::string output_;
  pid_t match_pid_ = 0;
};

bool Has(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::any_of(lines.begin(), lines.end(),
                     [&prefix](const std::string& line) { return line.rfind(prefix, 0) == 0; });
}

class HoldTest : public ScenarioTest {};

TEST_F(HoldTest, HoldThenMatchThenCleanupLeavesTheHostAsBefore) {
  HeldWedge held(kScenarios / "fuse-flush-docker-kill.json", report_);
  const pid_t match_pid = held.ReadUntilHeld();
  ASSERT_GT(match_pid, 0) << held.output();
  EXPECT_NE(held.output().find("verdict: reproduced"), std::string::npos) << held.output();
  EXPECT_NE(held.output().find("stuck-thread: daemon pid "), std::string::npos) << held.output();

  // The deadlock is live while held: the tests' own check sees the stuck thread and the stack.
  const std::vector<std::string> live = testing::Diff(before_, testing::HostNow());
  EXPECT_TRUE(Has(live, "D-state task ")) << ::testing::PrintToString(live);

  WedgeRun match = RunWedge({"match", std::to_string(match_pid)});
  EXPECT_EQ(match.exit_code, 0) << match.output;
  EXPECT_NE(match.output.find("MATCH fuse-flush-docker-kill: "), std::string::npos) << match.output;

  WedgeRun cleanup = RunWedge({"cleanup"});
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.output;
  EXPECT_NE(cleanup.output.find("released the run holding fuse-flush-docker-kill"),
            std::string::npos)
      << cleanup.output;

  EXPECT_EQ(held.Finish(), 0) << held.output();
  EXPECT_NE(held.output().find("released by SIGTERM after "), std::string::npos) << held.output();
  const nlohmann::json result = testing::ReadJson(report_)["results"][0];
  EXPECT_EQ(result["verdict"], "reproduced") << result.dump(2);
  EXPECT_EQ(result["held"]["released_by"], "SIGTERM") << result.dump(2);
  EXPECT_EQ(result["held"]["match_command"], "wedge match " + std::to_string(match_pid));
  EXPECT_EQ(result["host_clean"], true) << result.dump(2);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(HoldTest, TheNextRunReleasesAHeldRunBeforeItStarts) {
  HeldWedge held(kScenarios / "fuse-flush-pidns-teardown.json", report_);
  ASSERT_GT(held.ReadUntilHeld(), 0) << held.output();
  const fs::path next_report = report_.string() + ".next";
  WedgeRun next =
      RunWedge({"run", (kScenarios / "fuse-flush-pidns-teardown-no-holder.json").string(), "--json",
                next_report.string()});
  EXPECT_EQ(next.exit_code, 0) << next.output;
  EXPECT_NE(next.output.find("wedge: releasing the run holding fuse-flush-pidns-teardown"),
            std::string::npos)
      << next.output;
  EXPECT_EQ(testing::ReadJson(next_report)["results"][0]["host_clean"], true) << next.output;
  fs::remove(next_report);
  EXPECT_EQ(held.Finish(), 0) << held.output();
  EXPECT_EQ(testing::ReadJson(report_)["results"][0]["held"]["released_by"], "SIGTERM");
  testing::ExpectHostUnchanged(before_);
}

TEST_F(HoldTest, AHeldRunThatIsKilledIsUndoneByCleanupFromItsJournal) {
  HeldWedge held(kScenarios / "fuse-flush-docker-kill.json", report_);
  ASSERT_GT(held.ReadUntilHeld(), 0) << held.output();
  ::kill(held.pid(), SIGKILL);
  held.Finish();
  WedgeRun cleanup = RunWedge({"cleanup"});
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.output;
  EXPECT_NE(cleanup.output.find("removed the marker of the run holding fuse-flush-docker-kill"),
            std::string::npos)
      << cleanup.output;
  EXPECT_NE(cleanup.output.find("aborted FUSE connection"), std::string::npos) << cleanup.output;
  EXPECT_NE(cleanup.output.find("replayed journal "), std::string::npos) << cleanup.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(HoldTest, ANotReproducedRunHasNothingToHold) {
  WedgeRun run =
      RunWedge({"run", "--hold", (kScenarios / "fuse-flush-pidns-teardown-o-path.json").string(),
                "--json", report_.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("nothing to hold: the verdict is not-reproduced"), std::string::npos)
      << run.output;
  EXPECT_TRUE(testing::ReadJson(report_)["results"][0]["held"].is_null());
  testing::ExpectHostUnchanged(before_);
}

TEST_F(HoldTest, HoldTakesOneScenario) {
  WedgeRun run = RunWedge({"run", "--hold", kScenarios.string()});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("--hold keeps one scenario's state: give one scenario file"),
            std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
