// `wedge verify` and `wedge bisect`: what a patched binary changes about a scenario's verdict.
#include <iostream>
#include <map>
#include <sstream>

#include "cli_support.h"
#include "commands.h"
#include "stacks.h"
#include "wedge/report/report.h"
#include "wedge/runner/run_suite.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::cli {
namespace {

using scenario::Verdict;

// One side of `wedge verify`: the scenario run `repeat` times with `overrides`.
struct VerifySide {
  std::string name;  // "baseline", "candidate"
  std::vector<std::string> overrides;
  Verdict wanted = Verdict::kReproduced;
  runner::RunOptions options;
  runner::SuiteRun suite;
};

std::string Joined(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

}  // namespace

int Execute(const VerifyCommand& command) {
  auto loaded = LoadRunnableScenario("verify", command.scenario);
  if (const int* status = std::get_if<int>(&loaded)) return *status;
  const scenario::Scenario& scenario = std::get<scenario::Scenario>(loaded);
  runner::RunOptions base_options;
  base_options.state_dir = sys::DefaultStateDirectory();
  base_options.fixtures_dir = FixturesDirectory();
  std::ostringstream quiet;
  base_options.progress = &quiet;
  VerifySide baseline{"baseline", command.baseline, Verdict::kReproduced, base_options, {}};
  VerifySide candidate{"candidate", command.candidate, Verdict::kNotReproduced, base_options, {}};
  for (VerifySide* side : {&baseline, &candidate}) {
    for (const auto& assignment : side->overrides) {
      if (auto status = side->options.binaries.Override(assignment); !status.ok()) {
        return Usage("verify",
                     "--" + side->name + " " + assignment + ": " + status.error().message());
      }
    }
    side->options.expect_override = side->wanted;
  }

  auto lock = BeginRun(base_options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  report::Report report;
  report.host = runner::CollectHostInfo(base_options);
  for (VerifySide* side : {&baseline, &candidate}) {
    runner::SuitePlan plan;
    plan.repeat = command.repeat;
    plan.after_run = [&](const scenario::Scenario&, int run, const report::RunResult& result) {
      std::cout << side->name << " run " << run << ": " << scenario::VerdictName(result.verdict)
                << " " << (result.signature_hash.empty() ? "(no hash)" : result.signature_hash)
                << " " << result.duration_ms << " ms"
                << (result.host_clean ? "" : " HOST NOT CLEAN") << "\n";
    };
    side->suite = runner::RunSuite({&scenario, 1}, side->options, plan);
    for (const auto& line : side->suite.leftovers) {
      std::cout << side->name << " teardown left behind: " << line << "\n";
    }
    for (const auto& result : side->suite.results) report.results.push_back(result);
  }
  if (command.json) {
    if (auto written = report::WriteJson(report, *command.json); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (int signo = sys::Interrupted(); signo != 0) return 128 + signo;

  bool passed = true;
  for (const VerifySide* side : {&baseline, &candidate}) {
    const std::vector<report::RunResult>& runs = side->suite.results;
    for (size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].AsExpected()) continue;
      passed = false;
      std::cout << "\n"
                << side->name << " run " << (i + 1) << " was not "
                << scenario::VerdictName(side->wanted) << ":\n";
      report::PrintResult(std::cout, scenario, runs[i]);
    }
  }
  const bool host_clean = baseline.suite.host_clean() && candidate.suite.host_clean();
  const std::string repeat = std::to_string(command.repeat);
  std::string outcome;
  if (!passed) {
    outcome =
        "FAIL: not every baseline run reproduced it, or not every candidate run was free of it";
  } else if (!host_clean) {
    outcome = "FAIL: every run was as wanted, but a side's teardown left the host not clean";
  } else {
    outcome = "PASS: the baseline (" + Joined(baseline.overrides) + ") reproduced it " + repeat +
              "/" + repeat + " and the candidate (" + Joined(candidate.overrides) + ") did not, " +
              repeat + "/" + repeat;
  }
  std::cout << "\nverify " << scenario.name << ": " << outcome << "\n";
  return passed && host_clean ? kAllAsExpected : kExpectationFailed;
}

// The first candidate (ordered oldest to newest) whose verdict differs from the oldest's, by
// binary search; a candidate is a binary (--binary NAME --candidates PATH...) or a whole docker
// stack (--stacks RELEASE...). A run that is neither reproduced nor not-reproduced is
// inconclusive: the search stops there and says so rather than guessing which side it belongs
// to.
int Execute(const BisectCommand& command) {
  auto loaded = LoadRunnableScenario("bisect", command.scenario);
  if (const int* status = std::get_if<int>(&loaded)) return *status;
  const scenario::Scenario& scenario = std::get<scenario::Scenario>(loaded);
  const bool stacks = !command.stacks.empty();
  const std::vector<std::string>& candidates = stacks ? command.stacks : command.candidates;
  runner::RunOptions base;
  base.state_dir = sys::DefaultStateDirectory();
  base.fixtures_dir = FixturesDirectory();
  std::vector<stack::Binaries> binaries;
  for (const auto& path : command.candidates) {
    stack::Binaries candidate = base.binaries;
    if (auto status = candidate.Override(command.binary + "=" + path); !status.ok()) {
      return Usage("bisect", "--candidates " + path + ": " + status.error().message());
    }
    binaries.push_back(std::move(candidate));
  }
  if (stacks && !scenario.stack.required) {
    return Usage("bisect", "--stacks: " + scenario.name +
                               " runs no docker stack, so every stack would give the same verdict");
  }
  auto lock = BeginRun(base.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  if (stacks) {
    auto roots = StackBinaries("bisect", command.stacks, {}, base);
    if (const int* status = std::get_if<int>(&roots)) return *status;
    binaries = std::move(std::get<std::vector<stack::Binaries>>(roots));
  }

  std::map<size_t, Verdict> verdicts;
  std::vector<std::string> unclean;  // candidates after whose run the host was not clean
  auto run = [&](size_t index) {
    if (auto known = verdicts.find(index); known != verdicts.end()) return known->second;
    runner::RunOptions options = base;
    options.binaries = binaries[index];
    std::ostringstream quiet;
    options.progress = &quiet;
    const runner::SuiteRun suite = runner::RunSuite({&scenario, 1}, options, {});
    if (suite.results.empty()) return Verdict::kUnexplained;  // interrupted before it ran
    const report::RunResult& result = suite.results.front();
    std::cout << "  " << candidates[index] << ": " << scenario::VerdictName(result.verdict)
              << (result.host_clean ? "" : " (host NOT clean)");
    if (stacks) std::cout << " (" << result.reason << ")";
    std::cout << "\n";
    for (const auto& line : suite.leftovers) {
      std::cout << "  " << candidates[index] << " teardown left behind: " << line << "\n";
    }
    if (!result.host_clean || !suite.host_clean()) unclean.push_back(candidates[index]);
    verdicts[index] = result.verdict;
    return result.verdict;
  };
  // Releases are few, and a bug may come and go between them (fixed in one, back in the
  // next): every stack is run in order up to the first whose verdict differs from the oldest's,
  // so the answer never rests on the verdicts being monotonic.
  auto scan_stacks = [&]() -> int {
    const Verdict first = run(0);
    if (sys::Interrupted()) return 128 + sys::Interrupted();
    if (first == Verdict::kUnexplained) {
      std::cout << "inconclusive: the oldest stack, " << candidates[0] << ", gave unexplained\n";
      return kExpectationFailed;
    }
    for (size_t index = 1; index < candidates.size(); ++index) {
      const Verdict verdict = run(index);
      if (sys::Interrupted()) return 128 + sys::Interrupted();
      if (verdict == Verdict::kUnexplained) {
        std::cout << "inconclusive: " << candidates[index] << " gave unexplained; every stack "
                  << "before it gives " << scenario::VerdictName(first) << "\n";
        return kExpectationFailed;
      }
      if (verdict == first) continue;
      std::cout << "first flip: " << candidates[index] << " gives "
                << scenario::VerdictName(verdict) << "; every stack before it ("
                << Joined({candidates.begin(), candidates.begin() + index}) << ") gives "
                << scenario::VerdictName(first) << "\n";
      return kAllAsExpected;
    }
    std::cout << "no flip: every stack gives " << scenario::VerdictName(first) << "\n";
    return kAllAsExpected;
  };
  auto search = [&]() -> int {
    std::cout << "bisect " << scenario.name << " over " << candidates.size() << " "
              << (stacks ? "docker stacks" : command.binary + " binaries") << "\n";
    if (stacks) return scan_stacks();
    size_t low = 0;
    size_t high = candidates.size() - 1;
    const Verdict first = run(low);
    const Verdict last = run(high);
    if (sys::Interrupted()) return 128 + sys::Interrupted();
    if (first == Verdict::kUnexplained || last == Verdict::kUnexplained) {
      std::cout << "inconclusive: the oldest or the newest candidate gave unexplained\n";
      return kExpectationFailed;
    }
    if (first == last) {
      std::cout << "no flip: every end gives " << scenario::VerdictName(first) << "\n";
      return kAllAsExpected;
    }
    while (high - low > 1) {
      const size_t middle = low + (high - low) / 2;
      const Verdict verdict = run(middle);
      if (sys::Interrupted()) return 128 + sys::Interrupted();
      if (verdict == Verdict::kUnexplained) {
        std::cout << "inconclusive: " << candidates[middle] << " gave unexplained; the flip lies "
                  << "after " << candidates[low] << " and at or before " << candidates[high]
                  << "\n";
        return kExpectationFailed;
      }
      (verdict == first ? low : high) = middle;
    }
    std::cout << "first flip: candidate " << (high + 1) << " (" << candidates[high] << ") gives "
              << scenario::VerdictName(last) << "; candidate " << (low + 1) << " ("
              << candidates[low] << ") gives " << scenario::VerdictName(first) << "\n";
    return kAllAsExpected;
  };
  const int status = search();
  if (status > kExpectationFailed || unclean.empty()) return status;
  // A run that left the host changed may have changed the verdicts of the runs after it.
  std::cout << "the host was not clean after the run of " << Joined(unclean) << "\n";
  return kExpectationFailed;
}

}  // namespace wedge::cli
