#include <chrono>

#include "runner/command_watch.h"
#include "wedge/kinds/drain_pipes.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

void Recover(const scenario::DrainPipes& /*action*/, runner::RunContext& context) {
  if (!context.command_watch) return;  // the loader allows it only with a watched step
  for (auto& line : context.command_watch->DrainPipes(std::chrono::seconds(10))) {
    context.result.recovery.push_back(std::move(line));
  }
}

}  // namespace wedge::kinds
