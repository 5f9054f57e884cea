// runner::Decide: the verdict rule, on every path, from constructed observations.
#include "wedge/runner/decide.h"

#include <gtest/gtest.h>

namespace wedge::runner {
namespace {

using scenario::Verdict;

// A scenario whose bug is "the CLI was killed by SIGSYS" and whose health is "it exited 0".
scenario::Scenario CommandScenario() {
  scenario::Scenario scenario;
  scenario.name = "sigsys";
  signature::CommandExpectation killed;
  killed.command = "cli";
  killed.killed_by = "SIGSYS";
  scenario.bug.description = "the CLI is killed by SIGSYS";
  scenario.bug.commands.push_back(killed);
  signature::CommandExpectation exited;
  exited.command = "cli";
  exited.exit_code = 0;
  scenario.healthy.description = "the CLI exits 0";
  scenario.healthy.commands.push_back(exited);
  scenario.stall.timeout_ms = 1234;
  return scenario;
}

signature::Observation Ran(std::optional<int> exit_code, std::optional<std::string> killed_by) {
  signature::Observation observation;
  signature::ObservedCommand command;
  command.command = "cli";
  command.exit_code = exit_code;
  command.killed_by = std::move(killed_by);
  observation.commands.push_back(command);
  return observation;
}

report::PreconditionResult Precondition(std::string name, bool held) {
  report::PreconditionResult result;
  result.name = std::move(name);
  result.held = held;
  result.detail = "RLIMIT_NOFILE of cli is 4096:4096";
  result.why = "Go's os init raises the soft limit";
  return result;
}

TEST(Decide, BugMatchIsReproducedAndHashesTheBugMatch) {
  RunFacts facts;
  facts.observation = Ran(std::nullopt, "SIGSYS");
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kReproduced);
  EXPECT_EQ(decision.reason, "the bug signature matched: the CLI is killed by SIGSYS");
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kBug);
  EXPECT_TRUE(decision.bug_match.matched);
  EXPECT_FALSE(decision.healthy_match.matched);
  EXPECT_EQ(decision.signature_hash, signature::Hash(decision.bug_match, *facts.observation));
  EXPECT_EQ(decision.signature_hash.size(), 16u);
}

TEST(Decide, HealthyMatchIsNotReproducedAndHashesTheHealthyMatch) {
  RunFacts facts;
  facts.observation = Ran(0, std::nullopt);
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kNotReproduced);
  EXPECT_EQ(decision.reason, "the healthy signature matched: the CLI exits 0");
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kHealthy);
  EXPECT_EQ(decision.signature_hash, signature::Hash(decision.healthy_match, *facts.observation));
  EXPECT_NE(decision.signature_hash,
            Decide(CommandScenario(), Verdict::kReproduced,
                   RunFacts{Ran(std::nullopt, "SIGSYS"), {}, false, std::nullopt})
                .signature_hash);
}

TEST(Decide, FailedPreconditionIsNotReproducedNamingTheFirstThatFailed) {
  RunFacts facts;
  facts.observation = Ran(0, std::nullopt);
  facts.preconditions = {Precondition("held-one", true),
                         Precondition("nofile-soft-below-hard", false),
                         Precondition("second-failure", false)};
  Decision decision = Decide(CommandScenario(), Verdict::kNotReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kNotReproduced);
  EXPECT_EQ(decision.reason,
            "precondition nofile-soft-below-hard failed: RLIMIT_NOFILE of cli is 4096:4096; the "
            "bug needs it: Go's os init raises the soft limit");
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kHealthy);
}

TEST(Decide, FailedPreconditionWinsEvenWhenNeitherSignatureMatched) {
  RunFacts facts;
  facts.observation = Ran(3, std::nullopt);  // neither killed nor exit 0
  facts.preconditions = {Precondition("nofile-soft-below-hard", false)};
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kNotReproduced);
  EXPECT_EQ(decision.reason.rfind("precondition nofile-soft-below-hard failed", 0), 0u);
}

