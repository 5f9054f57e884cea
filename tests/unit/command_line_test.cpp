#include "wedge/cli/command_line.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wedge/base/fault_point.h"

namespace wedge::cli {
namespace {

using scenario::Verdict;

// The command `args` parse into; a test failure (and an empty command) when they do not.
template <typename T>
T Parsed(const std::vector<std::string>& args) {
  auto parsed = ParseCommandLine(args);
  if (const auto* exit = std::get_if<ParseExit>(&parsed)) {
    ADD_FAILURE() << "exit " << exit->status << ": " << exit->text;
    return T{};
  }
  const Command& command = std::get<Command>(parsed);
  EXPECT_TRUE(std::holds_alternative<T>(command)) << "another command, index " << command.index();
  return std::holds_alternative<T>(command) ? std::get<T>(command) : T{};
}

// How parsing `args` ends when they name nothing to run.
ParseExit Exited(const std::vector<std::string>& args) {
  auto parsed = ParseCommandLine(args);
  EXPECT_TRUE(std::holds_alternative<ParseExit>(parsed)) << "parsed into a command";
  return std::holds_alternative<ParseExit>(parsed) ? std::get<ParseExit>(parsed) : ParseExit{};
}

// A usage error whose message holds `message`, with the usage of `command` after it.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& message,
                      const std::string& command) {
  const ParseExit exit = Exited(args);
  EXPECT_EQ(exit.status, kUsage) << exit.text;
  EXPECT_EQ(exit.text.rfind("wedge: ", 0), 0U) << exit.text;
  EXPECT_NE(exit.text.find(message), std::string::npos) << exit.text;
  EXPECT_NE(exit.text.find("usage: wedge " + command), std::string::npos) << exit.text;
}

TEST(ParseRun, TakesEveryOptionAsValueOrEqualsValue) {
  const RunCommand run = Parsed<RunCommand>({"run",
                                             "a.json",
                                             "--json=out.json",
                                             "--junit",
                                             "junit.xml",
                                             "--repeat=3",
                                             "--shard",
                                             "2/4",
                                             "--with",
                                             "docker=/usr/local/bin/docker",
                                             "--with=runc=/opt/runc",
                                             "--kernel",
                                             "host",
                                             "--kernel=linux-image-6.1.0-*-cloud-amd64",
                                             "--guest-timeout=60",
                                             "--keep",
                                             "--allow-untrusted",
                                             "--expect",
                                             "not-reproduced",
                                             "scenarios/"});
  EXPECT_EQ(run.paths, (std::vector<std::string>{"a.json", "scenarios/"}));
  EXPECT_EQ(run.json, "out.json");
  EXPECT_EQ(run.junit, "junit.xml");
  EXPECT_EQ(run.repeat, 3);
  EXPECT_EQ(run.shard, (Shard{2, 4}));
  EXPECT_EQ(run.with, (std::vector<std::string>{"docker=/usr/local/bin/docker", "runc=/opt/runc"}));
  EXPECT_EQ(run.kernels, (std::vector<std::string>{"host", "linux-image-6.1.0-*-cloud-amd64"}));
  EXPECT_EQ(run.guest_timeout_s, 60);
  EXPECT_TRUE(run.keep);
  EXPECT_TRUE(run.allow_untrusted);
  EXPECT_EQ(run.expect, Verdict::kNotReproduced);
}

TEST(ParseRun, DefaultsToTheScenariosDirectoryOnceEachWithNothingOverridden) {
  const RunCommand run = Parsed<RunCommand>({"run"});
  EXPECT_TRUE(run.paths.empty());
  EXPECT_FALSE(run.json);
  EXPECT_FALSE(run.junit);
  EXPECT_FALSE(run.keep);
  EXPECT_FALSE(run.allow_untrusted);
  EXPECT_FALSE(run.expect);
  EXPECT_FALSE(run.shard);
  EXPECT_EQ(run.repeat, 1);
  EXPECT_EQ(run.guest_timeout_s, 180);
}

TEST(ParseRun, ARepeatableOptionTakesOneValueEachTimeSoScenariosMayFollow) {
  const RunCommand run =
      Parsed<RunCommand>({"run", "--with", "docker=/d", "a.json", "--kernel", "host", "b.json"});
  EXPECT_EQ(run.with, (std::vector<std::string>{"docker=/d"}));
  EXPECT_EQ(run.kernels, (std::vector<std::string>{"host"}));
  EXPECT_EQ(run.paths, (std::vector<std::string>{"a.json", "b.json"}));
}

TEST(ParseRun, AnOptionGivenTwiceKeepsTheLastValue) {
  const RunCommand run = Parsed<RunCommand>(
      {"run", "--json", "first.json", "--json=second.json", "--repeat", "2", "--repeat", "5"});
  EXPECT_EQ(run.json, "second.json");
  EXPECT_EQ(run.repeat, 5);
}

TEST(ParseRun, DoubleDashMakesEveryLaterArgumentAScenario) {
  const RunCommand run = Parsed<RunCommand>({"run", "--keep", "--", "--json", "-x.json"});
  EXPECT_TRUE(run.keep);
  EXPECT_FALSE(run.json);
  EXPECT_EQ(run.paths, (std::vector<std::string>{"--json", "-x.json"}));
}

TEST(ParseRun, AnUnknownOptionIsAUsageErrorNamingIt) {
  ExpectUsageError({"run", "a.json", "--frobnicate"}, "--frobnicate", "run");
  ExpectUsageError({"run", "--baseline", "docker=/d"}, "--baseline", "run");
}

TEST(ParseRun, AMissingValueIsAUsageErrorNamingTheOption) {
  ExpectUsageError({"run", "--json"}, "--json", "run");
  ExpectUsageError({"run", "a.json", "--kernel"}, "--kernel", "run");
}

TEST(ParseRun, ABadVerdictNamesTheVerdictsThereAre) {
  ExpectUsageError({"run", "--expect", "maybe"},
                   "--expect: takes reproduced, not-reproduced or unexplained, not 'maybe'", "run");
  ExpectUsageError({"run", "--expect=Reproduced"}, "not 'Reproduced'", "run");
  EXPECT_EQ(Parsed<RunCommand>({"run", "--expect", "unexplained"}).expect, Verdict::kUnexplained);
  EXPECT_EQ(Parsed<RunCommand>({"run", "--expect=reproduced"}).expect, Verdict::kReproduced);
}

TEST(ParseRun, AShardIsKOfNWithKFromOneToN) {
  for (const std::string bad :
       {"3/2", "0/2", "1/0", "2", "a/b", "1/2/3", "/2", "1/", "-1/2", "12345/12345"}) {
    ExpectUsageError({"run", "--shard", bad},
                     "--shard: takes K/N with 1 <= K <= N, not '" + bad + "'", "run");
  }
  EXPECT_EQ(Parsed<RunCommand>({"run", "--shard=1/1"}).shard, (Shard{1, 1}));
  EXPECT_EQ(Parsed<RunCommand>({"run", "--shard", "9999/9999"}).shard, (Shard{9999, 9999}));
}

TEST(ParseRun, RepeatIsAWholeNumberFromOneTo9999) {
  for (const std::string bad : {"0", "-1", "10000", "x", "1.5", "", "0x10"}) {
    ExpectUsageError({"run", "--repeat", bad},
                     "--repeat: takes a whole number from 1 to 9999, not '" + bad + "'", "run");
  }
  EXPECT_EQ(Parsed<RunCommand>({"run", "--repeat", "9999"}).repeat, 9999);
  EXPECT_EQ(Parsed<RunCommand>({"run", "--repeat", "010"}).repeat, 10);
}

TEST(ParseRun, GuestTimeoutIsAWholeNumberOfSecondsFromOneTo99999) {
  for (const std::string bad : {"0", "100000", "3m"}) {
    ExpectUsageError(
        {"run", "--guest-timeout", bad},
        "--guest-timeout: takes a whole number of seconds from 1 to 99999, not '" + bad + "'",
        "run");
  }
  EXPECT_EQ(Parsed<RunCommand>({"run", "--guest-timeout=99999"}).guest_timeout_s, 99999);
}

TEST(ParseRun, HoldIsAFlagForOneRunOnThisKernel) {
  EXPECT_TRUE(Parsed<RunCommand>({"run", "a.json", "--hold"}).hold);
  EXPECT_FALSE(Parsed<RunCommand>({"run", "a.json"}).hold);
  EXPECT_TRUE(Parsed<RunCommand>({"run", "a.json", "--hold", "--repeat", "1"}).hold);
  ExpectUsageError({"run", "a.json", "--hold", "--repeat", "2"},
                   "--hold keeps one run's state: it does not combine with --repeat", "run");
  ExpectUsageError({"run", "a.json", "--kernel", "host", "--hold"},
                   "--hold keeps the state on this kernel: it does not combine with --kernel",
                   "run");
}

TEST(ParseRun, StackTakesHostOrADebianReleaseEachOnce) {
  EXPECT_EQ(Parsed<RunCommand>({"run", "--stack", "bullseye", "--stack=sid"}).stacks,
            (std::vector<std::string>{"bullseye", "sid"}));
  EXPECT_EQ(Parsed<RunCommand>({"run", "--stack", "host"}).stacks,
            std::vector<std::string>{"host"});
  ExpectUsageError({"run", "--stack", "buster"},
                   "--stack: takes host, bullseye, bookworm, trixie or sid, not 'buster'", "run");
  ExpectUsageError({"run", "--stack", "sid", "--stack", "sid"}, "--stack sid is given twice",
                   "run");
  ExpectUsageError({"run", "a.json", "--hold", "--stack", "sid", "--stack", "trixie"},
                   "--hold keeps one run's state: give at most one --stack", "run");
}

TEST(ParseRun, WithTakesNameEqualsPath) {
  for (const std::string bad : {"docker", "=/usr/bin/docker", "docker="}) {
    ExpectUsageError({"run", "--with", bad}, "--with: takes NAME=PATH, not '" + bad + "'", "run");
  }
}

TEST(ParseVerify, TakesOneScenarioBothSidesAndDefaultsToThreeRuns) {
  const VerifyCommand verify =
      Parsed<VerifyCommand>({"verify", "s.json", "--baseline", "docker=/usr/bin/docker",
                             "--baseline=runc=/a", "--candidate=docker=/usr/local/bin/docker"});
  EXPECT_EQ(verify.scenario, "s.json");
  EXPECT_EQ(verify.baseline, (std::vector<std::string>{"docker=/usr/bin/docker", "runc=/a"}));
  EXPECT_EQ(verify.candidate, (std::vector<std::string>{"docker=/usr/local/bin/docker"}));
  EXPECT_EQ(verify.repeat, 3);
  EXPECT_FALSE(verify.json);
  const VerifyCommand twice =
      Parsed<VerifyCommand>({"verify", "--repeat=2", "--json", "v.json", "--baseline", "docker=/a",
                             "--candidate", "docker=/b", "s.json"});
  EXPECT_EQ(twice.repeat, 2);
  EXPECT_EQ(twice.json, "v.json");
  EXPECT_EQ(twice.scenario, "s.json");
}

TEST(ParseVerify, NeedsExactlyOneScenarioAndBothSides) {
  ExpectUsageError({"verify", "--baseline", "docker=/a", "--candidate", "docker=/b"},
                   "verify needs exactly one scenario file", "verify");
  ExpectUsageError(
      {"verify", "a.json", "b.json", "--baseline", "docker=/a", "--candidate", "docker=/b"},
      "verify needs exactly one scenario file", "verify");
  ExpectUsageError({"verify", "s.json", "--baseline", "docker=/a"},
                   "verify needs --baseline NAME=PATH and --candidate NAME=PATH", "verify");
  ExpectUsageError({"verify", "s.json", "--candidate", "docker"},
                   "--candidate: takes NAME=PATH, not 'docker'", "verify");
}

TEST(ParseVerify, RepeatIsAWholeNumberFromOneTo999AndRunOptionsAreNotVerifys) {
  ExpectUsageError({"verify", "s.json", "--baseline", "docker=/a", "--candidate", "docker=/b",
                    "--repeat", "1000"},
                   "--repeat: takes a whole number from 1 to 999, not '1000'", "verify");
  ExpectUsageError(
      {"verify", "s.json", "--baseline", "docker=/a", "--candidate", "docker=/b", "--keep"},
      "--keep", "verify");
}

TEST(ParseBisect, TakesEveryPathAfterCandidatesUpToTheNextOption) {
  const BisectCommand bisect = Parsed<BisectCommand>(
      {"bisect", "s.json", "--binary", "docker", "--candidates", "/old", "/mid", "/new"});
  EXPECT_EQ(bisect.scenario, "s.json");
  EXPECT_EQ(bisect.binary, "docker");
  EXPECT_EQ(bisect.candidates, (std::vector<std::string>{"/old", "/mid", "/new"}));
  const BisectCommand reordered = Parsed<BisectCommand>(
      {"bisect", "--candidates", "/old", "/new", "--binary=docker", "s.json"});
  EXPECT_EQ(reordered.scenario, "s.json");
  EXPECT_EQ(reordered.candidates, (std::vector<std::string>{"/old", "/new"}));
}

TEST(ParseBisect, NeedsAScenarioABinaryAndTwoCandidates) {
  const std::string message = "bisect needs SCENARIO --binary NAME --candidates PATH PATH...";
  ExpectUsageError({"bisect", "s.json", "--binary", "docker", "--candidates", "/only"}, message,
                   "bisect");
  ExpectUsageError({"bisect", "s.json", "--candidates", "/old", "/new"}, message, "bisect");
  ExpectUsageError({"bisect", "--binary", "docker", "--candidates", "/old", "/new"}, message,
                   "bisect");
  ExpectUsageError({"bisect", "s.json", "--binary"}, "--binary", "bisect");
}

TEST(ParseSnapshotAndMatch, TakeAPidAndTheirOwnOptions) {
  const SnapshotCommand snapshot = Parsed<SnapshotCommand>({"snapshot", "4100", "--json=s.json"});
  EXPECT_EQ(snapshot.pid, 4100);
  EXPECT_EQ(snapshot.json, "s.json");
  const MatchCommand match = Parsed<MatchCommand>({"match", "4100"});
  EXPECT_EQ(match.pid, 4100);
  EXPECT_FALSE(match.directory);
  EXPECT_EQ(Parsed<MatchCommand>({"match", "4100", "scenarios"}).directory, "scenarios");
}

TEST(ParseSnapshotAndMatch, RefuseWhatIsNotAPid) {
  ExpectUsageError({"snapshot", "abc"}, "snapshot: 'abc' is not a pid", "snapshot");
  ExpectUsageError({"snapshot", "0"}, "snapshot: '0' is not a pid", "snapshot");
  ExpectUsageError({"match", "99999999999"}, "match: '99999999999' is not a pid", "match");
  ExpectUsageError({"snapshot"}, "snapshot needs exactly one PID", "snapshot");
  ExpectUsageError({"snapshot", "1", "2"}, "snapshot needs exactly one PID", "snapshot");
  ExpectUsageError({"match"}, "match needs a PID (and optionally a DIR)", "match");
  ExpectUsageError({"match", "1", "a", "b"}, "match needs a PID (and optionally a DIR)", "match");
  ExpectUsageError({"snapshot", "1", "--keep"}, "--keep", "snapshot");
  ExpectUsageError({"match", "1", "--json", "m.json"}, "--json", "match");
}

TEST(ParseListValidateCleanup, CountTheirArguments) {
  EXPECT_FALSE(Parsed<ListCommand>({"list"}).directory);
  EXPECT_EQ(Parsed<ListCommand>({"list", "scenarios"}).directory, "scenarios");
  ExpectUsageError({"list", "a", "b"}, "list takes at most one directory", "list");
  EXPECT_EQ(Parsed<ValidateCommand>({"validate", "a.json", "b.json"}).files,
            (std::vector<std::string>{"a.json", "b.json"}));
  ExpectUsageError({"validate"}, "validate needs at least one file", "validate");
  Parsed<CleanupCommand>({"cleanup"});
  ExpectUsageError({"cleanup", "now"}, "cleanup takes no arguments", "cleanup");
  ExpectUsageError({"cleanup", "--force"}, "--force", "cleanup");
}

TEST(ParseCommandLine, NoOrAnUnknownCommandIsAUsageErrorWithEveryCommandsUsage) {
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "wedge: no command given"},
           {{"frobnicate"}, "wedge: unknown command 'frobnicate'"},
           {{"--frobnicate"}, "--frobnicate"}}) {
    const ParseExit exit = Exited(args);
    EXPECT_EQ(exit.status, kUsage);
    EXPECT_NE(exit.text.find(message), std::string::npos) << exit.text;
    EXPECT_NE(exit.text.find("  wedge list [DIR]"), std::string::npos) << exit.text;
    EXPECT_NE(exit.text.find("  wedge cleanup"), std::string::npos) << exit.text;
  }
}

