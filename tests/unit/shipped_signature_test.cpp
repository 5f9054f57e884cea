// The shipped scenarios' signatures, as scenarios/*.json states them, against recorded /proc
// trees read and labelled as a run reads and labels its sandbox, and decided by runner::Decide.
// The hashes are pinned: a change to frame normalisation, matching or hashing changes the hash
// every report of these scenarios carries, and must be made on purpose.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "wedge/probe/task.h"
#include "wedge/runner/decide.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"

namespace wedge {
namespace {

using scenario::Verdict;

const std::string kProc = std::string(WEDGE_TEST_DATA_DIR) + "/proc";

scenario::Scenario Shipped(const std::string& name) {
  auto loaded =
      scenario::LoadScenarioFile(std::string(WEDGE_SOURCE_DIR) + "/scenarios/" + name + ".json");
  if (auto* error = std::get_if<scenario::LoadError>(&loaded)) {
    ADD_FAILURE() << error->ToString();
    return {};
  }
  return std::get<scenario::Scenario>(std::move(loaded));
}

// What wait-for-stall captures of a stalled sandbox, from the recorded tree `tree`: the sandbox
// init and the spawned daemon, read with their pipes, labelled "sandbox-init" and with the spawn
// step's name.
signature::Observation StalledTeardown(const std::string& tree, pid_t init, pid_t daemon) {
  probe::TreeSnapshot snapshot =
      probe::ReadProcesses({init, daemon}, /*peek_pipes=*/true, kProc + "/" + tree);
  EXPECT_EQ(snapshot.processes.size(), 2U) << tree;
  for (probe::ProcessSnapshot& process : snapshot.processes) {
    process.label = process.pid == init ? "sandbox-init" : "daemon";
  }
  return signature::Observe(snapshot, /*all_exited=*/false);
}

// What wait-for-stall captures when every process of the sandbox exited: nothing to read.
signature::Observation TeardownCompleted() {
  return signature::Observe(probe::TreeSnapshot{}, /*all_exited=*/true);
}

runner::Decision Decided(const scenario::Scenario& scenario,
                         const signature::Observation& observation) {
  runner::RunFacts facts;
  facts.observation = observation;
  return runner::Decide(scenario, scenario.expected, facts);
}

// The seed 001 tree on 6.18 with the holding thread named as the FUSE fixture names it.
signature::Observation FuseStallAsTheFixtureNamesIt() {
  return StalledTeardown("seed001-6.18-fuse-holder", 4100, 4117);
}

TEST(ShippedFuseTeardownSignature, MatchesTheRecordedStalledTeardown) {
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const signature::Observation stalled = FuseStallAsTheFixtureNamesIt();
  const signature::MatchResult bug = signature::Match(fuse.bug, stalled);
  EXPECT_TRUE(bug.matched);
  EXPECT_TRUE(bug.mismatches.empty());
  ASSERT_EQ(bug.bound.size(), 3U);
  EXPECT_EQ(bug.bound[0].first, "pidns-init");
  EXPECT_EQ(bug.bound[0].second.tid, 4100);
  EXPECT_EQ(bug.bound[1].first, "daemon-leader");
  EXPECT_EQ(bug.bound[1].second.tid, 4117);
  EXPECT_EQ(bug.bound[2].first, "stuck-thread");
  EXPECT_EQ(bug.bound[2].second.tid, 4119);
  EXPECT_EQ(bug.bound[2].second.comm, "fuse-holder");
  // The roles' states, stacks up to do_exit and pending signals, not the pids or offsets.
  EXPECT_EQ(signature::Hash(bug, stalled), "1c74d05d30d36cd6");
}

TEST(ShippedFuseTeardownSignature, HealthyDoesNotMatchTheStalledTeardown) {
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const signature::MatchResult healthy =
      signature::Match(fuse.healthy, FuseStallAsTheFixtureNamesIt());
  EXPECT_FALSE(healthy.matched);
  ASSERT_EQ(healthy.mismatches.size(), 1U);
  EXPECT_EQ(healthy.mismatches[0].field, "all_exited");
}

TEST(ShippedFuseTeardownSignature, TheRunnerDecidesReproducedWithThePinnedHash) {
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const runner::Decision decision = Decided(fuse, FuseStallAsTheFixtureNamesIt());
  EXPECT_EQ(decision.verdict, Verdict::kReproduced);
  EXPECT_EQ(decision.verdict, fuse.expected);
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kBug);
  EXPECT_EQ(decision.signature_hash, "1c74d05d30d36cd6");
}

TEST(ShippedFuseTeardownSignature, TheStuckThreadIsSelectedByTheFixturesThreadName) {
  // The tree as recorded keeps the process's name (wedge-fuse) on the holding thread, so the
  // selector's comm finds no stuck thread there: the name is part of the signature.
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const signature::MatchResult bug =
      signature::Match(fuse.bug, StalledTeardown("seed001-6.18", 4100, 4117));
  EXPECT_FALSE(bug.matched);
  ASSERT_EQ(bug.mismatches.size(), 1U);
  EXPECT_EQ(bug.mismatches[0].role, "stuck-thread");
  EXPECT_EQ(bug.mismatches[0].field, "task");
}

TEST(ShippedFuseTeardownSignature, TheCompletedTeardownIsHealthyNotTheBug) {
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const signature::Observation completed = TeardownCompleted();
  EXPECT_FALSE(signature::Match(fuse.bug, completed).matched);
  const signature::MatchResult healthy = signature::Match(fuse.healthy, completed);
  EXPECT_TRUE(healthy.matched);
  EXPECT_EQ(signature::Hash(healthy, completed), "8fb2a205fe7c821a");  // of "all-exited"
}

TEST(ShippedFuseNoHolderControl, TheCompletedTeardownIsDecidedNotReproducedWithThePinnedHash) {
  // No recorded tree exists for a completed teardown: a run that sees every process exit reads
  // nothing, so what it observes is the empty capture with all_exited set.
  const scenario::Scenario control = Shipped("fuse-flush-pidns-teardown-no-holder");
  const signature::Observation completed = TeardownCompleted();
  const signature::MatchResult healthy = signature::Match(control.healthy, completed);
  EXPECT_TRUE(healthy.matched);
  EXPECT_EQ(signature::Hash(healthy, completed), "8fb2a205fe7c821a");
  const runner::Decision decision = Decided(control, completed);
  EXPECT_EQ(decision.verdict, Verdict::kNotReproduced);
  EXPECT_EQ(decision.verdict, control.expected);
  EXPECT_EQ(decision.decisive, report::DecisiveSignature::kHealthy);
  EXPECT_EQ(decision.signature_hash, "8fb2a205fe7c821a");
}

TEST(ShippedFuseNoHolderControl, SharesTheBugSignatureAndItsHashOnTheStalledTeardown) {
  // Were the control to stall as the holder scenario does, it would report the same bug.
  const scenario::Scenario control = Shipped("fuse-flush-pidns-teardown-no-holder");
  const signature::Observation stalled = FuseStallAsTheFixtureNamesIt();
  const signature::MatchResult bug = signature::Match(control.bug, stalled);
  EXPECT_TRUE(bug.matched);
  EXPECT_EQ(signature::Hash(bug, stalled), "1c74d05d30d36cd6");
  EXPECT_FALSE(signature::Match(control.healthy, stalled).matched);
}

TEST(ShippedFuseTeardownSignature, DoesNotMatchAShellWaitingForItsChild) {
  // A tree that shows no bug, recorded on 6.18: sh in sigsuspend, its sleep in nanosleep.
  const scenario::Scenario fuse = Shipped("fuse-flush-pidns-teardown");
  const signature::Observation shell = StalledTeardown("shell-sleep-6.18", 9988, 9989);
  EXPECT_FALSE(signature::Match(fuse.bug, shell).matched);
  EXPECT_FALSE(signature::Match(fuse.healthy, shell).matched);
}

}  // namespace
}  // namespace wedge
