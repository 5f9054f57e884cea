// Tests of the soak bench's counting and verdict (bench/soak_tally.h) on made-up run results.
#include "soak_tally.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace wedge::bench {
namespace {

using scenario::Verdict;

report::RunResult Finished(const std::string& scenario, Verdict verdict, const std::string& hash,
                           Verdict expected = Verdict::kReproduced) {
  report::RunResult result;
  result.scenario = scenario;
  result.verdict = verdict;
  result.expected = expected;
  result.signature_hash = hash;
  result.host_clean = true;
  return result;
}

std::string Summary(const SoakTally& tally) {
  std::ostringstream out;
  PrintSummary(out, tally);
  return out.str();
}

std::string LastLine(const std::string& text) {
  const size_t end = text.find_last_not_of('\n');
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - start);
}

// Two passes of a two-scenario suite, every run as expected, nothing left, resources flat.
SoakTally CleanSoak() {
  SoakTally tally;
  for (int pass = 0; pass < 2; ++pass) {
    tally.AddRun(Finished("fuse", Verdict::kReproduced, "aaaa"));
    tally.AddRun(Finished("fuse-no-holder", Verdict::kNotReproduced, "", Verdict::kNotReproduced));
    tally.AddPass({}, {}, {.rss_kib = 20000 + pass * 100, .fds = 9});
  }
  return tally;
}

TEST(SoakTally, CountsRunsVerdictsAndDistinctHashesPerScenarioInOrder) {
  SoakTally tally = CleanSoak();
  ASSERT_EQ(tally.scenarios().size(), 2u);
  const ScenarioTally& fuse = tally.scenarios()[0];
  EXPECT_EQ(fuse.scenario, "fuse");
  EXPECT_EQ(fuse.runs, 2);
  EXPECT_EQ(fuse.verdicts, (std::map<std::string, int>{{"reproduced", 2}}));
  EXPECT_EQ(fuse.hashes, std::vector<std::string>{"aaaa"});
  EXPECT_EQ(tally.scenarios()[1].scenario, "fuse-no-holder");
  EXPECT_EQ(tally.passes(), 2);
  EXPECT_EQ(tally.Leaks(), 0);
  EXPECT_EQ(tally.ScenariosWithSeveralHashes(), 0);
  EXPECT_TRUE(tally.Failures().empty()) << ::testing::PrintToString(tally.Failures());
}

