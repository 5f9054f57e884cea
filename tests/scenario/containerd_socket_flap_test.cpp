// Scenario tests for dockerd's connect() churn while containerd's socket is gone (seed 000;
// moby#39513, moby#52643; containerd's dialer retrying ENOENT every 10 ms). They run the real
// wedge binary with a fresh private docker stack, as root.
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

class ContainerdSocketFlap : public testing::ScenarioTest {
 protected:
  nlohmann::json Run(const std::string& scenario) {
    return ScenarioTest::Run({(kScenarios / scenario).string()});
  }

  static double Mean(const nlohmann::json& result, const std::string& metric,
                     const std::string& window) {
    for (const auto& series : result["series"]) {
      if (series["metric"] != metric || series["window"] != window) continue;
      double sum = 0;
      for (double value : series["per_second"]) sum += value;
      return series["per_second"].empty() ? 0 : sum / series["per_second"].size();
    }
    return -1;
  }
};

TEST_F(ContainerdSocketFlap, ARestartMakesDockerdChurnOnTheMissingSocketTwiceTheSameWay) {
  nlohmann::json first = Run("containerd-socket-flap.json");
  nlohmann::json second = Run("containerd-socket-flap.json");
  EXPECT_EQ(first["verdict"], "reproduced");
  EXPECT_EQ(second["verdict"], "reproduced");
  EXPECT_EQ(first["signature_hash"], second["signature_hash"]);
  EXPECT_GE(Mean(first, "connect", "outage"), 50);
  EXPECT_EQ(first["host_clean"], true);
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ContainerdSocketFlap, ASigkillLeavesAStaleSocketAndGrpcBackoffPacesDockerd) {
  nlohmann::json result = Run("containerd-socket-flap-sigkill.json");
  EXPECT_EQ(result["verdict"], "not-reproduced");
  double mean = Mean(result, "connect", "outage");
  EXPECT_GE(mean, 0);
  EXPECT_LE(mean, 15);
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
