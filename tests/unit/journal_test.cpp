#include "wedge/sys/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "wedge/base/allowed_sysctls.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"
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

  // What replay may undo here: run directories of the test's state directory, the fake
  // /proc/sys's allowlisted sysctls, wedge's cgroups in this host's hierarchies.
  UndoScope Scope() const {
    return {root_ / "state", root_ / "proc_sys", wedge::AllowedSysctls(), CgroupMountPoints(),
            root_ / "stacks"};
  }
  // A journal as a killed wedge leaves it: STATE/journal/NAME.jsonl, 0600, in a 0700 directory.
  fs::path WriteOrphan(const std::string& name, const std::string& text) {
    EXPECT_TRUE(MakePrivateDirectory(root_ / "state").ok());
    EXPECT_TRUE(MakePrivateDirectory(root_ / "state" / "journal").ok());
    fs::path path = root_ / "state" / "journal" / (name + ".jsonl");
    EXPECT_TRUE(WriteFileAtomically(path, text, 0600).ok());
    return path;
  }
  fs::path SysctlFile() const { return root_ / "proc_sys" / "fs" / "pipe-user-pages-soft"; }
  std::string SysctlLine(std::uint64_t seq, const std::string& old_value = "16384") const {
    return ToJson(seq, SysctlChange{"fs.pipe-user-pages-soft", SysctlFile(), old_value}).dump() +
           "\n";
  }

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
  std::vector<JournalEntry> entries = ParseJournal(*text);
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_TRUE(entries[0].change.ok());
  const auto* sysctl_change = std::get_if<SysctlChange>(&*entries[0].change);
  ASSERT_NE(sysctl_change, nullptr);
  EXPECT_EQ(sysctl_change->old_value, "16384");
}

TEST_F(JournalTest, CleanupReplaysAJournalWhoseOwnerDied) {
  // Simulate a wedge killed mid-run: the journal says the sysctl was changed, nobody holds it.
  fs::path journal = WriteOrphan("dead-run", SysctlLine(1));
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(recovery.failed.empty());
  EXPECT_TRUE(recovery.skipped.empty());
  EXPECT_EQ(Sysctl(), "16384");
  EXPECT_FALSE(fs::exists(journal));
  EXPECT_EQ(recovery.undone, (std::vector<std::string>{"restored fs.pipe-user-pages-soft = 16384",
                                                       "replayed journal dead-run.jsonl"}));
}

TEST_F(JournalTest, CleanupLeavesALiveRunsJournalAlone) {
  auto journal = Journal::Create(root_ / "state", "live-run");
  ASSERT_TRUE(journal.ok());
  auto sysctl = ScopedSysctl::Set(**journal, "fs.pipe-user-pages-soft", "1", root_ / "proc_sys");
  ASSERT_TRUE(sysctl.ok());
  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(recovery.undone.empty());
  EXPECT_TRUE(recovery.skipped.empty());
  EXPECT_TRUE(recovery.failed.empty());
  EXPECT_EQ(Sysctl(), "1");
}

TEST_F(JournalTest, UndoneEntriesAreNotReplayed) {
  std::vector<JournalEntry> entries =
      ParseJournal(R"({"seq":1,"kind":"directory","data":{"path":"/run/wedge/runs/a"}})"
                   "\n"
                   R"({"seq":2,"kind":"mount","data":{"target":"/x","fstype":"fusectl"}})"
                   "\n"
                   R"({"undone":2})"
                   "\n");
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_TRUE(entries[0].change.ok());
  EXPECT_TRUE(std::holds_alternative<DirectoryChange>(*entries[0].change));
}

TEST_F(JournalTest, ATornLastLineIsIgnoredBecauseItsChangeWasNeverMade) {
  std::vector<JournalEntry> entries =
      ParseJournal(R"({"seq":1,"kind":"directory","data":{"path":"/run/wedge/runs/a"}})"
                   "\n"
                   R"({"seq":2,"kind":"sysc)");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].change.ok());
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
  std::vector<JournalEntry> entries = ParseJournal(text);
  std::vector<JournalChange> expected = OneOfEachKind();
  ASSERT_EQ(entries.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(entries[i].seq, i + 1);
    ASSERT_TRUE(entries[i].change.ok()) << entries[i].change.error().message();
    EXPECT_TRUE(*entries[i].change == expected[i]) << KindOf(expected[i]);
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
  std::vector<JournalEntry> entries = ParseJournal(text);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries.front().seq, 2u);
  EXPECT_EQ(entries.back().seq, 5u);
}