TEST(SoakTally, TheSummaryEndsWithTheSoakLineAndShowsEachScenarioAndTheResources) {
  const std::string summary = Summary(CleanSoak());
  EXPECT_EQ(LastLine(summary), "soak: 2 runs, 0 leaks, 0 scenarios with more than one hash");
  EXPECT_NE(summary.find("fuse: runs 2, verdicts {reproduced: 2}, hashes 1, leaks 0, not as "
                         "expected 0\n"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("fuse-no-holder: runs 2, verdicts {not-reproduced: 2}, hashes 1"),
            std::string::npos)
      << summary;
  for (const char* line :
       {"soak_rss_first: 20000 KiB\n", "soak_rss_last: 20100 KiB\n", "soak_rss_max: 20100 KiB\n",
        "soak_fds_first: 9 count\n", "soak_fds_last: 9 count\n", "soak_fds_max: 9 count\n"}) {
    EXPECT_NE(summary.find(line), std::string::npos) << line << " in\n" << summary;
  }
  EXPECT_EQ(summary.find("FAIL"), std::string::npos) << summary;
}

TEST(SoakTally, AScenarioWithTwoHashesFailsAndIsCounted) {
  SoakTally tally = CleanSoak();
  tally.AddRun(Finished("fuse", Verdict::kReproduced, "bbbb"));
  tally.AddPass({}, {}, {.rss_kib = 20100, .fds = 9});
  EXPECT_EQ(tally.ScenariosWithSeveralHashes(), 1);
  EXPECT_EQ(tally.scenarios()[0].hashes, (std::vector<std::string>{"aaaa", "bbbb"}));
  EXPECT_EQ(tally.Failures(), std::vector<std::string>{"fuse: 2 distinct signature hashes"});
  EXPECT_EQ(LastLine(Summary(tally)), "soak: 3 runs, 0 leaks, 1 scenarios with more than one hash");
}

TEST(SoakTally, LeaksOfARunAndOfAPassAreCountedAndNamed) {
  SoakTally tally = CleanSoak();
  report::RunResult dirty = Finished("fuse", Verdict::kReproduced, "aaaa");
  dirty.host_clean = false;
  dirty.host_leftovers = {"cgroup /sys/fs/cgroup/pids/wedge/r"};
  tally.AddRun(dirty);
  tally.AddPass({"/dev/fuse held by 4117(wedge-fuse): 1 descriptor(s), 0 before"}, {},
                {.rss_kib = 20100, .fds = 9});
  tally.AddPass({}, {"journal suite-1.jsonl"}, {.rss_kib = 20100, .fds = 9});
  EXPECT_EQ(tally.Leaks(), 3);
  EXPECT_EQ(tally.scenarios()[0].leaks, 1);
  EXPECT_EQ(tally.scenarios()[0].not_as_expected, 1);
  ASSERT_EQ(tally.pass_leaks().size(), 2u);
  EXPECT_EQ(tally.pass_leaks()[0].pass, 3);
  EXPECT_EQ(tally.pass_leaks()[1].pass, 4);
  const std::string summary = Summary(tally);
  EXPECT_NE(summary.find("pass 3 left behind (host snapshot): /dev/fuse held by 4117(wedge-fuse)"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("pass 4 left behind (suite's check): journal suite-1.jsonl"),
            std::string::npos)
      << summary;
  EXPECT_EQ(LastLine(summary), "soak: 4 runs, 3 leaks, 0 scenarios with more than one hash");
  EXPECT_EQ(tally.Failures().size(), 4u) << ::testing::PrintToString(tally.Failures());
}

TEST(SoakTally, ARunNotAsExpectedFails) {
  SoakTally tally = CleanSoak();
  report::RunResult failed = Finished("fuse", Verdict::kUnexplained, "aaaa");
  failed.error = "stall never came";
  tally.AddRun(failed);
  EXPECT_EQ(tally.scenarios()[0].verdicts,
            (std::map<std::string, int>{{"reproduced", 2}, {"unexplained", 1}}));
  EXPECT_EQ(tally.Failures(), std::vector<std::string>{"fuse: 1 run(s) not as expected"});
}

TEST(SoakTally, RssMayGrowWithinItsToleranceButNotBeyond) {
  SoakTally within;
  within.AddPass({}, {}, {.rss_kib = 20000, .fds = 9});
  within.AddPass({}, {}, {.rss_kib = 30000, .fds = 9});  // the high-water mark
  within.AddPass({}, {}, {.rss_kib = 20000 + kRssGrowthFloorKib, .fds = 9});
  EXPECT_TRUE(within.Failures().empty()) << ::testing::PrintToString(within.Failures());
  EXPECT_EQ(within.Rss().max, 30000);

  SoakTally beyond;
  beyond.AddPass({}, {}, {.rss_kib = 20000, .fds = 9});
  beyond.AddPass({}, {}, {.rss_kib = 20000 + kRssGrowthFloorKib + 1, .fds = 9});
  EXPECT_EQ(beyond.Failures(),
            std::vector<std::string>{"RSS grew 4097 KiB from the first pass to the last "
                                     "(tolerance 4096 KiB)"});

  // A tenth of a large first sample is the tolerance when it is more than the floor.
  SoakTally large;
  large.AddPass({}, {}, {.rss_kib = 100000, .fds = 9});
  large.AddPass({}, {}, {.rss_kib = 110000, .fds = 9});
  EXPECT_TRUE(large.Failures().empty());
  large.AddPass({}, {}, {.rss_kib = 110001, .fds = 9});
  EXPECT_EQ(large.Failures().size(), 1u);
}

TEST(SoakTally, OneMoreOpenDescriptorAfterTheLastPassFails) {
  SoakTally tally = CleanSoak();
  tally.AddPass({}, {}, {.rss_kib = 20100, .fds = 10});
  EXPECT_EQ(tally.Failures(), std::vector<std::string>{"open descriptors grew from 9 to 10 "
                                                       "(tolerance 0)"});
  // Fewer is no failure.
  SoakTally fewer = CleanSoak();
  fewer.AddPass({}, {}, {.rss_kib = 20100, .fds = 8});
  EXPECT_TRUE(fewer.Failures().empty());
}

TEST(SoakTally, InterruptedRunsAreNotCountedButShown) {
  SoakTally tally = CleanSoak();
  tally.AddInterruptedRun();
  EXPECT_EQ(tally.scenarios()[0].runs, 2);
  EXPECT_NE(Summary(tally).find("soak_interrupted_runs: 1 count\n"), std::string::npos);
  EXPECT_TRUE(tally.Failures().empty());
}

TEST(SoakTally, AnEmptySoakSaysSo) {
  EXPECT_EQ(LastLine(Summary(SoakTally{})),
            "soak: 0 runs, 0 leaks, 0 scenarios with more than one hash");
}

TEST(VmRss, IsReadFromARecordedStatus) {
  std::ifstream in(std::string(WEDGE_TEST_DATA_DIR) + "/proc/6.18/status_cat.txt");
  const std::string status((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::optional<std::int64_t> rss = ParseVmRssKib(status);
  ASSERT_TRUE(rss.has_value());
  const size_t at = status.find("VmRSS:");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(*rss, std::stoll(status.substr(at + 6)));
  EXPECT_FALSE(ParseVmRssKib("Name:\tcat\n").has_value());
  EXPECT_FALSE(ParseVmRssKib("VmRSS:\tmany kB\n").has_value());
}

}  // namespace
}  // namespace wedge::bench
