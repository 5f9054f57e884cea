// `wedge cleanup`: undo whatever an interrupted run left on the host.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/journal.h"

namespace wedge::cli {

int Execute(const CleanupCommand&) {
  if (::geteuid() != 0) {
    std::cerr << "wedge: cleanup must run as root\n";
    return kRequirementMissing;
  }
  auto cleaned = runner::Cleanup(sys::DefaultStateDirectory());
  if (!cleaned.ok()) {
    std::cerr << "wedge: cleanup: " << cleaned.error().message() << "\n";
    return kInternalError;
  }
  for (const auto& line : *cleaned) std::cout << line << "\n";
  if (cleaned->empty()) std::cout << "nothing to clean up\n";
  return kAllAsExpected;
}

}  // namespace wedge::cli