TEST(JournalEntryJson, AnEntryWithAWrongTypeIsAnErrorForThatEntryOnly) {
  std::vector<JournalEntry> entries =
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
  ASSERT_EQ(entries.size(), 7u);
  EXPECT_TRUE(entries[0].change.ok());
  EXPECT_TRUE(entries[6].change.ok());
  const std::vector<std::string> expected_errors = {
      R"(journal line 2: journal entry 2 (sysctl): data: "path" is not a string)",
      R"(journal line 3: journal entry 3 (process): data: "pid" is not a pid)",
      R"(journal line 4: journal entry 4 (mount): data: "fstype" is missing)",
      R"(journal line 5: journal entry 5 (no-such-kind): unknown kind 'no-such-kind')",
      R"(journal line 6: journal entry 6 (process): data: "start_time" is not an unsigned integer)",
  };
  for (size_t i = 0; i < expected_errors.size(); ++i) {
    const JournalEntry& entry = entries[i + 1];
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
  std::vector<JournalEntry> entries =
      ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":"1"})"
                   "\n"
                   R"({"data":{"path":"/run/wedge/runs/a"},"kind":3,"seq":2})"
                   "\n"
                   R"({"kind":"directory","seq":3})"
                   "\n"
                   R"({"data":[1],"kind":"directory","seq":4})"
                   "\n");
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].seq, 0u);
  EXPECT_EQ(entries[1].seq, 2u);
  for (const JournalEntry& entry : entries) EXPECT_FALSE(entry.change.ok());
  EXPECT_EQ(entries[0].change.error().message(),
            R"(journal line 1: journal entry: "seq" is not an unsigned integer)");
  EXPECT_EQ(entries[1].change.error().message(),
            R"(journal line 2: journal entry 2: "kind" is not a string)");
  EXPECT_EQ(entries[2].change.error().message(),
            R"(journal line 3: journal entry 3: "data" is missing)");
  EXPECT_EQ(entries[3].change.error().message(),
            R"(journal line 4: journal entry 4: "data" is not an object)");
}

TEST(JournalEntryJson, AnUndoLineWithoutAValidSeqIsAnErrorEntryAndItsEntryStaysPending) {
  // Which entry it closes is unknown: the entry is undone once more (undo is safe to repeat),
  // and the line itself is reported.
  std::vector<JournalEntry> entries =
      ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":1})"
                   "\n"
                   R"({"kept":true,"undone":"1"})"
                   "\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(entries[0].change.ok());
  ASSERT_FALSE(entries[1].change.ok());
  EXPECT_EQ(entries[1].change.error().message(),
            R"(journal line 2: "undone" is not an unsigned integer)");
}

