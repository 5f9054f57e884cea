#include "wedge/sys/journal.h"

#include <gtest/gtest.h>
#include <sys/file.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

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
  ASSERT_TRUE((*entries)[0].change.ok());
  const auto* sysctl_change = std::get_if<SysctlChange>(&*(*entries)[0].change);
  ASSERT_NE(sysctl_change, nullptr);
  EXPECT_EQ(sysctl_change->old_value, "16384");
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
  ASSERT_TRUE((*entries)[0].change.ok());
  EXPECT_TRUE(std::holds_alternative<DirectoryChange>(*(*entries)[0].change));
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
  Status refused = UndoEntry({1, JournalChange{DirectoryChange{"/etc"}}}, log);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("not a wedge run directory"), std::string::npos);
  Status dotdot = UndoEntry({1, JournalChange{DirectoryChange{"/run/wedge/runs/../../etc"}}}, log);
  EXPECT_FALSE(dotdot.ok());
  EXPECT_TRUE(fs::exists("/etc"));
}

// One change of every kind, with the values a run records.
std::vector<JournalChange> OneOfEachKind() {
  return {
      DirectoryChange{"/run/wedge/runs/run-1"},
      CgroupChange{"pids", "wedge/run-1", "/sys/fs/cgroup/pids"},
      MountChange{"/sys/fs/fuse/connections", "fusectl"},
      SysctlChange{"fs.pipe-user-pages-soft", "/proc/sys/fs/pipe-user-pages-soft", "16384"},
      ProcessChange{4242, 123456, "sandbox-init"},
      CgroupTreeChange{"wedge-docker-run-1"},
  };
}

TEST(JournalEntryJson, EveryKindRoundTripsThroughJson) {
  std::vector<JournalChange> changes = OneOfEachKind();
  changes.push_back(ProcessChange{4243, 0, std::nullopt});
  for (const JournalChange& change : changes) {
    JournalEntry entry = FromJson(nlohmann::json::parse(ToJson(7, change).dump()));
    EXPECT_EQ(entry.seq, 7u) << KindOf(change);
    ASSERT_TRUE(entry.change.ok()) << entry.change.error().message();
    EXPECT_TRUE(*entry.change == change) << KindOf(change);
  }
}

TEST(JournalEntryJson, AProcessWithoutARoleHasNoRoleKey) {
  nlohmann::json line = ToJson(1, ProcessChange{4243, 9, std::nullopt});
  EXPECT_FALSE(line["data"].contains("role"));
  EXPECT_EQ(line["data"]["start_time"], 9);
}

// Lines exactly as wedge has always written them, one of each kind, and the undo lines.
constexpr const char* kWrittenLines[] = {
    R"({"data":{"path":"/run/wedge/runs/run-1"},"kind":"directory","seq":1})",
    R"({"data":{"controller":"pids","mount":"/sys/fs/cgroup/pids","path":"wedge/run-1"},"kind":"cgroup","seq":2})",
    R"({"data":{"fstype":"fusectl","target":"/sys/fs/fuse/connections"},"kind":"mount","seq":3})",
    R"({"data":{"name":"fs.pipe-user-pages-soft","old":"16384","path":"/proc/sys/fs/pipe-user-pages-soft"},"kind":"sysctl","seq":4})",
    R"({"data":{"pid":4242,"role":"sandbox-init","start_time":123456},"kind":"process","seq":5})",
    R"({"data":{"name":"wedge-docker-run-1"},"kind":"cgroup-tree","seq":6})",
};

TEST(JournalEntryJson, LinesWrittenBeforeTheTypedEntriesParseToTheirKinds) {
  std::string text;
  for (const char* line : kWrittenLines) text += std::string(line) + "\n";
  auto entries = ParseJournal(text);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  std::vector<JournalChange> expected = OneOfEachKind();
  ASSERT_EQ(entries->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*entries)[i].seq, i + 1);
    ASSERT_TRUE((*entries)[i].change.ok()) << (*entries)[i].change.error().message();
    EXPECT_TRUE(*(*entries)[i].change == expected[i]) << KindOf(expected[i]);
  }
}

TEST(JournalEntryJson, TheLinesWrittenAreByteForByteTheOnesWedgeAlwaysWrote) {
  std::vector<JournalChange> changes = OneOfEachKind();
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(ToJson(i + 1, changes[i]).dump(), kWrittenLines[i]);
  }
}

TEST(JournalEntryJson, UndoLinesCloseTheirEntries) {
  std::string text;
  for (const char* line : kWrittenLines) text += std::string(line) + "\n";
  text += R"({"undone":6})"
          "\n"
          R"({"kept":true,"undone":1})"
          "\n";
  auto entries = ParseJournal(text);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ(entries->front().seq, 2u);
  EXPECT_EQ(entries->back().seq, 5u);
}

