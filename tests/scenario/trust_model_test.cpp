// wedge runs scenario files as root, so it refuses files that someone else could have written.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using testing::RunWedge;
using testing::WedgeRun;

class ScenarioTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "scenario tests run as root";
    directory_ = fs::temp_directory_path() / ("wedge-trust-" + std::to_string(::getpid()));
    fs::create_directories(directory_);
    ::chmod(directory_.c_str(), 0755);
    file_ = directory_ / "scenario.json";
    fs::copy_file(fs::path(WEDGE_SOURCE_DIR) / "scenarios/fuse-flush-pidns-teardown.json", file_);
    before_ = testing::HostNow();
  }
  void TearDown() override { fs::remove_all(directory_); }

  fs::path directory_;
  fs::path file_;
  testing::HostSnapshot before_;
};

TEST_F(ScenarioTrust, AFileOthersCanWriteIsRefusedBeforeAnythingChanges) {
  ::chmod(file_.c_str(), 0666);
  WedgeRun run = RunWedge({"run", file_.string()});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("is writable by its group or by others"), std::string::npos)
      << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ScenarioTrust, AFileInADirectoryOthersCanWriteIsRefused) {
  ::chmod(file_.c_str(), 0644);
  ::chmod(directory_.c_str(), 0777);
  WedgeRun run = RunWedge({"run", file_.string()});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("which others can write to"), std::string::npos) << run.output;
  testing::ExpectHostUnchanged(before_);
}

TEST_F(ScenarioTrust, AllowUntrustedOverridesTheRefusal) {
  ::chmod(file_.c_str(), 0666);
  WedgeRun run = RunWedge({"run", file_.string(), "--allow-untrusted"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  testing::ExpectHostUnchanged(before_);
}

}  // namespace
}  // namespace wedge

namespace wedge {
namespace {

TEST(ScenarioShards, SplitADirectoryIntoDisjointSlicesThatCoverIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "scenario tests run as root";
  namespace fs = std::filesystem;
  const fs::path directory =
      fs::temp_directory_path() / ("wedge-shards-" + std::to_string(::getpid()));
  fs::create_directories(directory);
  ::chmod(directory.c_str(), 0755);
  for (const char* name :
       {"fuse-flush-pidns-teardown.json", "fuse-flush-pidns-teardown-no-holder.json"}) {
    fs::copy_file(fs::path(WEDGE_SOURCE_DIR) / "scenarios" / name, directory / name);
  }
  std::string first = testing::RunWedge({"run", directory.string(), "--shard", "1/2"}).output;
  std::string second = testing::RunWedge({"run", directory.string(), "--shard", "2/2"}).output;
  fs::remove_all(directory);
  EXPECT_NE(first.find("shard 1/2: 1 of 2 scenarios"), std::string::npos) << first;
  EXPECT_NE(second.find("shard 2/2: 1 of 2 scenarios"), std::string::npos) << second;
  // Sorted by path, "-no-holder.json" comes first: slice 1 has it, slice 2 the other.
  EXPECT_NE(first.find("PASS   fuse-flush-pidns-teardown-no-holder"), std::string::npos) << first;
  EXPECT_NE(second.find("PASS   fuse-flush-pidns-teardown "), std::string::npos) << second;
}

}  // namespace
}  // namespace wedge
