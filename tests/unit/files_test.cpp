#include "wedge/sys/files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace wedge::sys {
namespace {

namespace fs = std::filesystem;

// A private directory for each test.
class WriteFileAtomicallyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wedge-files-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static mode_t Mode(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  fs::path dir_;
};

TEST_F(WriteFileAtomicallyTest, ReplacesTheContentsAndLeavesNoTemporary) {
  std::ofstream(dir_ / "daemon.json") << "old contents, longer than the new ones\n";
  Status written = WriteFileAtomically(dir_ / "daemon.json", "{}\n");
  ASSERT_TRUE(written.ok()) << written.error().message();
  EXPECT_EQ(*ReadFile(dir_ / "daemon.json"), "{}\n");
  EXPECT_EQ(Names(), std::vector<std::string>{"daemon.json"});
}

TEST_F(WriteFileAtomicallyTest, CreatesAMissingFile) {
  std::string contents(100000, 'x');
  ASSERT_TRUE(WriteFileAtomically(dir_ / "report.json", contents).ok());
  EXPECT_EQ(*ReadFile(dir_ / "report.json"), contents);
  EXPECT_EQ(Names(), std::vector<std::string>{"report.json"});
}

TEST_F(WriteFileAtomicallyTest, GivesTheFileExactlyItsModeWhateverTheUmask) {
  mode_t old_umask = ::umask(077);
  Status shared = WriteFileAtomically(dir_ / "report.json", "r\n");
  Status private_file = WriteFileAtomically(dir_ / "private", "p\n", 0600);
  ::umask(old_umask);
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(private_file.ok());
  EXPECT_EQ(Mode(dir_ / "report.json"), 0644u);
  EXPECT_EQ(Mode(dir_ / "private"), 0600u);
}

TEST_F(WriteFileAtomicallyTest, AMissingDirectoryIsAnErrorNamingTheCall) {
  Status written = WriteFileAtomically(dir_ / "missing" / "report.json", "r\n");
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message().find("mkstemp('" + (dir_ / "missing").string()),
            std::string::npos)
      << written.error().message();
  EXPECT_NE(written.error().message().find("ENOENT"), std::string::npos);
  EXPECT_TRUE(Names().empty());
}

TEST_F(WriteFileAtomicallyTest, RenamingOntoADirectoryFailsAndLeavesItAndNoTemporary) {
  fs::create_directories(dir_ / "report.json");
  std::ofstream(dir_ / "report.json" / "inside") << "kept\n";
  Status written = WriteFileAtomically(dir_ / "report.json", "r\n");
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message().find("rename('"), std::string::npos)
      << written.error().message();
  EXPECT_EQ(Names(), std::vector<std::string>{"report.json"});
  EXPECT_EQ(*ReadFile(dir_ / "report.json" / "inside"), "kept\n");
}

TEST_F(WriteFileAtomicallyTest, AFailedWriteLeavesTheOldFileAsItWasAndNoTemporary) {
  std::ofstream(dir_ / "report.json") << "old\n";
  // A file size limit makes write(2) fail with EFBIG once the temporary reaches it.
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  sighandler_t old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status written = WriteFileAtomically(dir_ / "report.json", std::string(10000, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message().find("write('"), std::string::npos)
      << written.error().message();
  EXPECT_NE(written.error().message().find("EFBIG"), std::string::npos);
  EXPECT_EQ(*ReadFile(dir_ / "report.json"), "old\n");
  EXPECT_EQ(Names(), std::vector<std::string>{"report.json"});
}

TEST_F(WriteFileAtomicallyTest, ANameTooLongForItsTemporaryLeavesTheOldFileAsItWas) {
  const std::string name(250, 'r');
  std::ofstream(dir_ / name) << "old\n";
  Status written = WriteFileAtomically(dir_ / name, "new\n");
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message().find("ENAMETOOLONG"), std::string::npos)
      << written.error().message();
  EXPECT_EQ(*ReadFile(dir_ / name), "old\n");
  EXPECT_EQ(Names(), std::vector<std::string>{name});
}

}  // namespace
}  // namespace wedge::sys
