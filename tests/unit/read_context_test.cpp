// Tests of what the scenario loader's kind readers share: the ReadContext helpers, and kind
// readers called on their own against a context, as the loader's tables call them.
#include "wedge/scenario/read_context.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "wedge/kinds/kinds.h"

namespace wedge::scenario {
namespace {

using reader::Failure;
using reader::Node;

// Runs `read`, which must refuse; returns its Failure.
template <typename Read>
Failure Refusal(Read read) {
  try {
    read();
  } catch (const Failure& failure) {
    return failure;
  }
  ADD_FAILURE() << "accepted, but a refusal was expected";
  return Failure{};
}

// A context over `text`, whose root is the document being read.
struct Reading {
  explicit Reading(std::string_view text) : json(Json::parse(text)), context(json) {}
  Node At(std::string_view key) const { return context.root.Child(key); }
  Json json;
  ReadContext context;
};

TEST(ReadRlimits, ReadsLimitsInNameOrderWithUnlimitedAsRlimInfinity) {
  Reading reading(R"({"r": {"RLIMIT_NPROC": {"soft": 1, "hard": "unlimited"},
                           "RLIMIT_NOFILE": {"soft": 10, "hard": 20}}})");
  std::vector<Rlimit> rlimits = ReadRlimits(reading.At("r"));
  ASSERT_EQ(rlimits.size(), 2u);
  EXPECT_EQ(rlimits[0].name, "RLIMIT_NOFILE");
  EXPECT_EQ(rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(rlimits[0].soft, 10u);
  EXPECT_EQ(rlimits[1].name, "RLIMIT_NPROC");
  EXPECT_EQ(rlimits[1].hard, static_cast<std::uint64_t>(RLIM_INFINITY));
}

TEST(ReadRlimits, RefusesASoftLimitAboveTheHardOneAtTheSoftValue) {
  Reading reading(R"({"r": {"RLIMIT_NOFILE": {"soft": 30, "hard": 20}}})");
  Failure failure = Refusal([&] { ReadRlimits(reading.At("r")); });
  EXPECT_EQ(failure.pointer, "/r/RLIMIT_NOFILE/soft");
  EXPECT_EQ(failure.message, "soft limit 30 is above the hard limit 20");
}

TEST(ReadContext, KnowsOnlySandboxInitBeforeAnyStep) {
  Reading reading("{}");
  EXPECT_EQ(reading.context.KnownLabels(), "\"sandbox-init\"");
}

TEST(ReadContext, RefusesAContainerStartedByTheCommandItself) {
  Reading reading(R"({"container": "victim"})");
  reading.context.commands["start"] = {"/steps/0", 0};
  reading.context.containers["victim"] = "start";
  Failure failure = Refusal(
      [&] { reading.context.ReadContainerStartedBefore(reading.At("container"), "start"); });
  EXPECT_EQ(failure.pointer, "/container");
  EXPECT_EQ(
      failure.message,
      "the container \"victim\" is started by \"start\", which does not run before \"start\"");
}

TEST(ReadContext, AcceptsAContainerStartedByAnEarlierCommand) {
  Reading reading(R"({"container": "victim"})");
  reading.context.commands["start"] = {"/steps/0", 0};
  reading.context.commands["exec"] = {"/steps/1", 1};
  reading.context.containers["victim"] = "start";
  EXPECT_EQ(reading.context.ReadContainerStartedBefore(reading.At("container"), "exec"), "victim");
}

TEST(KindReaders, AKillTargetsOnlyAProcessSpawnedBeforeIt) {
  Reading reading(R"({"spawn": {"action": "spawn", "name": "daemon", "fixture": "fuse"},
                      "kill": {"action": "kill", "target": "daemon", "signal": "SIGKILL"}})");
  reading.context.scenario.fixtures.push_back(Fixture{"fuse", FuseDaemonFixture{}});
  Failure failure = Refusal([&] { kinds::ReadKillStep(reading.At("kill"), reading.context); });
  EXPECT_EQ(failure.pointer, "/kill/target");
  EXPECT_EQ(failure.message,
            "no process named \"daemon\" is spawned before this step; known: \"sandbox-init\"");

