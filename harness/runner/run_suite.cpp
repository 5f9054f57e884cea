#include "wedge/runner/run_suite.h"

#include <algorithm>

#include "wedge/sys/process.h"

namespace wedge::runner {

SuiteRun RunSuite(std::span<const scenario::Scenario> scenarios, const RunOptions& options,
                  const SuitePlan& plan) {
  SuiteRun run;
  const HostState before = CaptureHostState(options.state_dir);
  {
    Suite suite(options);
    for (const auto& scenario : scenarios) {
      for (int attempt = 1; attempt <= plan.repeat && !sys::Interrupted(); ++attempt) {
        if (plan.before_run) plan.before_run(scenario, attempt);
        report::RunResult result = RunScenario(scenario, suite);
        if (plan.after_run) plan.after_run(scenario, attempt, result);
        run.results.push_back(std::move(result));
      }
    }
    // The shared stack outlives single scenarios: it is torn down, and the host checked, here.
    run.teardown = suite.TearDown();
  }
  run.leftovers = SettledLeftovers(before, options.state_dir);
  return run;
}

std::vector<scenario::Scenario> ShardOf(std::vector<scenario::Scenario> scenarios, int index,
                                        int count) {
  std::sort(scenarios.begin(), scenarios.end(),
            [](const auto& a, const auto& b) { return a.file < b.file; });
  std::vector<scenario::Scenario> slice;
  for (size_t i = 0; i < scenarios.size(); ++i) {
    if (static_cast<int>(i % count) + 1 == index) slice.push_back(std::move(scenarios[i]));
  }
  return slice;
}

SuiteFailure JudgeSuite(const SuiteRun& run) {
  if (!run.host_clean()) return SuiteFailure::kHostNotClean;
  const auto& results = run.results;
  if (std::any_of(results.begin(), results.end(), [](const auto& r) { return r.error; })) {
    return SuiteFailure::kInternalError;
  }
  if (!std::all_of(results.begin(), results.end(), [](const auto& r) { return r.AsExpected(); })) {
    return SuiteFailure::kNotAsExpected;
  }
  // Determinism is the product: runs of one scenario that disagree fail, whatever they say.
  const std::vector<report::Determinism> determinism =
      report::SummarizeDeterminism(report::Report{{}, results});
  if (std::any_of(determinism.begin(), determinism.end(),
                  [](const auto& d) { return d.flaky(); })) {
    return SuiteFailure::kFlaky;
  }
  return SuiteFailure::kNone;
}

}  // namespace wedge::runner
