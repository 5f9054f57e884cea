// What the soak bench (bench/soak.cpp) counts over its passes of the suite, kept apart from
// running them so that the unit tests check the counting and the verdict on recorded results.
// It keeps a few counters per scenario, never the runs' evidence: the bench's own memory must
// not grow with the number of passes, since its RSS is what it measures.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/report/report.h"

namespace wedge::bench {

// How far wedge's own resources may grow between the sample after the first pass and the
// sample after the last: RSS by 4 MiB or a tenth of the first sample, whichever is more (the
// allocator keeps freed pages for reuse, so RSS settles on a plateau rather than a constant);
// open descriptors not at all.
inline constexpr std::int64_t kRssGrowthFloorKib = 4096;
inline constexpr std::int64_t kRssGrowthFraction = 10;  // first / 10
inline constexpr std::int64_t kFdGrowthTolerance = 0;

// The runs of one scenario over the soak.
struct ScenarioTally {
  std::string scenario;
  int runs = 0;
  std::map<std::string, int> verdicts;  // "reproduced" -> 100
  std::vector<std::string> hashes;      // distinct signature hashes, in order of appearance
  int leaks = 0;                        // runs whose own host check found something left
  int not_as_expected = 0;              // wrong verdict, internal error, or a dirty host
};

// wedge's own process after a pass.
struct ResourceSample {
  std::int64_t rss_kib = 0;
  std::int64_t fds = 0;
};

// What one pass of the suite left on the host: the tests' own snapshot against the one from
// before the pass, and the suite's own check (runner::SuiteRun::leftovers).
struct PassLeak {
  int pass = 0;  // from 1
  std::vector<std::string> snapshot;
  std::vector<std::string> suite;
};

struct Range {
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::int64_t max = 0;
};

class SoakTally {
 public:
  // One finished scenario run.
  void AddRun(const report::RunResult& result);
  // A run cut short by a stop signal: it is not counted, since it says nothing of the bug.
  void AddInterruptedRun() { ++interrupted_runs_; }
  // The end of a pass: what the host checks found after it, and wedge's resources then.
  void AddPass(std::vector<std::string> snapshot_leftovers,
               std::vector<std::string> suite_leftovers, ResourceSample sample);

  int passes() const { return static_cast<int>(samples_.size()); }
  int interrupted_runs() const { return interrupted_runs_; }
  const std::vector<ScenarioTally>& scenarios() const { return scenarios_; }
  const std::vector<PassLeak>& pass_leaks() const { return pass_leaks_; }
  // Runs whose own check found leftovers, plus passes after which either check did.
  int Leaks() const;
  int ScenariosWithSeveralHashes() const;
  Range Rss() const;
  Range Fds() const;
  // Why the soak fails, one line each; empty when it passes: a leak, a scenario with more than
  // one hash, a run not as expected, or RSS or descriptors grown beyond the tolerance.
  std::vector<std::string> Failures() const;

 private:
  std::vector<ScenarioTally> scenarios_;
  std::vector<PassLeak> pass_leaks_;
  std::vector<ResourceSample> samples_;
  int interrupted_runs_ = 0;
};

// The summary: a line per scenario, then `name: value unit` lines for RSS and descriptors, the
// leaks each pass left, the failures, and last `soak: N runs, L leaks, H scenarios with more
// than one hash` (N: passes of the suite).
void PrintSummary(std::ostream& out, const SoakTally& tally);

// VmRSS of a /proc/PID/status text, in KiB.
std::optional<std::int64_t> ParseVmRssKib(std::string_view status);

}  // namespace wedge::bench
