#include "wedge/sys/journal.h"

#include <gtest/gtest.h>
#include <sys/file.h>

#include <filesystem>
#include <fstream>

#include "wedge/sys/files.h"
#include "wedge/sys/sysctl.h"

namespace wedge::sys {
namespace {

namespace fs = std::filesystem;

// A private state directory and a fake /proc/sys for each test.
class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("wedge-journal-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "proc_sys" / "fs");
    std::ofstream(root_ / "proc_sys" / "fs" / "pipe-user-pages-soft") << "16384\n";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Sysctl() const {
    return TrimTrailing(*ReadFile(root_ / "proc_sys" / "fs" / "pipe-user-pages-soft"));
  }

  fs::path root_;
};

TEST_F(JournalTest, ScopedSysctlRestoresTheOldValueWhenItGoesOutOfScope) {
  auto journal = Journal::Create(root_ / "state", "run-1");
  ASSERT_TRUE(journal.ok()) << journal.error().message();
  {
    auto sysctl = ScopedSysctl::Set(**journal, "fs.pipe-user-pages-soft", "1", root_ / "proc_sys");
    ASSERT_TRUE(sysctl.ok()) << sysctl.error().message();
    EXPECT_EQ(Sysctl(), "1");
    EXPECT_EQ((*sysctl)->old_value(), "16384");
  }
  EXPECT_EQ(Sysctl(), "16384");
  EXPECT_TRUE((*journal)->Pending().empty());
}

TEST_F(JournalTest, TheEntryIsDurableBeforeTheChangeIsMade) {
  auto journal = Journal::Create(root_ / "state", "run-1");
  ASSERT_TRUE(journal.ok());
  auto sysctl = ScopedSysctl::Set(**journal, "fs.pipe-user-pages-soft", "1", root_ / "proc_sys");
  ASSERT_TRUE(sysctl.ok());
  auto text = ReadFile((*journal)->path());
  ASSERT_TRUE(text.ok());
  auto entries = ParseJournal(*text);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].kind, "sysctl");
  EXPECT_EQ((*entries)[0].data["old"], "16384");
}

TEST_F(JournalTest, CleanupReplaysAJournalWhoseOwnerDied) {
  // Simulate a wedge killed mid-run: the journal says the sysctl was changed, nobody holds it.
  fs::create_directories(root_ / "state" / "journal");
  fs::path sysctl_path = root_ / "proc_sys" / "fs" / "pipe-user-pages-soft";
  std::ofstream(root_ / "state" / "journal" / "dead-run.jsonl")
      << nlohmann::json{{"seq", 1},
                        {"kind", "sysctl"},
                        {"data",
                         {{"name", "fs.pipe-user-pages-soft"},
                          {"path", sysctl_path},
                          {"old", "16384"}}}}
             .dump()
      << "\n";
  std::ofstream(sysctl_path) << "1\n";

  auto log = RecoverOrphanJournals(root_ / "state");
  ASSERT_TRUE(log.ok()) << log.error().message();
  EXPECT_EQ(Sysctl(), "16384");
  EXPECT_FALSE(fs::exists(root_ / "state" / "journal" / "dead-run.jsonl"));
  ASSERT_FALSE(log->empty());
  EXPECT_EQ(log->front(), "restored fs.pipe-user-pages-soft = 16384");
}

TEST_F(JournalTest, CleanupLeavesALiveRunsJournalAlone) {
  auto journal = Journal::Create(root_ / "state", "live-run");
  ASSERT_TRUE(journal.ok());
  auto sysctl = ScopedSysctl::Set(**journal, "fs.pipe-user-pages-soft", "1", root_ / "proc_sys");
  ASSERT_TRUE(sysctl.ok());
  auto log = RecoverOrphanJournals(root_ / "state");
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->empty());
  EXPECT_EQ(Sysctl(), "1");
}

TEST_F(JournalTest, UndoneEntriesAreNotReplayed) {
  auto entries =
      ParseJournal(R"({"seq":1,"kind":"directory","data":{"path":"/run/wedge/runs/a"}})"
                   "\n"
                   R"({"seq":2,"kind":"mount","data":{"target":"/x","fstype":"fusectl"}})"
                   "\n"
                   R"({"undone":2})"
                   "\n");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].kind, "directory");
}

TEST_F(JournalTest, ATornLastLineIsIgnoredBecauseItsChangeWasNeverMade) {
  auto entries = ParseJournal(R"({"seq":1,"kind":"directory","data":{"path":"/run/wedge/runs/a"}})"
                              "\n"
                              R"({"seq":2,"kind":"sysc)");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u);
}

TEST_F(JournalTest, ADirectoryEntryOnlyEverRemovesARunDirectory) {
  std::vector<std::string> log;
  Status refused = UndoEntry({1, "directory", {{"path", "/etc"}}}, log);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("not a wedge run directory"), std::string::npos);
  Status dotdot = UndoEntry({1, "directory", {{"path", "/run/wedge/runs/../../etc"}}}, log);
  EXPECT_FALSE(dotdot.ok());
  EXPECT_TRUE(fs::exists("/etc"));
}

TEST_F(JournalTest, ForgottenEntriesStayAsTheyAre) {
  fs::path run_dir = root_ / "state" / "runs" / "kept";
  {
    auto journal = Journal::Create(root_ / "state", "kept");
    ASSERT_TRUE(journal.ok());
    auto seq = (*journal)->Record("directory", {{"path", run_dir}});
    ASSERT_TRUE(seq.ok());
    fs::create_directories(run_dir);
    ASSERT_TRUE((*journal)->Forget(*seq).ok());
  }
  EXPECT_TRUE(fs::exists(run_dir));
}

}  // namespace
}  // namespace wedge::sys