TEST(JournalEntryJson, ALineThatIsNotJsonInTheMiddleIsAnErrorEntryNotTheEndOfTheJournal) {
  std::vector<JournalEntry> entries =
      ParseJournal(R"({"data":{"path":"/run/wedge/runs/a"},"kind":"directory","seq":1})"
                   "\n"
                   "{\"data\":{\"pa\x01\n"
                   R"({"data":{"path":"/run/wedge/runs/b"},"kind":"directory","seq":3})"
                   "\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_TRUE(entries[0].change.ok());
  ASSERT_FALSE(entries[1].change.ok());
  EXPECT_EQ(entries[1].change.error().message(), "journal line 2 is not JSON");
  EXPECT_EQ(entries[2].seq, 3u);
}

// A scope that accepts the changes of OneOfEachKind, as this host's would.
UndoScope RunWedgeScope() {
  return {"/run/wedge",
          "/proc/sys",
          wedge::AllowedSysctls(),
          {"/sys/fs/cgroup/pids"},
          "/var/cache/wedge/stacks"};
}

TEST(UndoScope, AcceptsEveryKindOfChangeARunMakes) {
  for (const JournalChange& change : OneOfEachKind()) {
    Status in_scope = RunWedgeScope().Check(change);
    EXPECT_TRUE(in_scope.ok()) << KindOf(change) << ": " << in_scope.error().message();
  }
  EXPECT_TRUE(RunWedgeScope().Check(CgroupChange{"pids", "wedge", "/sys/fs/cgroup/pids"}).ok());
  EXPECT_TRUE(
      RunWedgeScope().Check(MountChange{"/run/wedge/runs/run-1/fuse/mnt", "fuse.wedge-fuse"}).ok());
  EXPECT_TRUE(RunWedgeScope()
                  .Check(DirectoryChange{"/var/cache/wedge/stacks/.build-stacks-1-1-bullseye"})
                  .ok());
}

TEST(UndoScope, RefusesWhatWedgeNeverDoes) {
  const std::vector<std::pair<JournalChange, std::string>> refused = {
      {DirectoryChange{"/etc"}, "directory '/etc' is not a run directory in /run/wedge/runs"},
      {DirectoryChange{"/run/wedge/runs/../../etc"}, "not a run directory"},
      {DirectoryChange{"/run/wedge/runs"}, "not a run directory"},
      {DirectoryChange{"/run/wedge/runs/a/b"}, "not a run directory"},
      {DirectoryChange{"/srv/state/runs/a"}, "not a run directory"},
      // The stack cache only for a build's own directory: never a cached root, nor elsewhere.
      {DirectoryChange{"/var/cache/wedge/stacks/bullseye-0123456789ab"},
       "or a release root build in /var/cache/wedge/stacks"},
      {DirectoryChange{"/var/cache/wedge/stacks"}, "not a run directory"},
      {DirectoryChange{"/var/cache/wedge/.build-x"}, "not a run directory"},
      {DirectoryChange{"/var/cache/wedge/stacks/.build-x/../../../../etc"}, "not a run directory"},
      {CgroupChange{"pids", "wedge/run-1", "/tmp/fake"},
       "cgroup mount '/tmp/fake' is not a mounted cgroup hierarchy"},
      {CgroupChange{"pids", "system.slice", "/sys/fs/cgroup/pids"},
       "cgroup 'system.slice' is not under wedge's own tree wedge/"},
      {CgroupChange{"pids", "wedge/../system.slice", "/sys/fs/cgroup/pids"}, "not under wedge's"},
      {CgroupChange{"pids", "/wedge/run-1", "/sys/fs/cgroup/pids"}, "not under wedge's"},
      {CgroupChange{"pids", "wedged/run-1", "/sys/fs/cgroup/pids"}, "not under wedge's"},
      {MountChange{"/proc", "proc"},
       "mount proc on '/proc' is neither fusectl on /sys/fs/fuse/connections nor inside a run "
       "directory in /run/wedge/runs"},
      {MountChange{"/sys/fs/fuse/connections", "tmpfs"}, "is neither fusectl"},
      {MountChange{"/run/wedge/runs/run-1", "tmpfs"}, "is neither fusectl"},
      {MountChange{"/run/wedge/runs/run-1/../../../../home", "tmpfs"}, "is neither fusectl"},
      {SysctlChange{"kernel.core_pattern", "/proc/sys/kernel/core_pattern", "core"},
       "sysctl 'kernel.core_pattern' is not one wedge changes"},
      {SysctlChange{"fs.pipe-max-size", "/proc/sys/kernel/core_pattern", "1048576"},
       "sysctl fs.pipe-max-size at '/proc/sys/kernel/core_pattern', not at "
       "'/proc/sys/fs/pipe-max-size'"},
      {SysctlChange{"fs.pipe-max-size", "/proc/sys/fs/pipe-max-size", "|/tmp/x"},
       "sysctl fs.pipe-max-size back to '|/tmp/x', not a decimal value"},
      {SysctlChange{"fs.pipe-max-size", "/proc/sys/fs/pipe-max-size", ""}, "not a decimal"},
      {ProcessChange{1, 1, std::nullopt}, "process 1 is init or wedge itself"},
      {ProcessChange{0, 1, std::nullopt}, "process 0 is init or wedge itself"},
      {ProcessChange{-1, 1, std::nullopt}, "process -1 is init or wedge itself"},
      {ProcessChange{::getpid(), 1, std::nullopt}, "is init or wedge itself"},
      {CgroupTreeChange{"docker"}, "cgroup tree 'docker' is not one of wedge's (wedge-...)"},
      {CgroupTreeChange{"wedge-a/b"}, "is not one of wedge's"},
      {CgroupTreeChange{"wedge-"}, "is not one of wedge's"},
  };
  for (const auto& [change, message] : refused) {
    Status in_scope = RunWedgeScope().Check(change);
    ASSERT_FALSE(in_scope.ok()) << ToJson(1, change).dump();
    EXPECT_NE(in_scope.error().message().find(message), std::string::npos)
        << in_scope.error().message();
  }
}

TEST_F(JournalTest, AReplayedEntryOutsideTheScopeIsRefusedAndTheJournalSetAside) {
  // A sysctl wedge never changes, at its own path in the fake /proc/sys.
  fs::create_directories(root_ / "proc_sys" / "kernel");
  const fs::path core_pattern = root_ / "proc_sys" / "kernel" / "core_pattern";
  std::ofstream(core_pattern) << "core\n";
  fs::path journal = WriteOrphan(
      "dead-run",
      ToJson(1, SysctlChange{"kernel.core_pattern", core_pattern, "|/tmp/x"}).dump() + "\n");

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(TrimTrailing(*ReadFile(core_pattern)), "core");
  EXPECT_TRUE(recovery.undone.empty());
  EXPECT_TRUE(recovery.failed.empty());
  ASSERT_EQ(recovery.skipped.size(), 2u);
  EXPECT_EQ(recovery.skipped[0],
            "dead-run.jsonl: skipped journal entry 1 (sysctl) refused: sysctl "
            "'kernel.core_pattern' is not one wedge changes");
  EXPECT_EQ(recovery.skipped[1], "set dead-run.jsonl aside as dead-run.jsonl.rejected");
  EXPECT_FALSE(fs::exists(journal));
  EXPECT_TRUE(fs::exists(journal.string() + ".rejected"));
  // Set aside, it is not replayed again.
  JournalRecovery again = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(again.undone.empty() && again.skipped.empty() && again.failed.empty());
}

TEST_F(JournalTest, ACorruptMiddleLineIsReportedAndSkippedAndTheRestIsUndone) {
  const fs::path run_dir = root_ / "state" / "runs" / "dead-run";
  fs::create_directories(run_dir);
  fs::path journal =
      WriteOrphan("dead-run", ToJson(1, DirectoryChange{run_dir}).dump() + "\n" +
                                  "{\"seq\":2,\"kind\":\x02garbage\n" + SysctlLine(3));
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(recovery.failed.empty());
  EXPECT_EQ(Sysctl(), "16384");
  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_EQ(recovery.undone, (std::vector<std::string>{"restored fs.pipe-user-pages-soft = 16384",
                                                       "removed " + run_dir.string()}));
  EXPECT_EQ(recovery.skipped,
            (std::vector<std::string>{"dead-run.jsonl: skipped journal line 2 is not JSON",
                                      "set dead-run.jsonl aside as dead-run.jsonl.rejected"}));
  EXPECT_FALSE(fs::exists(journal));
}

TEST_F(JournalTest, AnEntryWithAWrongTypeIsSkippedAndTheGoodOnesAreUndone) {
  fs::path journal = WriteOrphan(
      "dead-run", SysctlLine(1) +
                      R"({"data":{"path":["not","a","path"]},"kind":"directory","seq":2})"
                      "\n");
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(recovery.failed.empty());
  EXPECT_EQ(Sysctl(), "16384");
  ASSERT_EQ(recovery.skipped.size(), 2u);
  EXPECT_EQ(
      recovery.skipped[0],
      R"(dead-run.jsonl: skipped journal line 2: journal entry 2 (directory): data: "path" is not a string)");
  EXPECT_TRUE(fs::exists(journal.string() + ".rejected"));
}

TEST_F(JournalTest, EntriesAreUndoneNewestFirst) {
  const fs::path first = root_ / "state" / "runs" / "first";
  const fs::path last = root_ / "state" / "runs" / "last";
  fs::create_directories(first);
  fs::create_directories(last);
  WriteOrphan("dead-run", ToJson(1, DirectoryChange{first}).dump() + "\n" + SysctlLine(2) +
                              ToJson(3, DirectoryChange{last}).dump() + "\n");
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(recovery.undone,
            (std::vector<std::string>{
                "removed " + last.string(), "restored fs.pipe-user-pages-soft = 16384",
                "removed " + first.string(), "replayed journal dead-run.jsonl"}));
}

TEST_F(JournalTest, APartialFailureKeepsTheJournalAndTheNextCleanupRetriesOnlyWhatFailed) {
  // fs.pipe-max-size cannot be written back: its file is a directory.
  const fs::path max_size = root_ / "proc_sys" / "fs" / "pipe-max-size";
  fs::create_directories(max_size);
  fs::path journal = WriteOrphan(
      "dead-run", SysctlLine(1) +
                      ToJson(2, SysctlChange{"fs.pipe-max-size", max_size, "1048576"}).dump() +
                      "\n");
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  ASSERT_EQ(recovery.failed.size(), 1u);
  EXPECT_EQ(recovery.failed[0].rfind("dead-run.jsonl: ", 0), 0u) << recovery.failed[0];
  EXPECT_EQ(recovery.undone,
            (std::vector<std::string>{"restored fs.pipe-user-pages-soft = 16384"}));
  EXPECT_TRUE(fs::exists(journal));

  // The sysctl undone the first time is closed: set again, it is left alone now.
  std::ofstream(SysctlFile()) << "1\n";
  fs::remove(max_size);
  std::ofstream(max_size) << "4096\n";
  JournalRecovery retried = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(retried.failed.empty());
  EXPECT_EQ(retried.undone, (std::vector<std::string>{"restored fs.pipe-max-size = 1048576",
                                                      "replayed journal dead-run.jsonl"}));
  EXPECT_EQ(Sysctl(), "1");
  EXPECT_EQ(TrimTrailing(*ReadFile(max_size)), "1048576");
  EXPECT_FALSE(fs::exists(journal));
}

TEST_F(JournalTest, AJournalOfAnotherModeIsNotReplayed) {
  fs::path journal = WriteOrphan("dead-run", SysctlLine(1));
  fs::permissions(journal, fs::perms(0644));
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(Sysctl(), "1");
  EXPECT_TRUE(recovery.undone.empty());
  ASSERT_EQ(recovery.skipped.size(), 2u);
  EXPECT_EQ(recovery.skipped[0],
            "refusing to replay " + journal.string() + ": mode 0644, not 0600");
  EXPECT_TRUE(fs::exists(journal.string() + ".rejected"));
}

TEST_F(JournalTest, AJournalThatIsASymbolicLinkIsNotReplayed) {
  fs::path target = WriteOrphan("elsewhere", SysctlLine(1));
  fs::rename(target, root_ / "elsewhere.jsonl");
  const fs::path link = root_ / "state" / "journal" / "dead-run.jsonl";
  fs::create_symlink(root_ / "elsewhere.jsonl", link);
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(Sysctl(), "1");
  ASSERT_FALSE(recovery.skipped.empty());
  EXPECT_EQ(recovery.skipped[0], "refusing to replay " + link.string() + ": a symbolic link");
}

TEST_F(JournalTest, AJournalOfAnotherOwnerIsNotReplayed) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another uid needs root";
  fs::path journal = WriteOrphan("dead-run", SysctlLine(1));
  ASSERT_EQ(::chown(journal.c_str(), 65534, 65534), 0);
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(Sysctl(), "1");
  ASSERT_FALSE(recovery.skipped.empty());
  EXPECT_EQ(recovery.skipped[0], "refusing to replay " + journal.string() +
                                     ": owned by uid 65534, not by wedge's uid 0");
}

