// Scenario tests for the runc exec pipe-full hang (seed 003): docker exec never returns when
// runc init, its pids cgroup full, crashes and blocks writing its Go crash dump into a stderr
// pipe that containerd-shim reads only after runc exits. They run the real wedge binary against
// a real private docker stack (docker.io, containerd, runc 1.1.5), as root.
#include <filesystem>
#include <set>
#include <string>

#include "scenario_test_support.h"
#include "wedge/sys/sysctl.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";
std::string PipeUserPagesSoft() {
  Result<std::string> value = sys::ReadSysctl("fs.pipe-user-pages-soft");
  return value.ok() ? *value : "(unreadable)";
}

// Container cgroups docker made under any wedge-docker-* parent: pids.max lives there, and it
// goes with them.
std::set<std::string> DockerCgroups() {
  std::set<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup/pids", ec)) {
    if (entry.path().filename().string().rfind("wedge-docker-", 0) == 0) {
      found.insert(entry.path().string());
    }
  }
  return found;
}

const nlohmann::json* Precondition(const nlohmann::json& result, const std::string& name) {
  for (const auto& precondition : result["preconditions"]) {
    if (precondition["name"] == name) return &precondition;
  }
  return nullptr;
}

const nlohmann::json* Command(const nlohmann::json& result, const std::string& name) {
  for (const auto& command : result["commands"]) {
    if (command["command"] == name) return &command;
  }
  return nullptr;
}

class RuncExecPipeFull : public testing::ScenarioTest {
 protected:
  void SetUp() override {
    testing::ScenarioTest::SetUp();
    if (IsSkipped()) return;
    sysctl_before_ = PipeUserPagesSoft();
    docker_cgroups_before_ = DockerCgroups();
  }
  // What the issue asks of every run: the global sysctl and the container's pids.max are back.
  void ExpectKnobsRestored(int run) {
    EXPECT_EQ(PipeUserPagesSoft(), sysctl_before_) << "run " << run;
    EXPECT_EQ(DockerCgroups(), docker_cgroups_before_) << "run " << run;
  }
  std::string sysctl_before_;
  std::set<std::string> docker_cgroups_before_;
};

