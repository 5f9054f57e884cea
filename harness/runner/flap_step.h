// Running one flap step: containerd taken away and brought back under a watched dockerd.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/report/report.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"
#include "wedge/stack/docker_stack.h"

namespace wedge::runner {

struct FlapOutcome {
  std::vector<report::RunResult::Figure> figures;
  std::vector<signature::ObservedSeries> series;
  std::string recovered_text;  // "412 ms after containerd served again"
};

// Attaches the syscall probe to dockerd, takes containerd away `cycles` times as the step says
// (each outage lasts `down_ms` from the moment it is observed), brings it back, and measures
// dockerd's recovery: the time from containerd serving again to the first working
// GET /containers/json, containers listed before and after, dockerd's fds and threads before
// and after. Windows: "outage" (all outages), "between" (up time between cycles) and "after"
// (from the last return until recovery was measured, and at least `min_after_ms`: 2 s when a
// signature bounds a rate in the "after" window, so that it spans whole seconds; else 0, and
// nobody waits for a window no signature reads).
Result<FlapOutcome> RunFlapStep(const scenario::FlapStep& step, stack::DockerStack& stack,
                                const std::filesystem::path& run_dir, std::int64_t min_after_ms,
                                const std::function<void(const std::string&)>& say);

}  // namespace wedge::runner
