#include "soak_tally.h"

#include <algorithm>
#include <sstream>

namespace wedge::bench {
namespace {

Range RangeOf(const std::vector<ResourceSample>& samples,
              std::int64_t (*field)(const ResourceSample&)) {
  Range range;
  if (samples.empty()) return range;
  range.first = field(samples.front());
  range.last = field(samples.back());
  for (const ResourceSample& sample : samples) range.max = std::max(range.max, field(sample));
  return range;
}

std::int64_t RssOf(const ResourceSample& sample) { return sample.rss_kib; }
std::int64_t FdsOf(const ResourceSample& sample) { return sample.fds; }

}  // namespace

void SoakTally::AddRun(const report::RunResult& result) {
  auto it = std::find_if(scenarios_.begin(), scenarios_.end(),
                         [&](const ScenarioTally& t) { return t.scenario == result.scenario; });
  if (it == scenarios_.end()) {
    ScenarioTally fresh;
    fresh.scenario = result.scenario;
    scenarios_.push_back(std::move(fresh));
    it = scenarios_.end() - 1;
  }
  ++it->runs;
  ++it->verdicts[std::string(scenario::VerdictName(result.verdict))];
  if (std::find(it->hashes.begin(), it->hashes.end(), result.signature_hash) == it->hashes.end()) {
    it->hashes.push_back(result.signature_hash);
  }
  if (!result.host_leftovers.empty()) ++it->leaks;
  if (!result.AsExpected()) ++it->not_as_expected;
}

void SoakTally::AddPass(std::vector<std::string> snapshot_leftovers,
                        std::vector<std::string> suite_leftovers, ResourceSample sample) {
  samples_.push_back(sample);
  if (!snapshot_leftovers.empty() || !suite_leftovers.empty()) {
    pass_leaks_.push_back({passes(), std::move(snapshot_leftovers), std::move(suite_leftovers)});
  }
}

int SoakTally::Leaks() const {
  int leaks = static_cast<int>(pass_leaks_.size());
  for (const ScenarioTally& scenario : scenarios_) leaks += scenario.leaks;
  return leaks;
}

int SoakTally::ScenariosWithSeveralHashes() const {
  return static_cast<int>(
      std::count_if(scenarios_.begin(), scenarios_.end(),
                    [](const ScenarioTally& t) { return t.hashes.size() > 1; }));
}

Range SoakTally::Rss() const { return RangeOf(samples_, RssOf); }
Range SoakTally::Fds() const { return RangeOf(samples_, FdsOf); }

std::vector<std::string> SoakTally::Failures() const {
  std::vector<std::string> failures;
  for (const ScenarioTally& scenario : scenarios_) {
    if (scenario.leaks > 0) {
      failures.push_back(scenario.scenario + ": " + std::to_string(scenario.leaks) +
                         " run(s) left something on the host (their own check)");
    }
    if (scenario.hashes.size() > 1) {
      failures.push_back(scenario.scenario + ": " + std::to_string(scenario.hashes.size()) +
                         " distinct signature hashes");
    }
    if (scenario.not_as_expected > 0) {
      failures.push_back(scenario.scenario + ": " + std::to_string(scenario.not_as_expected) +
                         " run(s) not as expected");
    }
  }
  for (const PassLeak& leak : pass_leaks_) {
    failures.push_back("pass " + std::to_string(leak.pass) + " left something on the host (" +
                       std::to_string(leak.snapshot.size()) + " by the host snapshot, " +
                       std::to_string(leak.suite.size()) + " by the suite's check)");
  }
  const Range rss = Rss();
  const std::int64_t rss_allowed = std::max(kRssGrowthFloorKib, rss.first / kRssGrowthFraction);
  if (rss.last - rss.first > rss_allowed) {
    failures.push_back("RSS grew " + std::to_string(rss.last - rss.first) + " KiB from the first " +
                       "pass to the last (tolerance " + std::to_string(rss_allowed) + " KiB)");
  }
  const Range fds = Fds();
  if (fds.last - fds.first > kFdGrowthTolerance) {
    failures.push_back("open descriptors grew from " + std::to_string(fds.first) + " to " +
                       std::to_string(fds.last) + " (tolerance " +
                       std::to_string(kFdGrowthTolerance) + ")");
  }
  return failures;
}

void PrintSummary(std::ostream& out, const SoakTally& tally) {
  for (const ScenarioTally& scenario : tally.scenarios()) {
    out << scenario.scenario << ": runs " << scenario.runs << ", verdicts {";
    bool first = true;
    for (const auto& [verdict, count] : scenario.verdicts) {
      out << (first ? "" : ", ") << verdict << ": " << count;
      first = false;
    }
    out << "}, hashes " << scenario.hashes.size() << ", leaks " << scenario.leaks
        << ", not as expected " << scenario.not_as_expected << "\n";
  }
  const Range rss = tally.Rss();
  const Range fds = tally.Fds();
  out << "soak_passes: " << tally.passes() << " count\n";
  out << "soak_rss_first: " << rss.first << " KiB\n";
  out << "soak_rss_last: " << rss.last << " KiB\n";
  out << "soak_rss_max: " << rss.max << " KiB\n";
  out << "soak_fds_first: " << fds.first << " count\n";
  out << "soak_fds_last: " << fds.last << " count\n";
  out << "soak_fds_max: " << fds.max << " count\n";
  if (tally.interrupted_runs() > 0) {
    out << "soak_interrupted_runs: " << tally.interrupted_runs() << " count\n";
  }
  for (const PassLeak& leak : tally.pass_leaks()) {
    for (const std::string& line : leak.snapshot) {
      out << "pass " << leak.pass << " left behind (host snapshot): " << line << "\n";
    }
    for (const std::string& line : leak.suite) {
      out << "pass " << leak.pass << " left behind (suite's check): " << line << "\n";
    }
  }
  for (const std::string& failure : tally.Failures()) out << "FAIL: " << failure << "\n";
  out << "soak: " << tally.passes() << " runs, " << tally.Leaks() << " leaks, "
      << tally.ScenariosWithSeveralHashes() << " scenarios with more than one hash\n";
}

std::optional<std::int64_t> ParseVmRssKib(std::string_view status) {
  std::istringstream lines{std::string(status)};
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::int64_t kib = 0;
    std::string unit;
    if (fields >> kib >> unit && unit == "kB") return kib;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace wedge::bench