TEST_F(JournalTest, NoJournalIsReplayedFromADirectoryOthersMayWriteTo) {
  fs::path journal = WriteOrphan("dead-run", SysctlLine(1));
  fs::permissions(root_ / "state" / "journal", fs::perms(0755));
  std::ofstream(SysctlFile()) << "1\n";

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(Sysctl(), "1");
  EXPECT_TRUE(recovery.undone.empty());
  const fs::path directory = root_ / "state" / "journal";
  EXPECT_EQ(recovery.skipped,
            (std::vector<std::string>{"refusing to replay the journals in " + directory.string() +
                                      ": " + directory.string() + " has mode 0755, not 0700"}));
  EXPECT_TRUE(fs::exists(journal));  // left for a person to look at, not renamed
}

// A child that waits to be killed; reaped by the test.
pid_t ForkSleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}

// Waits for `pid` and returns the signal that ended it, 0 if it exited, -1 if it still runs
// after 5 s.
int EndingSignal(pid_t pid) {
  const std::int64_t deadline = MonotonicMillis() + 5000;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (MonotonicMillis() > deadline) return -1;
    ::usleep(1000);
  }
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST_F(JournalTest, AProcessIsKilledOnReplayOnlyIfItIsStillTheSameProcess) {
  pid_t same = ForkSleeper();
  pid_t reused = ForkSleeper();
  ASSERT_GT(same, 0);
  ASSERT_GT(reused, 0);
  std::optional<std::uint64_t> same_start = ProcessStartTime(same);
  std::optional<std::uint64_t> reused_start = ProcessStartTime(reused);
  ASSERT_TRUE(same_start && reused_start);
  // The second entry names the pid with another start time: the pid was reused since.
  WriteOrphan("dead-run",
              ToJson(1, ProcessChange{same, *same_start, "sandbox-init"}).dump() + "\n" +
                  ToJson(2, ProcessChange{reused, *reused_start + 1, "strace"}).dump() + "\n");

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_EQ(EndingSignal(same), SIGKILL);
  EXPECT_EQ(recovery.undone, (std::vector<std::string>{"killed process " + std::to_string(same),
                                                       "replayed journal dead-run.jsonl"}));
  EXPECT_EQ(::waitpid(reused, nullptr, WNOHANG), 0) << "a reused pid was killed";
  ::kill(reused, SIGKILL);
  EXPECT_EQ(EndingSignal(reused), SIGKILL);
}