TEST(ParseCommandLine, HelpListsEveryCommandAsTheReadmeDoesAndTheExitStatuses) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"help"}}) {
    const ParseExit exit = Exited(args);
    EXPECT_EQ(exit.status, kAllAsExpected);
    for (
        const std::string line :
        {"  wedge list [DIR]                  scenarios, one line each",
         "  wedge run [SCENARIO|DIR]... [--json FILE] [--junit FILE] [--keep]\n"
         "            [--with NAME=PATH|RELEASE]... [--expect VERDICT] [--repeat N] [--shard K/N]\n"
         "            [--allow-untrusted] [--hold]\n"
         "            [--stack host|RELEASE]... [--kernel host|VMLINUZ|PACKAGE]...\n",
         "  wedge verify SCENARIO --baseline NAME=PATH... --candidate NAME=PATH... [--repeat N]\n"
         "               [--json FILE]        a patch's proof",
         "  wedge bisect SCENARIO --binary NAME --candidates PATH...\n"
         "               | SCENARIO --stacks RELEASE...\n"
         "                                    the first candidate",
         "  wedge snapshot PID [--json FILE]  capture", "  wedge match PID [DIR]             which",
         "  wedge cleanup                     undo", "exit status: 0 every verdict as expected"}) {
      EXPECT_NE(exit.text.find(line), std::string::npos) << line << "\n---\n" << exit.text;
    }
  }
}

