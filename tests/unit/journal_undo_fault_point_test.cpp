// The fault point inside Journal::UndoAll ("undo"), on a journal of run directories in a private
// state directory: in a build with fault points the undo stops half done, and what a kill there
// leaves, RecoverOrphanJournals (`wedge cleanup`) finishes; without, UndoAll runs to its end.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fault_point_child.h"
#include "wedge/base/fault_point.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using testing::FaultPointChild;
using testing::RunAtFaultPoint;

TEST(JournalUndoFaultPoint, StopsWithTheNewestChangeUndoneAndTheRestLeftForCleanup) {
  const fs::path state_dir =
      fs::temp_directory_path() / ("wedge-fault-point-test-" + std::to_string(::getpid()));
  fs::remove_all(state_dir);
  const fs::path older = state_dir / "runs" / "older";
  const fs::path newer = state_dir / "runs" / "newer";
  const fs::path journal_file = state_dir / "journal" / "undo-test.jsonl";
  bool checked = false;
  const FaultPointChild child = RunAtFaultPoint(
      "undo",
      [&] {
        Result<std::unique_ptr<sys::Journal>> journal =
            sys::Journal::Create(state_dir, "undo-test");
        if (!journal.ok()) ::_exit(3);
        for (const fs::path& directory : {older, newer}) {
          if (!(*journal)->Record(sys::DirectoryChange{directory}).ok() ||
              !sys::MakePrivateDirectory(directory).ok()) {
            ::_exit(4);
          }
        }
        if (!(*journal)->UndoAll().ok()) ::_exit(5);
      },
      [&] {
        checked = true;
        EXPECT_FALSE(fs::exists(newer));
        EXPECT_TRUE(fs::exists(older));
        Result<std::string> text = sys::ReadFile(journal_file);
        EXPECT_TRUE(text.ok());
        const std::vector<sys::JournalEntry> pending = sys::ParseJournal(text.ok() ? *text : "");
        EXPECT_EQ(pending.size(), 1u);
        if (!pending.empty()) {
          EXPECT_EQ(pending.front().seq, 1u);
        }
        return SIGKILL;
      });
  if (FaultPointsCompiledIn()) {
    EXPECT_TRUE(child.stopped);
    EXPECT_TRUE(checked);
    EXPECT_FALSE(child.exited);
    EXPECT_EQ(child.output, "fault point: stopped before undo\n");
    // What the killed undo left, cleanup finishes.
    sys::UndoScope scope;  // run directories of the test's state directory: all it journaled
    scope.state_dir = state_dir;
    const sys::JournalRecovery recovered = sys::RecoverOrphanJournals(scope);
    EXPECT_TRUE(recovered.skipped.empty()) << ::testing::PrintToString(recovered.skipped);
    EXPECT_TRUE(recovered.failed.empty()) << ::testing::PrintToString(recovered.failed);
    EXPECT_FALSE(fs::exists(older));
    EXPECT_FALSE(fs::exists(journal_file));
  } else {
    EXPECT_FALSE(child.stopped);
    EXPECT_TRUE(child.exited);
    EXPECT_FALSE(fs::exists(newer));
    EXPECT_FALSE(fs::exists(older));
  }
  fs::remove_all(state_dir);
}

}  // namespace
}  // namespace wedge