TEST_F(JournalTest, ACgroupIsEmptiedAndRemovedOnReplay) {
  if (::geteuid() != 0) GTEST_SKIP() << "creating a cgroup needs root";
  Result<fs::path> hierarchy = PidsHierarchy();
  ASSERT_TRUE(hierarchy.ok()) << hierarchy.error().message();
  // Journaled level by level as ScopedCgroup does, so that replay removes what it created.
  std::string journal_text;
  std::uint64_t seq = 0;
  fs::path level = *hierarchy;
  const fs::path relative = fs::path("wedge") / ("unit-journal-" + std::to_string(::getpid()));
  for (const auto& part : relative) {
    level /= part;
    if (fs::exists(level)) continue;
    journal_text +=
        ToJson(++seq, CgroupChange{"pids", level.lexically_relative(*hierarchy), *hierarchy})
            .dump() +
        "\n";
    ASSERT_TRUE(fs::create_directory(level));
  }
  pid_t member = ForkSleeper();
  ASSERT_GT(member, 0);
  ASSERT_TRUE(WriteExisting(level / "cgroup.procs", std::to_string(member)).ok());
  WriteOrphan("dead-run", journal_text);

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  EXPECT_TRUE(recovery.failed.empty()) << recovery.failed.front();
  EXPECT_TRUE(recovery.skipped.empty()) << recovery.skipped.front();
  EXPECT_EQ(EndingSignal(member), SIGKILL);
  EXPECT_FALSE(fs::exists(level));
  ASSERT_FALSE(recovery.undone.empty());
  EXPECT_EQ(recovery.undone.front(), "killed 1 process(es) in " + level.string());
}

