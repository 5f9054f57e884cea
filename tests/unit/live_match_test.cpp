#include "wedge/signature/live_match.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "wedge/scenario/scenario.h"

namespace wedge::signature {
namespace {

using probe::TreeSnapshot;

const std::string kProc = std::string(WEDGE_TEST_DATA_DIR) + "/proc";

// A recorded tree read as `wedge match ROOT` reads a live one: the root and its descendants.
TreeSnapshot RecordedTree(const std::string& tree, pid_t root) {
  const std::string proc_root = kProc + "/" + tree;
  return probe::ReadProcesses(probe::ListDescendants(root, proc_root), false, proc_root);
}

// The seed 001 teardown on 6.18, with the holding thread named as wedge-fuse names it
// ("fuse-holder"); the recording keeps the process's name on every thread.
TreeSnapshot FuseTeardownAsWedgeFuseShowsIt() {
  TreeSnapshot tree = RecordedTree("seed001-6.18", 4100);
  for (auto& process : tree.processes) {
    for (auto& task : process.tasks) {
      if (task.tid != 4119) continue;
      task.status.name = "fuse-holder";
      task.stat.comm = "fuse-holder";
    }
  }
  return tree;
}

// The bug signatures of the shipped scenarios, in directory order, as `wedge match` passes them.
std::vector<KnownSignature> ShippedSignatures() {
  std::vector<KnownSignature> known;
  for (const auto& file :
       scenario::ExpandScenarioPaths(std::string(WEDGE_SOURCE_DIR) + "/scenarios")) {
    auto loaded = scenario::LoadScenarioFile(file);
    EXPECT_TRUE(std::holds_alternative<scenario::Scenario>(loaded)) << file;
    if (!std::holds_alternative<scenario::Scenario>(loaded)) continue;
    const auto& scenario = std::get<scenario::Scenario>(loaded);
    known.push_back(
        {scenario.name, scenario.bug, scenario.expected == scenario::Verdict::kReproduced});
  }
  return known;
}

// A signature of `total` task expectations of which the seed 001 tree satisfies the first
// `satisfied` (at most 3: the init asleep, the daemon's zombie leader, its thread in D); the
// others select a thread no tree has.
Signature SatisfiedBySeed001(const std::string& description, size_t satisfied, size_t total) {
  Signature signature;
  signature.description = description;
  for (size_t i = 0; i < total; ++i) {
    TaskExpectation task;
    task.role = "role-" + std::to_string(i);
    if (i >= satisfied) {
      task.select.comm = "no-such-thread";
    } else if (i == 0) {
      task.select = {"sandbox-init", "", TaskSelector::Thread::kLeader};
      task.states = {'S'};
    } else {
      const bool leader = i == 1;
      task.select = {"daemon", "",
                     leader ? TaskSelector::Thread::kLeader : TaskSelector::Thread::kNonLeader};
      task.states = {leader ? 'Z' : 'D'};
    }
    signature.tasks.push_back(task);
  }
  return signature;
}

TEST(MatchLiveTree, NamesTheFuseTeardownScenarioForARecordedTeardownTree) {
  const TreeSnapshot tree = FuseTeardownAsWedgeFuseShowsIt();
  ASSERT_EQ(tree.processes.size(), 2U);
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, ShippedSignatures());
  ASSERT_FALSE(matches.empty());
  EXPECT_EQ(matches[0].name, "fuse-flush-pidns-teardown");
  EXPECT_TRUE(matches[0].complete());
  EXPECT_EQ(matches[0].satisfied, 3U);
  EXPECT_EQ(matches[0].total, 3U);
  ASSERT_EQ(matches[0].match.bound.size(), 3U);
  EXPECT_EQ(matches[0].match.bound[0].first, "pidns-init");
  EXPECT_EQ(matches[0].match.bound[0].second.tid, 4100);
  EXPECT_EQ(matches[0].match.bound[1].first, "daemon-leader");
  EXPECT_EQ(matches[0].match.bound[1].second.tid, 4117);
  EXPECT_EQ(matches[0].match.bound[2].first, "stuck-thread");
  EXPECT_EQ(matches[0].match.bound[2].second.tid, 4119);
  // The same deadlock as a container shows it matches too, after the sandbox's; nothing else.
  ASSERT_GE(matches.size(), 2U);
  EXPECT_EQ(matches[1].name, "fuse-flush-docker-kill");
  EXPECT_TRUE(matches[1].complete());
  for (size_t i = 2; i < matches.size(); ++i) {
    EXPECT_FALSE(matches[i].complete()) << matches[i].name;
  }
}

TEST(MatchLiveTree, NamesTheDockerKillScenarioForARecordedContainerTree) {
  // Recorded under fuse-flush-docker-kill's deadlock: the shim 12407, docker-init 12429 in
  // zap_pid_ns_processes, the daemon 12460 a zombie with its holder 12461 in fuse_flush.
  const TreeSnapshot tree = RecordedTree("seed001-6.18-docker", 12407);
  ASSERT_EQ(tree.processes.size(), 3U);
  const std::vector<LiveMatch> matches =
      MatchLiveTree(tree, ShippedSignatures(), LiveTree::kContainer);
  ASSERT_FALSE(matches.empty());
  EXPECT_EQ(matches[0].name, "fuse-flush-docker-kill");
  EXPECT_TRUE(matches[0].complete());
  ASSERT_EQ(matches[0].match.bound.size(), 3U);
  EXPECT_EQ(matches[0].match.bound[0].second.tid, 12429);
  EXPECT_EQ(matches[0].match.bound[1].second.tid, 12460);
  EXPECT_EQ(matches[0].match.bound[2].second.tid, 12461);
  // Its commands are not in a live tree, and not reported as differences.
  EXPECT_TRUE(matches[0].match.mismatches.empty());
  // The sandbox's signature needs the root to be the pid namespace's init: here it is the shim.
  for (size_t i = 1; i < matches.size(); ++i) {
    EXPECT_FALSE(matches[i].complete()) << matches[i].name;
  }
}

TEST(MatchLiveTree, PutsTheSignaturesOfTheTreesKindFirstAmongEqualMatches) {
  // The sandbox's tree shows the same deadlock as the container's: both match it completely,
  // and which comes first is the kind of tree wedge was pointed at.
  const TreeSnapshot tree = FuseTeardownAsWedgeFuseShowsIt();
  EXPECT_EQ(MatchLiveTree(tree, ShippedSignatures(), LiveTree::kProcesses)[0].name,
            "fuse-flush-pidns-teardown");
  const std::vector<LiveMatch> as_container =
      MatchLiveTree(tree, ShippedSignatures(), LiveTree::kContainer);
  EXPECT_EQ(as_container[0].name, "fuse-flush-docker-kill");
  EXPECT_TRUE(as_container[0].complete());
}

TEST(MatchLiveTree, ListsASignatureItsControlSharesOnceUnderTheScenarioThatReproducesIt) {
  const std::vector<LiveMatch> matches =
      MatchLiveTree(FuseTeardownAsWedgeFuseShowsIt(), ShippedSignatures());
  size_t fuse_teardowns = 0;
  for (const auto& match : matches) {
    EXPECT_NE(match.name, "fuse-flush-pidns-teardown-no-holder");
    if (match.name == "fuse-flush-pidns-teardown") ++fuse_teardowns;
  }
  EXPECT_EQ(fuse_teardowns, 1U);
}

TEST(MatchLiveTree, LeavesOutSignaturesThatExpectNoTask) {
  const std::vector<KnownSignature> known = ShippedSignatures();
  const std::vector<LiveMatch> matches = MatchLiveTree(FuseTeardownAsWedgeFuseShowsIt(), known);
  for (const auto& match : matches) {
    EXPECT_FALSE(known[match.candidate].bug.tasks.empty()) << match.name;
    EXPECT_EQ(known[match.candidate].name, match.name);
  }
  // seccomp-resources-sigsys's bug is a command killed by SIGSYS: nothing a live tree shows.
  for (const auto& match : matches) EXPECT_NE(match.name, "seccomp-resources-sigsys");
}

TEST(MatchLiveTree, ReportsTheClosestLabellingWhenOneRoleDiffers) {
  // As recorded, the stuck thread is named wedge-fuse, not fuse-holder: 2 of 3 roles.
  const std::vector<LiveMatch> matches =
      MatchLiveTree(RecordedTree("seed001-6.18", 4100), ShippedSignatures());
  ASSERT_FALSE(matches.empty());
  EXPECT_EQ(matches[0].name, "fuse-flush-pidns-teardown");
  EXPECT_FALSE(matches[0].complete());
  EXPECT_EQ(matches[0].satisfied, 2U);
  ASSERT_FALSE(matches[0].match.mismatches.empty());
  EXPECT_EQ(matches[0].match.mismatches[0].role, "stuck-thread");
}

TEST(MatchLiveTree, NamesNothingForAnUnrelatedTree) {
  // A shell waiting for its sleeping child, recorded on 6.18.
  const TreeSnapshot tree = RecordedTree("shell-sleep-6.18", 9988);
  ASSERT_EQ(tree.processes.size(), 2U);
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, ShippedSignatures());
  EXPECT_FALSE(matches.empty());
  for (const auto& match : matches) {
    EXPECT_FALSE(match.complete()) << match.name;
    EXPECT_LT(match.satisfied, match.total) << match.name;
  }
}

