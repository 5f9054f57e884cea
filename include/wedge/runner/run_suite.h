// One suite of scenario runs, as `wedge run`, `wedge verify`, `wedge bisect` and the kernel
// matrix's host column all run it: one Suite, each scenario run `repeat` times in a row, the
// suite torn down, and the host checked against what it was before the suite.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "wedge/report/report.h"
#include "wedge/runner/runner.h"
#include "wedge/scenario/scenario.h"

namespace wedge::runner {

struct SuitePlan {
  int repeat = 1;  // runs of each scenario, one after the other
  // Called before and after each run (`run` counts from 1), e.g. to print progress; may be unset.
  std::function<void(const scenario::Scenario&, int run)> before_run;
  std::function<void(const scenario::Scenario&, int run, const report::RunResult&)> after_run;
};

struct SuiteRun {
  std::vector<report::RunResult> results;  // scenario by scenario, each one's runs in order
  std::vector<std::string> teardown;       // what tearing the suite down did, one line each
  std::vector<std::string> leftovers;      // what the suite left on the host; empty when clean
  bool host_clean() const { return leftovers.empty(); }
};

// Runs every scenario `plan.repeat` times in one Suite made with `options` (no further run
// starts once SIGINT or SIGTERM arrived), tears the suite down, and checks the host with
// SettledLeftovers against its state from before the suite.
SuiteRun RunSuite(std::span<const scenario::Scenario> scenarios, const RunOptions& options,
                  const SuitePlan& plan);

// The `index`-th (from 1) of `count` slices of `scenarios`, the same on every machine: the
// scenarios sorted by file path, the i-th (from 0) goes to slice (i mod count) + 1. Slices name
// each scenario once, so their JUnit files merge.
std::vector<scenario::Scenario> ShardOf(std::vector<scenario::Scenario> scenarios, int index,
                                        int count);

// Why a suite's runs were not all as expected, the first that applies in this order.
enum class SuiteFailure {
  kNone,
  kHostNotClean,   // the suite left something on the host
  kInternalError,  // a run ended with an internal error
  kNotAsExpected,  // a run's verdict was not the expected one, or its own host check failed
  kFlaky,          // repeated runs of a scenario gave different verdicts or signature hashes
};
SuiteFailure JudgeSuite(const SuiteRun& run);

}  // namespace wedge::runner