TEST(ParseCommandLine, EachCommandHasItsOwnHelp) {
  const ParseExit run = Exited({"run", "--help"});
  EXPECT_EQ(run.status, kAllAsExpected);
  EXPECT_NE(run.text.find("usage: wedge run [SCENARIO|DIR]..."), std::string::npos) << run.text;
  for (const std::string option : {"--json", "--junit", "--keep", "--with", "--expect", "--repeat",
                                   "--shard", "--allow-untrusted", "--kernel", "--guest-timeout"}) {
    EXPECT_NE(run.text.find(option), std::string::npos) << option << "\n" << run.text;
  }
  const ParseExit verify = Exited({"help", "verify"});
  EXPECT_EQ(verify.status, kAllAsExpected);
  EXPECT_NE(verify.text.find("usage: wedge verify SCENARIO"), std::string::npos) << verify.text;
  EXPECT_NE(verify.text.find("--candidate"), std::string::npos) << verify.text;
  EXPECT_EQ(verify.text.find("--guest-timeout"), std::string::npos) << verify.text;
  const ParseExit bisect = Exited({"bisect", "-h"});
  EXPECT_NE(bisect.text.find("--candidates"), std::string::npos) << bisect.text;
}

TEST(ParseCommandLine, VersionNamesWedgeAndItsVersion) {
  const ParseExit exit = Exited({"--version"});
  EXPECT_EQ(exit.status, kAllAsExpected);
  EXPECT_EQ(exit.text.rfind("wedge ", 0), 0U) << exit.text;
  EXPECT_GT(exit.text.find('\n'), std::string("wedge ").size()) << exit.text;
  EXPECT_EQ(exit.text.back(), '\n');
}