TEST(MatchLiveTree, SortsByTheShareOfRolesSatisfiedAndKeepsTheGivenOrderOnTies) {
  const TreeSnapshot tree = RecordedTree("seed001-6.18", 4100);
  const std::vector<KnownSignature> known = {
      {"half-of-two", SatisfiedBySeed001("a", 1, 2), true},
      {"none-of-one", SatisfiedBySeed001("b", 0, 1), true},
      {"two-of-four", SatisfiedBySeed001("c", 2, 4), true},
      {"all-of-three", SatisfiedBySeed001("d", 3, 3), true},
  };
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, known);
  ASSERT_EQ(matches.size(), 4U);
  std::vector<std::string> names;
  for (const auto& match : matches) names.push_back(match.name);
  EXPECT_EQ(names, (std::vector<std::string>{"all-of-three", "half-of-two", "two-of-four",
                                             "none-of-one"}));
  EXPECT_EQ(matches[2].satisfied, 2U);
  EXPECT_EQ(matches[2].total, 4U);
}

TEST(MatchLiveTree, PutsScenariosThatExpectTheBugFirstAmongEqualMatches) {
  const TreeSnapshot tree = RecordedTree("seed001-6.18", 4100);
  const std::vector<KnownSignature> known = {
      {"control", SatisfiedBySeed001("a", 1, 1), false},
      {"first", SatisfiedBySeed001("b", 1, 1), true},
      {"second", SatisfiedBySeed001("c", 1, 1), true},
  };
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, known);
  ASSERT_EQ(matches.size(), 3U);
  EXPECT_EQ(matches[0].name, "first");
  EXPECT_EQ(matches[0].candidate, 1U);
  EXPECT_EQ(matches[1].name, "second");
  EXPECT_EQ(matches[2].name, "control");
  EXPECT_EQ(matches[2].candidate, 0U);
}