TEST_F(JournalTest, AMountInsideARunDirectoryIsUnmountedOnReplayAndOneElsewhereIsNot) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  const fs::path run_dir = root_ / "state" / "runs" / "dead-run";
  const fs::path inside = run_dir / "mnt";
  const fs::path outside = root_ / "outside";
  fs::create_directories(inside);
  fs::create_directories(outside);
  ASSERT_EQ(::mount("tmpfs", inside.c_str(), "tmpfs", 0, nullptr), 0);
  ASSERT_EQ(::mount("tmpfs", outside.c_str(), "tmpfs", 0, nullptr), 0);
  WriteOrphan("dead-run", ToJson(1, DirectoryChange{run_dir}).dump() + "\n" +
                              ToJson(2, MountChange{inside, "tmpfs"}).dump() + "\n" +
                              ToJson(3, MountChange{outside, "tmpfs"}).dump() + "\n");

  JournalRecovery recovery = RecoverOrphanJournals(Scope());
  const bool outside_still_mounted = IsMountedAs(outside, "tmpfs");
  if (outside_still_mounted) ::umount2(outside.c_str(), 0);
  EXPECT_TRUE(outside_still_mounted) << "replay unmounted what wedge never mounted";
  EXPECT_FALSE(IsMountedAs(inside, "tmpfs"));
  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_TRUE(recovery.failed.empty()) << recovery.failed.front();
  EXPECT_EQ(recovery.undone, (std::vector<std::string>{"unmounted tmpfs from " + inside.string(),
                                                       "removed " + run_dir.string()}));
  ASSERT_EQ(recovery.skipped.size(), 2u);
  EXPECT_NE(recovery.skipped[0].find("journal entry 3 (mount) refused"), std::string::npos)
      << recovery.skipped[0];
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
