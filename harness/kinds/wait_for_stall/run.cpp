#include <unistd.h>

#include "wedge/kinds/wait_for_stall.h"
#include "wedge/probe/signals.h"
#include "wedge/probe/task.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {
namespace {

enum class StallOutcome { kStalled, kAllExited, kTimedOut, kInterrupted };

struct Waited {
  StallOutcome outcome = StallOutcome::kTimedOut;
  std::int64_t after_ms = 0;        // from the end of the trigger to the decision
  std::int64_t quiet_since_ms = 0;  // when the activity stopped changing
};

// Watches /proc until nothing changes for `settle_ms` (a stall) or everything has exited.
// A stall is observed, not assumed: state, wchan, CPU time and context switches of every task
// must be identical across every sample of the settle window.
Waited WaitForStall(const scenario::StallDetection& stall, const runner::RunContext& context) {
  Waited waited;
  const std::int64_t start = sys::MonotonicMillis();
  probe::SettleWatch settle(stall.settle_ms, start);
  for (;;) {
    const std::int64_t now = sys::MonotonicMillis();
    waited.after_ms = now - start;
    if (sys::Interrupted()) {
      waited.outcome = StallOutcome::kInterrupted;
      return waited;
    }
    std::vector<pid_t> pids = context.SandboxProcesses();
    if (context.sandbox->InitExited() && context.cgroup->Processes().empty()) {
      waited.outcome = StallOutcome::kAllExited;
      return waited;
    }
    if (settle.Settled(probe::ReadActivity(pids), now)) {
      waited.outcome = StallOutcome::kStalled;
      waited.quiet_since_ms = settle.quiet_since_ms() - start;
      return waited;
    }
    if (now - start >= stall.timeout_ms) {
      waited.outcome = StallOutcome::kTimedOut;
      return waited;
    }
    ::usleep(static_cast<useconds_t>(stall.poll_interval_ms) * 1000);
  }
}

}  // namespace

Status Run(const scenario::WaitForStallStep& /*step*/, runner::RunContext& context) {
  const scenario::StallDetection& stall = context.scenario.stall;
  context.clock.Begin("stall", "waiting for the stall (settle " + std::to_string(stall.settle_ms) +
                                   " ms, poll every " + std::to_string(stall.poll_interval_ms) +
                                   " ms)");
  const Waited waited = WaitForStall(stall, context);
  context.result.stall_detected_after_ms = sys::MonotonicMillis() - context.trigger_end_ms;
  switch (waited.outcome) {
    case StallOutcome::kInterrupted:
      return Error("interrupted by " + probe::SignalName(sys::Interrupted()));
    case StallOutcome::kStalled:
      context.Say("stalled: nothing changed for " + std::to_string(stall.settle_ms) +
                  " ms (quiet " + std::to_string(waited.quiet_since_ms) + " ms after the trigger)");
      break;
    case StallOutcome::kAllExited:
      context.Say("every process of the sandbox exited after " + std::to_string(waited.after_ms) +
                  " ms");
      break;
    case StallOutcome::kTimedOut:
      context.Say("neither stalled nor exited within " + std::to_string(stall.timeout_ms) + " ms");
      break;
  }
  context.all_exited = waited.outcome == StallOutcome::kAllExited;
  context.stall_timed_out = waited.outcome == StallOutcome::kTimedOut;
  context.clock.Begin("capture", "capturing the signature");
  if (!context.all_exited) {
    context.snapshot = probe::ReadProcesses(context.SandboxProcesses(), /*peek_pipes=*/true);
  }
  for (auto& process : context.snapshot.processes) {
    if (auto label = context.labels.find(process.pid); label != context.labels.end()) {
      process.label = label->second;
    }
  }
  return OkStatus();
}

}  // namespace wedge::kinds