TEST(Decide, BugMatchWinsOverAFailedPrecondition) {
  // The precondition says the bug cannot fire; if it did anyway, that is what the run shows.
  RunFacts facts;
  facts.observation = Ran(std::nullopt, "SIGSYS");
  facts.preconditions = {Precondition("nofile-soft-below-hard", false)};
  EXPECT_EQ(Decide(CommandScenario(), Verdict::kNotReproduced, facts).verdict,
            Verdict::kReproduced);
}

TEST(Decide, NeitherMatchIsUnexplainedWithBothDiffsAndTheExpectedSignatureDecisive) {
  RunFacts facts;
  facts.observation = Ran(3, std::nullopt);
  Decision expected_bug = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(expected_bug.verdict, Verdict::kUnexplained);
  EXPECT_EQ(expected_bug.reason, "neither the bug nor the healthy signature matched");
  ASSERT_EQ(expected_bug.bug_match.mismatches.size(), 1u);
  EXPECT_EQ(expected_bug.bug_match.mismatches[0].field, "killed_by");
  ASSERT_EQ(expected_bug.healthy_match.mismatches.size(), 1u);
  EXPECT_EQ(expected_bug.healthy_match.mismatches[0].field, "exit_code");
  EXPECT_EQ(expected_bug.decisive, report::DecisiveSignature::kBug);
  EXPECT_EQ(expected_bug.signature_hash,
            signature::Hash(expected_bug.bug_match, *facts.observation));

  Decision expected_healthy = Decide(CommandScenario(), Verdict::kNotReproduced, facts);
  EXPECT_EQ(expected_healthy.verdict, Verdict::kUnexplained);
  EXPECT_EQ(expected_healthy.decisive, report::DecisiveSignature::kHealthy);
  EXPECT_EQ(expected_healthy.signature_hash,
            signature::Hash(expected_healthy.healthy_match, *facts.observation));
}

TEST(Decide, StallTimeoutIsUnexplainedNamingTheBound) {
  RunFacts facts;
  facts.observation = Ran(3, std::nullopt);
  facts.stall_timed_out = true;
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kUnexplained);
  EXPECT_EQ(decision.reason, "the sandbox neither stalled nor exited within 1234 ms");
}

TEST(Decide, RunErrorBeforeObservingIsUnexplainedWithNoMatchAndNoHash) {
  RunFacts facts;
  facts.error = "starting the private docker stack: dockerd exited";
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kUnexplained);
  EXPECT_EQ(decision.reason, "the run failed: starting the private docker stack: dockerd exited");
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kNone);
  EXPECT_TRUE(decision.bug_match.mismatches.empty());
  EXPECT_TRUE(decision.healthy_match.mismatches.empty());
  EXPECT_TRUE(decision.signature_hash.empty());
}

TEST(Decide, RunErrorAfterTheMatchMakesEvenAReproductionUnexplained) {
  RunFacts facts;
  facts.observation = Ran(std::nullopt, "SIGSYS");
  facts.error = "interrupted by SIGINT";
  Decision decision = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(decision.verdict, Verdict::kUnexplained);
  EXPECT_EQ(decision.reason, "the run failed: interrupted by SIGINT");
  EXPECT_TRUE(decision.bug_match.matched);  // still shown: what it saw before it failed
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kBug);
  EXPECT_FALSE(decision.signature_hash.empty());
}

TEST(Decide, IsAPureFunctionOfItsInputs) {
  RunFacts facts;
  facts.observation = Ran(std::nullopt, "SIGSYS");
  Decision first = Decide(CommandScenario(), Verdict::kReproduced, facts);
  Decision second = Decide(CommandScenario(), Verdict::kReproduced, facts);
  EXPECT_EQ(first.verdict, second.verdict);
  EXPECT_EQ(first.reason, second.reason);
  EXPECT_EQ(first.signature_hash, second.signature_hash);
}

}  // namespace
}  // namespace wedge::runner
