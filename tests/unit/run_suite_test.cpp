#include "wedge/runner/run_suite.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace wedge::runner {
namespace {

using scenario::Verdict;

report::RunResult Result(const std::string& scenario, Verdict verdict, const std::string& hash,
                         Verdict expected = Verdict::kReproduced) {
  report::RunResult result;
  result.scenario = scenario;
  result.verdict = verdict;
  result.expected = expected;
  result.signature_hash = hash;
  result.host_clean = true;
  return result;
}

TEST(JudgeSuite, RunsThatAreAllAsExpectedOnACleanHostPass) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kReproduced, "1111"),
                 Result("a", Verdict::kReproduced, "1111"),
                 Result("b", Verdict::kNotReproduced, "", Verdict::kNotReproduced)};
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kNone);
}

TEST(JudgeSuite, AnEmptySuiteOnACleanHostPasses) {
  EXPECT_EQ(JudgeSuite(SuiteRun{}), SuiteFailure::kNone);
}

TEST(JudgeSuite, RepeatedRunsWithDifferentVerdictsAreFlaky) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kReproduced, "1111", Verdict::kReproduced),
                 Result("a", Verdict::kNotReproduced, "", Verdict::kNotReproduced)};
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kFlaky);
}

TEST(JudgeSuite, RepeatedRunsWithOneVerdictButTwoHashesAreFlaky) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kReproduced, "1111"),
                 Result("a", Verdict::kReproduced, "2222")};
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kFlaky);
}

TEST(JudgeSuite, DifferentScenariosMayDifferWithoutBeingFlaky) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kReproduced, "1111"),
                 Result("b", Verdict::kReproduced, "2222")};
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kNone);
}

TEST(JudgeSuite, AnUnexpectedVerdictOrARunsOwnDirtyHostIsNotAsExpected) {
  SuiteRun unexpected;
  unexpected.results = {Result("a", Verdict::kNotReproduced, "")};
  EXPECT_EQ(JudgeSuite(unexpected), SuiteFailure::kNotAsExpected);

  SuiteRun dirty;
  dirty.results = {Result("a", Verdict::kReproduced, "1111")};
  dirty.results[0].host_clean = false;
  EXPECT_EQ(JudgeSuite(dirty), SuiteFailure::kNotAsExpected);
}

TEST(JudgeSuite, AnInternalErrorComesBeforeAnUnexpectedVerdict) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kNotReproduced, ""),
                 Result("b", Verdict::kReproduced, "1111")};
  run.results[1].error = "setup: mount('fuse'): EPERM";
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kInternalError);
}

TEST(JudgeSuite, LeftoversOfTheSuiteComeFirst) {
  SuiteRun run;
  run.results = {Result("a", Verdict::kNotReproduced, "")};
  run.results[0].error = "trigger: timed out";
  run.leftovers = {"a task in D: 4119(wedge-fuse)"};
  EXPECT_FALSE(run.host_clean());
  EXPECT_EQ(JudgeSuite(run), SuiteFailure::kHostNotClean);
}

std::vector<scenario::Scenario> ScenariosIn(const std::vector<std::string>& files) {
  std::vector<scenario::Scenario> scenarios;
  for (const auto& file : files) {
    scenario::Scenario scenario;
    scenario.file = file;
    scenario.name = std::filesystem::path(file).stem().string();
    scenarios.push_back(scenario);
  }
  return scenarios;
}

std::vector<std::string> Names(const std::vector<scenario::Scenario>& scenarios) {
  std::vector<std::string> names;
  for (const auto& scenario : scenarios) names.push_back(scenario.name);
  return names;
}

TEST(ShardOf, DealsTheScenariosSortedByPathRoundTheShards) {
  const auto scenarios = ScenariosIn({"s/d.json", "s/a.json", "s/c.json", "s/b.json", "s/e.json"});
  EXPECT_EQ(Names(ShardOf(scenarios, 1, 2)), (std::vector<std::string>{"a", "c", "e"}));
  EXPECT_EQ(Names(ShardOf(scenarios, 2, 2)), (std::vector<std::string>{"b", "d"}));
}

TEST(ShardOf, EveryScenarioIsInExactlyOneShardWhateverTheOrderGiven) {
  const auto forward = ScenariosIn({"a.json", "b.json", "c.json", "d.json"});
  const auto backward = ScenariosIn({"d.json", "c.json", "b.json", "a.json"});
  std::vector<std::string> all;
  for (int k = 1; k <= 3; ++k) {
    EXPECT_EQ(Names(ShardOf(forward, k, 3)), Names(ShardOf(backward, k, 3)));
    for (const auto& name : Names(ShardOf(forward, k, 3))) all.push_back(name);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(ShardOf, AShardBeyondTheScenariosIsEmpty) {
  EXPECT_TRUE(ShardOf(ScenariosIn({"a.json", "b.json"}), 3, 3).empty());
  EXPECT_EQ(Names(ShardOf(ScenariosIn({"a.json"}), 1, 1)), (std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace wedge::runner