TEST_F(RuncExecPipeFull, TheSeedsTriggerGivesTheSameHonestVerdictThreeRunsInARow) {
  std::set<std::string> hashes;
  for (int run = 1; run <= 3; ++run) {
    nlohmann::json result = Run({(kScenarios / "runc-exec-pipe-full.json").string()});
    EXPECT_EQ(result["verdict"], "not-reproduced") << "run " << run << ": " << result["reason"];
    hashes.insert(result["signature_hash"].get<std::string>());
    EXPECT_TRUE(result["injections"].empty()) << result["injections"];
    // The reason names a failed precondition, with its evidence.
    EXPECT_NE(result["reason"].get<std::string>().find("precondition "), std::string::npos)
        << result["reason"];
    const nlohmann::json* pids = Precondition(result, "pids-limit-refuses-runc-init-threads");
    ASSERT_NE(pids, nullptr) << result["preconditions"];
    EXPECT_EQ((*pids)["held"], false) << (*pids)["detail"];
    EXPECT_NE((*pids)["detail"].get<std::string>().find("(pids.max 1)"), std::string::npos)
        << (*pids)["detail"];
    const nlohmann::json* pipe = Precondition(result, "exec-stderr-pipe-one-page");
    ASSERT_NE(pipe, nullptr) << result["preconditions"];
    EXPECT_EQ((*pipe)["held"], false) << (*pipe)["detail"];
    const std::string pipe_detail = (*pipe)["detail"];
    EXPECT_NE(pipe_detail.find("holds 65536 bytes"), std::string::npos) << pipe_detail;
    EXPECT_NE(pipe_detail.find("CAP_SYS_ADMIN"), std::string::npos) << pipe_detail;
    // The exec itself: it returned, so nothing was captured and nothing needed draining.
    const nlohmann::json* exec = Command(result, "exec");
    ASSERT_NE(exec, nullptr);
    EXPECT_EQ((*exec)["exit_code"], 0) << (*exec)["output"];
    EXPECT_EQ((*exec)["running_at_capture"], false);
    EXPECT_EQ(result["host_clean"], true) << result["host_leftovers"];
    ExpectKnobsRestored(run);
  }
  EXPECT_EQ(hashes.size(), 1u) << ::testing::PrintToString(hashes);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(RuncExecPipeFull, WithOnlyTheTriggerPinnedTheDumpFitsTheShimsPipeAndExecFailsFast) {
  nlohmann::json result = Run({(kScenarios / "runc-exec-pipe-full-trigger-pinned.json").string()});
  EXPECT_EQ(result["verdict"], "not-reproduced") << result["reason"];
  ASSERT_EQ(result["injections"].size(), 1u) << result["injections"];
  const nlohmann::json* pids = Precondition(result, "pids-limit-refuses-runc-init-threads");
  ASSERT_NE(pids, nullptr);
  EXPECT_EQ((*pids)["held"], true) << (*pids)["detail"];
  const nlohmann::json* pipe = Precondition(result, "exec-stderr-pipe-one-page");
  ASSERT_NE(pipe, nullptr);
  EXPECT_EQ((*pipe)["held"], false) << (*pipe)["detail"];
  EXPECT_NE(result["reason"].get<std::string>().find("precondition exec-stderr-pipe-one-page"),
            std::string::npos)
      << result["reason"];
  // runc init crashed (the trigger fired) and the exec failed fast, as the healthy case.
  const nlohmann::json* exec = Command(result, "exec");
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ((*exec)["running_at_capture"], false);
  EXPECT_EQ((*exec)["exit_code"], 126) << (*exec)["output"];
  EXPECT_NE((*exec)["output"].get<std::string>().find("read init-p: connection reset by peer"),
            std::string::npos)
      << (*exec)["output"];
  EXPECT_EQ(result["host_clean"], true) << result["host_leftovers"];
  ExpectKnobsRestored(1);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(RuncExecPipeFull, WithTheMissingLinksInjectedDockerExecHangsAndDrainingRecoversIt) {
  std::set<std::string> hashes;
  for (int run = 1; run <= 3; ++run) {
    nlohmann::json result = Run({(kScenarios / "runc-exec-pipe-full-injected.json").string()});
    EXPECT_EQ(result["verdict"], "reproduced") << "run " << run << ": " << result["reason"];
    hashes.insert(result["signature_hash"].get<std::string>());
    // Both injections are named as wedge's doing.
    ASSERT_EQ(result["injections"].size(), 2u) << result["injections"];
    EXPECT_NE(result["injections"][0].get<std::string>().find("clone3"), std::string::npos);
    EXPECT_NE(result["injections"][1].get<std::string>().find("to 4096 bytes with F_SETPIPE_SZ"),
              std::string::npos)
        << result["injections"][1];
    // The seed's trigger fired: the pids cgroup refused cgo's 20 pthread_create attempts.
    const nlohmann::json* pids = Precondition(result, "pids-limit-refuses-runc-init-threads");
    ASSERT_NE(pids, nullptr);
    EXPECT_EQ((*pids)["held"], true) << (*pids)["detail"];
    // runc init's stderr: the one-page pipe, full of the crash dump, nothing consumed.
    bool found_runc_init = false;
    for (const auto& process : result["evidence"]["processes"]) {
      if (process["label"] != "runc-init") continue;
      for (const auto& fd : process["fds"]) {
        if (fd["fd"] != 2) continue;
        found_runc_init = true;
        EXPECT_EQ(fd["pipe_capacity_bytes"], 4096);
        EXPECT_GE(fd["pipe_unread_bytes"].get<int>(), 3687);
        EXPECT_EQ(fd["pipe_head"].get<std::string>().rfind("runtime/cgo: pthread_create failed", 0),
                  0u)
            << fd["pipe_head"];
      }
    }
    EXPECT_TRUE(found_runc_init) << result["evidence"];
    // docker exec had not returned at capture; draining let it fail with runc's error.
    const nlohmann::json* exec = Command(result, "exec");
    ASSERT_NE(exec, nullptr);
    EXPECT_EQ((*exec)["running_at_capture"], true);
    EXPECT_EQ((*exec)["exit_code"], 126) << (*exec)["output"];
    bool drained = false;
    for (const auto& line : result["recovery"]) {
      const std::string text = line;
      if (text.rfind("drained ", 0) == 0 && text.find("; all exited") != std::string::npos) {
        drained = true;
      }
    }
    EXPECT_TRUE(drained) << result["recovery"];
    EXPECT_EQ(result["host_clean"], true) << result["host_leftovers"];
    ExpectKnobsRestored(run);
  }
  EXPECT_EQ(hashes.size(), 1u) << ::testing::PrintToString(hashes);
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