TEST(ParseCommandLine, VersionSaysWhetherFaultPointsAreCompiledIn) {
  const ParseExit exit = Exited({"--version"});
  const std::string second_line = exit.text.substr(exit.text.find('\n') + 1);
  EXPECT_EQ(second_line, FaultPointsCompiledIn()
                             ? "fault points: compiled in (WEDGE_FAULT_STOP_AT)\n"
                             : "fault points: none\n")
      << exit.text;
}

TEST(UsageError, NamesTheProblemThenTheCommandsUsage) {
  const std::string text = UsageError("run", "no scenario files found");
  EXPECT_EQ(text.rfind("wedge: no scenario files found\nusage: wedge run [SCENARIO|DIR]...", 0), 0U)
      << text;
  EXPECT_NE(UsageError("", "no command given").find("  wedge verify SCENARIO"), std::string::npos);
}

TEST(VerdictNamed, KnowsTheThreeVerdictsByTheirReportNames) {
  EXPECT_EQ(VerdictNamed("reproduced"), Verdict::kReproduced);
  EXPECT_EQ(VerdictNamed("not-reproduced"), Verdict::kNotReproduced);
  EXPECT_EQ(VerdictNamed("unexplained"), Verdict::kUnexplained);
  EXPECT_FALSE(VerdictNamed("flaky"));
  EXPECT_FALSE(VerdictNamed(""));
}

}  // namespace
}  // namespace wedge::cli
