// Recovery of orphan journals racing a run that ends: the run removes its journal while still
// holding its lock, so recovery that waited for the lock must find nothing to do, not fail.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::sys {
namespace {

namespace fs = std::filesystem;

// How many of this process's descriptors are open on `file`.
int DescriptorsOn(const fs::path& file) {
  int count = 0;
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(fd.path(), link_ec) == file) ++count;
  }
  return count;
}

TEST(JournalRecovery, AJournalRemovedByItsOwnerWhileRecoveryWaitsForItsLockIsSkipped) {
  const fs::path state =
      fs::temp_directory_path() / ("wedge-journal-race-test-" + std::to_string(::getpid()));
  fs::remove_all(state);
  struct RemoveAtEnd {
    fs::path path;
    ~RemoveAtEnd() { fs::remove_all(path); }
  } remove_at_end{state};
  auto journal = Journal::Create(state, "run-ending");
  ASSERT_TRUE(journal.ok()) << journal.error().message();
  const fs::path file = (*journal)->path();
  ASSERT_EQ(DescriptorsOn(file), 1);

  // Recovery opens the journal and then waits (up to 300 ms) for its owner's lock.
  auto recovery = std::async(std::launch::async,
                             [&] { return RecoverOrphanJournals(UndoScope::ForHost(state)); });
  const std::int64_t deadline = MonotonicMillis() + 5000;
  while (DescriptorsOn(file) < 2 && MonotonicMillis() < deadline) std::this_thread::yield();
  ASSERT_EQ(DescriptorsOn(file), 2) << "recovery never opened the journal";
  // The run ends: nothing pending, so its journal is unlinked, then the lock goes with the fd.
  journal->reset();

  JournalRecovery recovered = recovery.get();
  EXPECT_TRUE(recovered.undone.empty());
  EXPECT_TRUE(recovered.skipped.empty()) << recovered.skipped.front();
  EXPECT_TRUE(recovered.failed.empty()) << recovered.failed.front();
}

}  // namespace
}  // namespace wedge::sys