TEST(JournalEntryJson, AnEntryWithAWrongTypeIsAnErrorForThatEntryOnly) {
  auto entries =
      ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":1})"
                   "\n"
                   R"({"data":{"name":"fs.x","old":"1","path":7},"kind":"sysctl","seq":2})"
                   "\n"
                   R"({"data":{"pid":"4242","start_time":1},"kind":"process","seq":3})"
                   "\n"
                   R"({"data":{"target":"/x"},"kind":"mount","seq":4})"
                   "\n"
                   R"({"data":{"name":"n"},"kind":"no-such-kind","seq":5})"
                   "\n"
                   R"({"data":{"pid":-1,"start_time":-5},"kind":"process","seq":6})"
                   "\n"
                   R"({"data":{"name":"wedge-docker-a"},"kind":"cgroup-tree","seq":7})"
                   "\n");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 7u);
  EXPECT_TRUE((*entries)[0].change.ok());
  EXPECT_TRUE((*entries)[6].change.ok());
  const std::vector<std::string> expected_errors = {
      R"(journal line 2: journal entry 2 (sysctl): data: "path" is not a string)",
      R"(journal line 3: journal entry 3 (process): data: "pid" is not a pid)",
      R"(journal line 4: journal entry 4 (mount): data: "fstype" is missing)",
      R"(journal line 5: journal entry 5 (no-such-kind): unknown kind 'no-such-kind')",
      R"(journal line 6: journal entry 6 (process): data: "start_time" is not an unsigned integer)",
  };
  for (size_t i = 0; i < expected_errors.size(); ++i) {
    const JournalEntry& entry = (*entries)[i + 1];
    EXPECT_EQ(entry.seq, i + 2);
    ASSERT_FALSE(entry.change.ok()) << i;
    EXPECT_EQ(entry.change.error().message(), expected_errors[i]);
    std::vector<std::string> log;
    Status undone = UndoEntry(entry, log);
    ASSERT_FALSE(undone.ok());
    EXPECT_EQ(undone.error().message(), expected_errors[i]);
    EXPECT_TRUE(log.empty());
  }
}

TEST(JournalEntryJson, AnEntryWithoutAValidSeqOrKindIsAnErrorNotAThrow) {
  auto entries =
      ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":"1"})"
                   "\n"
                   R"({"data":{"path":"/run/wedge/runs/a"},"kind":3,"seq":2})"
                   "\n"
                   R"({"kind":"directory","seq":3})"
                   "\n"
                   R"({"data":[1],"kind":"directory","seq":4})"
                   "\n");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].seq, 0u);
  EXPECT_EQ((*entries)[1].seq, 2u);
  for (const JournalEntry& entry : *entries) EXPECT_FALSE(entry.change.ok());
  EXPECT_EQ((*entries)[0].change.error().message(),
            R"(journal line 1: journal entry: "seq" is not an unsigned integer)");
  EXPECT_EQ((*entries)[1].change.error().message(),
            R"(journal line 2: journal entry 2: "kind" is not a string)");
  EXPECT_EQ((*entries)[2].change.error().message(),
            R"(journal line 3: journal entry 3: "data" is missing)");
  EXPECT_EQ((*entries)[3].change.error().message(),
            R"(journal line 4: journal entry 4: "data" is not an object)");
}

TEST(JournalEntryJson, AnUndoLineWithoutAValidSeqMakesTheJournalAnError) {
  // Which entry it closes is unknown, and replaying a kept entry would remove what was kept.
  auto entries = ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":1})"
                              "\n"
                              R"({"kept":true,"undone":"1"})"
                              "\n");
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().message(), R"(journal line 2: "undone" is not an unsigned integer)");
}

TEST_F(JournalTest, CleanupUndoesTheGoodEntriesOfAJournalWithAMalformedOneAndKeepsIt) {
  fs::create_directories(root_ / "state" / "journal");
  fs::path sysctl_path = root_ / "proc_sys" / "fs" / "pipe-user-pages-soft";
  fs::path journal_path = root_ / "state" / "journal" / "dead-run.jsonl";
  std::ofstream(journal_path)
      << ToJson(1, SysctlChange{"fs.pipe-user-pages-soft", sysctl_path, "16384"}).dump() << "\n"
      << R"({"data":{"path":["not","a","path"]},"kind":"directory","seq":2})"
      << "\n";
  std::ofstream(sysctl_path) << "1\n";

  auto log = RecoverOrphanJournals(root_ / "state");
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.error().message().find(R"(journal entry 2 (directory): data: "path")"),
            std::string::npos)
      << log.error().message();
  EXPECT_EQ(Sysctl(), "16384");
  EXPECT_TRUE(fs::exists(journal_path));
}

TEST_F(JournalTest, ForgottenEntriesStayAsTheyAre) {
  fs::path run_dir = root_ / "state" / "runs" / "kept";
  {
    auto journal = Journal::Create(root_ / "state", "kept");
    ASSERT_TRUE(journal.ok());
    auto seq = (*journal)->Record(DirectoryChange{run_dir});
    ASSERT_TRUE(seq.ok());
    fs::create_directories(run_dir);
    ASSERT_TRUE((*journal)->Forget(*seq).ok());
  }
  EXPECT_TRUE(fs::exists(run_dir));
}

}  // namespace
}  // namespace wedge::sys
