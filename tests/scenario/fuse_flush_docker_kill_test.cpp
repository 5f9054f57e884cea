// Seed 001 as its users saw it: `docker kill` of a container whose FUSE daemon is killed during
// a flush by its own thread, through the real private stack, kernel and fixture image.
#include <set>
#include <string>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using testing::ScenarioTest;

const fs::path kScenario = fs::path(WEDGE_SOURCE_DIR) / "scenarios" / "fuse-flush-docker-kill.json";

class FuseFlushDockerKill : public ScenarioTest {};

const nlohmann::json* FindCommand(const nlohmann::json& result, const std::string& name) {
  for (const auto& command : result["commands"]) {
    if (command["command"] == name) return &command;
  }
  return nullptr;
}

TEST_F(FuseFlushDockerKill, ReproducesThreeRunsInARowWithOneHashAndLeavesTheHostClean) {
  std::set<std::string> hashes;
  for (int i = 0; i < 3; ++i) {
    nlohmann::json result = Run({kScenario.string()});
    EXPECT_EQ(result["verdict"], "reproduced") << result.dump(2);
    EXPECT_EQ(result["host_clean"], true) << result.dump(2);
    hashes.insert(result["signature_hash"].get<std::string>());
    // docker kill had not returned at capture; once the connection was aborted it did, and the
    // exec into the dying pid namespace failed in setns.
    const nlohmann::json* kill = FindCommand(result, "kill");
    ASSERT_NE(kill, nullptr) << result.dump(2);
    EXPECT_EQ((*kill)["exit_code"], 0) << kill->dump(2);
    const nlohmann::json* exec = FindCommand(result, "exec");
    ASSERT_NE(exec, nullptr) << result.dump(2);
    EXPECT_NE((*exec)["output"].get<std::string>().find("setns"), std::string::npos)
        << exec->dump(2);
    bool aborted = false;
    for (const auto& line : result["recovery"]) {
      aborted = aborted || line.get<std::string>().rfind("aborted FUSE connection", 0) == 0;
    }
    EXPECT_TRUE(aborted) << result["recovery"].dump(2);
    testing::ExpectHostUnchanged(before_);
  }
  EXPECT_EQ(hashes.size(), 1u) << ::testing::PrintToString(hashes);
}

// The controls: nothing of the mount is open (closed and flushed before the kill), or the held
// file is O_PATH. docker kill returns before anything stalls, and the container is gone.
TEST_F(FuseFlushDockerKill, TheHolderKnobControlsLetDockerKillReturn) {
  for (const char* control :
       {"fuse-flush-docker-kill-holder-closes.json", "fuse-flush-docker-kill-o-path.json"}) {
    SCOPED_TRACE(control);
    nlohmann::json result = Run({(kScenario.parent_path() / control).string()});
    EXPECT_EQ(result["verdict"], "not-reproduced") << result.dump(2);
    EXPECT_EQ(result["host_clean"], true) << result.dump(2);
    const nlohmann::json* kill = FindCommand(result, "kill");
    ASSERT_NE(kill, nullptr) << result.dump(2);
    EXPECT_EQ((*kill)["exit_code"], 0) << kill->dump(2);
    EXPECT_EQ((*kill)["running_at_capture"], false) << kill->dump(2);
    testing::ExpectHostUnchanged(before_);
  }
}

}  // namespace
}  // namespace wedge