  SpawnStep spawn = kinds::ReadSpawnStep(reading.At("spawn"), reading.context);
  EXPECT_EQ(spawn.name, "daemon");
  EXPECT_EQ(reading.context.spawned_by.at("daemon"), "/spawn");
  EXPECT_EQ(reading.context.fixture_spawned_by.at("fuse"), "/spawn");
  KillStep kill = kinds::ReadKillStep(reading.At("kill"), reading.context);
  EXPECT_EQ(kill.target, "daemon");
  EXPECT_EQ(kill.signal, SIGKILL);
}

TEST(KindReaders, WaitForStallMustBeTheLastOfTheDocumentsSteps) {
  Reading reading(R"({"step": {"action": "wait-for-stall"}})");
  reading.context.step_count = 2;
  Failure failure =
      Refusal([&] { kinds::ReadWaitForStallStep(reading.At("step"), reading.context); });
  EXPECT_EQ(failure.pointer, "/step");
  EXPECT_EQ(failure.message, "\"wait-for-stall\" must be the last step (at most one per scenario)");

  reading.context.step_count = 1;
  kinds::ReadWaitForStallStep(reading.At("step"), reading.context);
  EXPECT_TRUE(reading.context.has_wait_for_stall);
}

TEST(KindReaders, ARunCommandRecordsItsNameAndTheContainersItStarts) {
  Reading reading(R"({"step": {"action": "run-command", "name": "start", "binary": "docker",
                               "args": ["run", "--name=victim", "${image}"]}})");
  reading.context.scenario.stack.required = true;
  Step step = kinds::ReadRunCommandStep(reading.At("step"), reading.context);
  ASSERT_TRUE(std::holds_alternative<RunCommandStep>(step));
  EXPECT_EQ(reading.context.commands.at("start").pointer, "/step");
  EXPECT_EQ(reading.context.containers.at("victim"), "start");
}

TEST(KindReaders, DrainPipesNeedsAWatch) {
  Reading reading(R"({"action": "drain-pipes"})");
  Failure failure = Refusal([&] { kinds::ReadDrainPipes(reading.At("action"), reading.context); });
  EXPECT_EQ(failure.pointer, "/action");
  reading.context.watch_pointer = "/steps/1/watch";
  kinds::ReadDrainPipes(reading.At("action"), reading.context);
}

TEST(KindReaders, AnRlimitPreconditionTheFileFailsIsRecordedForTheExpectation) {
  Reading reading(R"({"step": {"action": "run-command", "name": "start", "binary": "docker",
                               "confinement": {"rlimits":
                                   {"RLIMIT_NOFILE": {"soft": 20, "hard": 20}}}},
                      "precondition": {"name": "nofile-soft-below-hard",
                                       "kind": "rlimit-soft-below-hard", "command": "start",
                                       "rlimit": "RLIMIT_NOFILE", "why": "the bug needs it"}})");
  reading.context.scenario.stack.required = true;
  reading.context.scenario.steps.push_back(
      kinds::ReadRunCommandStep(reading.At("step"), reading.context));
  Precondition precondition =
      kinds::ReadRlimitSoftBelowHardPrecondition(reading.At("precondition"), reading.context);
  EXPECT_EQ(precondition.command, "start");
  EXPECT_TRUE(std::holds_alternative<RlimitSoftBelowHard>(precondition.check));
  EXPECT_EQ(reading.context.failed_precondition, "/precondition");
  EXPECT_EQ(reading.context.failed_precondition_detail,
            "RLIMIT_NOFILE of \"start\" is 20:20, soft not below hard");
}

}  // namespace
}  // namespace wedge::scenario
