// `wedge run --stack RELEASE`: a scenario on the real docker stacks of two Debian releases,
// built from the archive (once; later runs take them from /var/cache/wedge/stacks), and a root
// build killed halfway, which `wedge cleanup` removes.
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using testing::RunWedge;
using testing::ScenarioTest;
using testing::WedgeRun;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

class ReleaseStack : public ScenarioTest {};

const nlohmann::json* Cell(const nlohmann::json& matrix, const std::string& stack) {
  for (const auto& cell : matrix["cells"]) {
    if (cell["stack"] == stack) return &cell;
  }
  return nullptr;
}

const nlohmann::json* Binary(const nlohmann::json& matrix, const std::string& stack,
                             const std::string& name) {
  for (const auto& column : matrix["kernels"]) {
    if (column["stack"] != stack) continue;
    for (const auto& binary : column["report"]["host"]["binaries"]) {
      if (binary["name"] == name) return &binary;
    }
  }
  return nullptr;
}

TEST_F(ReleaseStack, OneScenarioOnTwoReleasesGivesEachItsVerdictAndRecordsTheirVersions) {
  WedgeRun run =
      RunWedge({"run", (kScenarios / "seccomp-resources-sigsys.json").string(), "--stack",
                "bullseye", "--stack", "bookworm", "--json", report_.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json matrix = testing::ReadJson(report_);
  // bullseye's CLI (Go 1.15) raises no RLIMIT_NOFILE, so the filter has nothing to kill;
  // bookworm's (Go 1.19) calls setrlimit and is killed by SIGSYS.
  const nlohmann::json* bullseye = Cell(matrix, "bullseye");
  const nlohmann::json* bookworm = Cell(matrix, "bookworm");
  ASSERT_NE(bullseye, nullptr) << matrix.dump(2);
  ASSERT_NE(bookworm, nullptr) << matrix.dump(2);
  EXPECT_EQ((*bullseye)["verdict"], "not-reproduced") << bullseye->dump(2);
  EXPECT_EQ((*bullseye)["as_expected"], true) << bullseye->dump(2);
  EXPECT_EQ((*bookworm)["verdict"], "reproduced") << bookworm->dump(2);
  EXPECT_EQ((*bookworm)["as_expected"], true) << bookworm->dump(2);
  const nlohmann::json* old_cli = Binary(matrix, "bullseye", "docker");
  const nlohmann::json* new_cli = Binary(matrix, "bookworm", "docker");
  ASSERT_NE(old_cli, nullptr);
  ASSERT_NE(new_cli, nullptr);
  EXPECT_EQ((*old_cli)["package"].get<std::string>().rfind("docker.io 20.10.5+dfsg1", 0), 0u)
      << old_cli->dump();
  EXPECT_EQ((*old_cli)["go_version"], "go1.15.15") << old_cli->dump();
  EXPECT_EQ((*old_cli)["release"], "bullseye");
  EXPECT_NE((*old_cli)["path"].get<std::string>().find("/var/cache/wedge/stacks/bullseye-"),
            std::string::npos);
  EXPECT_EQ((*new_cli)["package"].get<std::string>().rfind("docker.io 20.10.24+dfsg1", 0), 0u)
      << new_cli->dump();
  EXPECT_EQ((*new_cli)["go_version"].get<std::string>().rfind("go1.19", 0), 0u) << new_cli->dump();
  const nlohmann::json* runc = Binary(matrix, "bullseye", "runc");
  ASSERT_NE(runc, nullptr);
  EXPECT_NE((*runc)["version"].get<std::string>().find("1.0.0~rc93"), std::string::npos)
      << runc->dump();
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ReleaseStack, WithDoesNotCombineWithAReleaseAndChangesNothing) {
  WedgeRun run = RunWedge({"run", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--stack", "bullseye", "--with", "runc=/usr/sbin/runc"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("--with does not combine with --stack RELEASE"), std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ReleaseStack, AComponentFromAnotherReleaseIsRecordedAsThatReleasesBinary) {
  WedgeRun run =
      RunWedge({"run", (kScenarios / "runc-exec-pipe-full-trigger-pinned.json").string(), "--stack",
                "bookworm", "--with", "runc=bullseye", "--json", report_.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json report = testing::ReadJson(report_);
  ASSERT_EQ(report["results"].size(), 1u) << report.dump(2);
  // With bookworm's containerd and dockerd, rc93 passes the pids precondition that the whole of
  // bullseye's stack fails: the run gets as far as the one-page pipe.
  EXPECT_EQ(report["results"][0]["verdict"], "not-reproduced") << run.output;
  EXPECT_NE(run.output.find("exec-stderr-pipe-one-page"), std::string::npos) << run.output;
  std::map<std::string, nlohmann::json> binaries;
  for (const auto& binary : report["host"]["binaries"]) binaries[binary["name"]] = binary;
  ASSERT_TRUE(binaries.contains("runc")) << report["host"].dump(2);
  EXPECT_EQ(binaries["runc"]["release"], "bullseye") << binaries["runc"].dump();
  EXPECT_EQ(binaries["runc"]["go_version"], "go1.15.15") << binaries["runc"].dump();
  EXPECT_EQ(binaries["runc"]["package"].get<std::string>().rfind("runc 1.0.0~rc93", 0), 0u)
      << binaries["runc"].dump();
  EXPECT_NE(binaries["runc"]["path"].get<std::string>().find("/var/cache/wedge/stacks/bullseye-"),
            std::string::npos)
      << binaries["runc"].dump();
  EXPECT_EQ(binaries["dockerd"]["release"], "bookworm") << binaries["dockerd"].dump();
  EXPECT_EQ(binaries["containerd"]["release"], "bookworm") << binaries["containerd"].dump();
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ReleaseStack, AComponentThatDoesNotRunInTheStacksRootIsRefusedAndChangesNothing) {
  WedgeRun run = RunWedge({"run", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--stack", "bullseye", "--with", "runc=sid"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("--with runc=sid: sid's runc does not run in the bullseye root: "),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("GLIBC_"), std::string::npos) << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ReleaseStack, BisectOverReleasesNamesTheFirstWhoseVerdictDiffers) {
  WedgeRun run = RunWedge({"bisect", (kScenarios / "seccomp-resources-sigsys.json").string(),
                           "--stacks", "bullseye", "bookworm"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("first flip: bookworm gives reproduced; every stack before it "
                            "(bullseye) gives not-reproduced"),
            std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ReleaseStack, ARootBuildKilledHalfwayIsRemovedByCleanupAndNeverUsed) {
  // A cache of its own, so that the root is built here whatever the machine's cache holds.
  const fs::path cache =
      fs::temp_directory_path() / ("wedge-stack-cache-" + std::to_string(::getpid()));
  fs::remove_all(cache);
  fs::create_directories(cache);
  ::chmod(cache.c_str(), 0755);
  bp::environment env = boost::this_process::environment();
  env["WEDGE_STACK_CACHE"] = cache.string();
  bp::child run(WEDGE_BINARY,
                bp::args({"run", (kScenarios / "seccomp-resources-sigsys.json").string(), "--stack",
                          "bullseye"}),
                env, bp::std_out > bp::null, bp::std_err > bp::null, bp::std_in < bp::null);
  auto building = [&cache] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cache, ec)) {
      if (entry.path().filename().string().rfind(".build-", 0) == 0 &&
          fs::exists(entry.path() / "var", ec)) {
        return true;  // mmdebstrap is writing the root
      }
    }
    return false;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!building() && run.running() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(building()) << "no root build seen in " << cache;
  ::kill(run.id(), SIGKILL);
  run.wait();

  bp::ipstream out;
  bp::child cleanup(WEDGE_BINARY, bp::args({"cleanup"}), env, (bp::std_out & bp::std_err) > out);
  std::string text;
  for (std::string line; std::getline(out, line);) text += line + "\n";
  cleanup.wait();
  EXPECT_EQ(cleanup.exit_code(), 0) << text;
  EXPECT_NE(text.find("removed " + cache.string() + "/.build-"), std::string::npos) << text;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache, ec)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "apt") << "left in the cache: " << name;
  }
  fs::remove_all(cache);
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge
