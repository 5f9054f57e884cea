#include "runner/flap_step.h"
#include "wedge/kinds/flap.h"
#include "wedge/runner/run_context.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {

Status Run(const scenario::FlapStep& step, runner::RunContext& context) {
  if (context.docker_stack == nullptr) return Error(step.name + " needs the private docker stack");
  // A rate bound on the "after" window needs it to span whole seconds.
  std::int64_t min_after_ms = 0;
  for (const signature::Signature* signature : {&context.scenario.bug, &context.scenario.healthy}) {
    for (const auto& rate : signature->rates) {
      if (rate.window == "after") min_after_ms = 2000;
    }
  }
  WEDGE_ASSIGN_OR_RETURN(
      runner::FlapOutcome flap,
      runner::RunFlapStep(step, *context.docker_stack, context.run_dir, min_after_ms,
                          [&context](const std::string& line) { context.Say(line); }));
  for (auto& figure : flap.figures) context.result.figures.push_back(std::move(figure));
  for (auto& series : flap.series) context.series.push_back(std::move(series));
  context.result.recovery.push_back("containerd serving again; docker ps answered " +
                                    flap.recovered_text);
  context.trigger_end_ms = sys::MonotonicMillis();
  return OkStatus();
}

}  // namespace wedge::kinds
