// `wedge cleanup`: undo whatever an interrupted run left on the host.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "wedge/runner/hold.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/journal.h"

namespace wedge::cli {

int Execute(const CleanupCommand&) {
  if (::geteuid() != 0) {
    std::cerr << "wedge: cleanup must run as root\n";
    return kRequirementMissing;
  }
  const std::filesystem::path state_dir = sys::DefaultStateDirectory();
  // A held run (wedge run --hold) is asked to release its state and tears down on its own; its
  // journal is then gone, or an orphan that the replay below undoes.
  bool released_any = false;
  Status released =
      runner::ReleaseHeldRun(state_dir, runner::kHeldRunReleaseBound, [&](const std::string& line) {
        std::cout << line << "\n";
        released_any = true;
      });
  if (!released.ok()) std::cerr << "wedge: cleanup failed: " << released.error().message() << "\n";
  sys::JournalRecovery cleaned = runner::Cleanup(state_dir);
  for (const auto& line : cleaned.undone) std::cout << line << "\n";
  // What was not replayed is said, but is no failure of the cleanup: the journals it came from
  // are set aside (NAME.jsonl.rejected) for a person to read.
  for (const auto& line : cleaned.skipped) std::cerr << "wedge: cleanup: " << line << "\n";
  for (const auto& line : cleaned.failed) std::cerr << "wedge: cleanup failed: " << line << "\n";
  if (!cleaned.failed.empty() || !released.ok()) return kInternalError;
  if (!released_any && cleaned.undone.empty() && cleaned.skipped.empty()) {
    std::cout << "nothing to clean up\n";
  }
  return kAllAsExpected;
}

}  // namespace wedge::cli