TEST(MatchLiveTree, ASharedSignatureGoesToTheFirstThatExpectsTheBugElseTheFirst) {
  const TreeSnapshot tree = RecordedTree("seed001-6.18", 4100);
  const Signature shared = SatisfiedBySeed001("shared", 1, 1);
  EXPECT_EQ(MatchLiveTree(tree, {{"control", shared, false}, {"bug", shared, true}})[0].name,
            "bug");
  const std::vector<LiveMatch> controls =
      MatchLiveTree(tree, {{"control-1", shared, false}, {"control-2", shared, false}});
  ASSERT_EQ(controls.size(), 1U);
  EXPECT_EQ(controls[0].name, "control-1");
}

TEST(MatchLiveTree, TriesNoLabellingWhenTheTreeHasFewerProcessesThanLabels) {
  // The fuse teardown signature labels one process besides the root; the root alone has none.
  TreeSnapshot tree = FuseTeardownAsWedgeFuseShowsIt();
  tree.processes.resize(1);
  std::vector<KnownSignature> known;
  for (auto& candidate : ShippedSignatures()) {
    if (candidate.name == "fuse-flush-pidns-teardown") known.push_back(candidate);
  }
  ASSERT_EQ(known.size(), 1U);
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, known);
  ASSERT_EQ(matches.size(), 1U);
  EXPECT_EQ(matches[0].satisfied, 0U);
  EXPECT_EQ(matches[0].total, 3U);
  EXPECT_TRUE(matches[0].match.bound.empty());
  EXPECT_TRUE(matches[0].match.mismatches.empty());
}

TEST(MatchLiveTree, IgnoresLabelsTheTreeAlreadyCarries) {
  TreeSnapshot tree = FuseTeardownAsWedgeFuseShowsIt();
  for (auto& process : tree.processes) process.label = "daemon";
  const std::vector<LiveMatch> matches = MatchLiveTree(tree, ShippedSignatures());
  ASSERT_FALSE(matches.empty());
  EXPECT_EQ(matches[0].name, "fuse-flush-pidns-teardown");
  EXPECT_TRUE(matches[0].complete());
}

}  // namespace
}  // namespace wedge::signature
