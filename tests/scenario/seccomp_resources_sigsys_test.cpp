// Scenario tests for the docker CLI killed by SIGSYS under a systemd unit's
// `SystemCallFilter=~@privileged @resources` (seed 002; navidrome#1961; go.dev/issue/46279).
// They run the real wedge binary against a real private docker stack, as root.
#include <filesystem>
#include <string>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using testing::ReadJson;
using testing::RunWedge;
using testing::WedgeRun;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

class SeccompResourcesSigsys : public testing::ScenarioTest {};

TEST_F(SeccompResourcesSigsys, TheGo119CliIsKilledBySigsysOnSetrlimit) {
  nlohmann::json result = Run({(kScenarios / "seccomp-resources-sigsys.json").string()});
  EXPECT_EQ(result["verdict"], "reproduced");
  ASSERT_EQ(result["commands"].size(), 1u);
  const nlohmann::json& command = result["commands"][0];
  EXPECT_EQ(command["binary"], "/usr/bin/docker");
  EXPECT_EQ(command["killed_by"], "SIGSYS");
  EXPECT_EQ(command["refused_syscall"], "setrlimit");
  EXPECT_NE(command["audit_record"].get<std::string>().find("syscall="), std::string::npos);
  EXPECT_EQ(result["host_clean"], true);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(SeccompResourcesSigsys, TheGo124CliSurvivesTheSameFilter) {
  nlohmann::json result = Run({(kScenarios / "seccomp-resources-sigsys.json").string(), "--with",
                               "docker=/usr/local/bin/docker", "--expect", "not-reproduced"});
  EXPECT_EQ(result["verdict"], "not-reproduced");
  EXPECT_EQ(result["commands"][0]["binary"], "/usr/local/bin/docker");
  EXPECT_EQ(result["commands"][0]["exit_code"], 0);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(SeccompResourcesSigsys, WithSoftEqualToHardTheVerdictNamesTheFailedPrecondition) {
  nlohmann::json result =
      Run({(kScenarios / "seccomp-resources-sigsys-nofile-equal.json").string()});
  EXPECT_EQ(result["verdict"], "not-reproduced");
  EXPECT_NE(result["reason"].get<std::string>().find("precondition nofile-soft-below-hard failed"),
            std::string::npos)
      << result["reason"];
  EXPECT_EQ(result["preconditions"][0]["held"], false);
  // The control is honest only if the same Go 1.19 CLI really survived the filter: killed by
  // any other syscall it would still fail the precondition and still be "not-reproduced".
  ASSERT_EQ(result["commands"].size(), 1u);
  EXPECT_EQ(result["commands"][0]["binary"], "/usr/bin/docker");
  EXPECT_EQ(result["commands"][0]["exit_code"], 0) << result["commands"][0];
  EXPECT_FALSE(result["commands"][0].contains("killed_by") &&
               !result["commands"][0]["killed_by"].is_null())
      << result["commands"][0];
  testing::ExpectHostUnchanged(before_);
}

TEST_F(SeccompResourcesSigsys, VerifyPassesWhenTheCandidateCliRemovesTheSignature) {
  WedgeRun run = RunWedge({"verify", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--baseline", "docker=/usr/bin/docker", "--candidate",
                           "docker=/usr/local/bin/docker", "--repeat", "2"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("verify seccomp-resources-sigsys: PASS"), std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(SeccompResourcesSigsys, VerifyFailsWithTheDiffWhenTheCandidateStillReproduces) {
  WedgeRun run = RunWedge({"verify", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--baseline", "docker=/usr/local/bin/docker", "--candidate",
                           "docker=/usr/bin/docker", "--repeat", "1"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("baseline run 1 was not reproduced"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("candidate run 1 was not not-reproduced"), std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(SeccompResourcesSigsys, BisectFindsTheFirstCliThatSurvivesTheFilter) {
  WedgeRun run = RunWedge({"bisect", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--binary", "docker", "--candidates", "/usr/bin/docker",
                           "/usr/bin/docker", "/usr/local/bin/docker"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("first flip: candidate 3 (/usr/local/bin/docker) gives not-reproduced"),
            std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
