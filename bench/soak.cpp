// The soak: runs the whole suite N times in one process, as `wedge run` runs it once
// (runner::RunSuite, each scenario once per pass), and checks that nothing accumulates. After
// each pass it checks the host with the tests' own snapshot (tests/support/host_snapshot.h)
// against the one from before the pass, besides the suite's own check, and samples its own
// VmRSS and open descriptors: wedge's library runs in this process, so these are wedge's.
//
//   wedge_soak [N] [SCENARIO|DIR]...     N passes (default 100) of the scenarios (default
//                                        ./scenarios, else the source tree's); as root
//
// N counts passes of the suite: `soak: N runs` is N passes, each of every scenario.
// Prints a line per run to stderr, then on stdout a line per scenario (runs, verdicts, distinct
// signature hashes, runs whose own check found leftovers, runs not as expected), `name: value
// unit` lines for RSS and descriptors (first, last, max over the passes), what any pass left
// behind, and last `soak: N runs, L leaks, H scenarios with more than one hash`.
// Exit status: 1 a leak, a scenario with more than one hash, a run not as expected, or RSS or
// descriptors grown beyond the tolerance of soak_tally.h (whether or not a signal stopped the
// soak); else 128+N stopped by signal N, else 0. 2 bad arguments or scenario files, 3 a
// requirement of this host is missing (nothing on the host touched).
// The first SIGINT or SIGTERM ends the soak after the pass in progress; a second stops the run
// in progress as wedge does (recovery and teardown first). The summary is printed either way.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli_support.h"
#include "host_snapshot.h"
#include "soak_tally.h"
#include "wedge/cli/command_line.h"
#include "wedge/runner/run_suite.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace {

namespace fs = std::filesystem;
using wedge::bench::SoakTally;

constexpr int kDefaultPasses = 100;
// As the stack's scenario tests allow: the kernel frees dead namespaces and cgroups within
// moments of the stack's teardown.
constexpr std::chrono::milliseconds kSettle(2000);

std::atomic<int> stop_signal{0};
// wedge's own handlers (sys::InstallInterruptHandlers), for the second signal.
struct sigaction wedge_handlers[3];
constexpr int kStopSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void OnStopSignal(int signo) {
  if (stop_signal.exchange(signo) == 0) {
    constexpr char kNotice[] =
        "soak: stopping after this pass (signal again to stop the run in progress)\n";
    (void)::write(STDERR_FILENO, kNotice, sizeof kNotice - 1);
    return;
  }
  // The second: wedge's handler takes it from here, and the run in progress recovers and
  // tears down as `wedge run` does on SIGINT. The signal is blocked while this handler runs,
  // so the raised one is delivered to wedge's handler once this one returns.
  for (size_t i = 0; i < 3; ++i) {
    if (kStopSignals[i] == signo) ::sigaction(signo, &wedge_handlers[i], nullptr);
  }
  ::raise(signo);
}

// wedge's handlers first (they record the signal wedge's waits poll), then the soak's in front.
void InstallStopHandlers() {
  wedge::sys::InstallInterruptHandlers();
  struct sigaction soak {};
  soak.sa_handler = OnStopSignal;
  sigemptyset(&soak.sa_mask);
  for (size_t i = 0; i < 3; ++i) ::sigaction(kStopSignals[i], &soak, &wedge_handlers[i]);
}

wedge::bench::ResourceSample SampleSelf() {
  wedge::bench::ResourceSample sample;
  if (auto status = wedge::sys::ReadFile("/proc/self/status"); status.ok()) {
    sample.rss_kib = wedge::bench::ParseVmRssKib(*status).value_or(0);
  }
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    ++sample.fds;
  }
  if (sample.fds > 0) --sample.fds;  // the listing's own descriptor
  return sample;
}

}  // namespace

int main(int argc, char** argv) {
  int passes = kDefaultPasses;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    int value = 0;
    auto [end, error] = std::from_chars(arg.data(), arg.data() + arg.size(), value);
    if (i == 1 && error == std::errc() && end == arg.data() + arg.size()) {
      if (value < 1) {
        std::cerr << "wedge_soak: N must be at least 1, not " << arg << "\n";
        return wedge::cli::kUsage;
      }
      passes = value;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) paths.push_back(wedge::cli::DefaultScenarioDirectory().string());
  if (::geteuid() != 0) {
    std::cerr << "wedge_soak: runs scenarios, so it needs root\n";
    return wedge::cli::kRequirementMissing;
  }

  // As `wedge run` does: every file loaded and trusted, and this host able to run each,
  // before anything on the host changes.
  auto scenarios = wedge::cli::LoadAll(paths);
  if (!scenarios) return wedge::cli::kUsage;
  if (scenarios->empty()) {
    std::cerr << "wedge_soak: no scenario files found\n";
    return wedge::cli::kUsage;
  }
  for (const auto& scenario : *scenarios) {
    if (auto reason = wedge::cli::UntrustedReason(scenario.file)) {
      std::cerr << "wedge_soak: refusing " << scenario.file.string() << ": it " << *reason << "\n";
      return wedge::cli::kUsage;
    }
    for (const auto& unmet : wedge::runner::UnmetRequirements(scenario)) {
      std::cerr << "wedge_soak: " << scenario.name << " cannot run on this host: " << unmet << "\n";
      return wedge::cli::kRequirementMissing;
    }
  }

  wedge::runner::RunOptions options;
  options.state_dir = wedge::sys::DefaultStateDirectory();
  options.fixtures_dir = wedge::cli::FixturesDirectory();
  // The run lock for the whole soak, and whatever a killed run left undone first.
  auto lock = wedge::cli::BeginRun(options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  InstallStopHandlers();

  std::cerr << "soak: " << passes << " passes of " << scenarios->size() << " scenarios\n";
  SoakTally tally;
  int pass = 0;
  wedge::runner::SuitePlan plan;
  plan.after_run = [&](const wedge::scenario::Scenario& scenario, int,
                       const wedge::report::RunResult& result) {
    if (wedge::sys::Interrupted() != 0) {
      tally.AddInterruptedRun();
      std::cerr << "pass " << pass << " " << scenario.name << ": interrupted, not counted\n";
      return;
    }
    tally.AddRun(result);
    std::cerr << "pass " << pass << " " << scenario.name << ": "
              << wedge::scenario::VerdictName(result.verdict) << " "
              << (result.signature_hash.empty() ? "(no hash)" : result.signature_hash) << " "
              << result.duration_ms << " ms" << (result.AsExpected() ? "" : " NOT AS EXPECTED")
              << "\n";
    if (!result.AsExpected()) std::cerr << "  reason: " << result.reason << "\n";
    if (result.error) std::cerr << "  error: " << *result.error << "\n";
    for (const auto& line : result.host_leftovers) std::cerr << "  left behind: " << line << "\n";
  };
  while (pass < passes && stop_signal.load() == 0 && wedge::sys::Interrupted() == 0) {
    ++pass;
    const wedge::testing::HostSnapshot before =
        wedge::testing::CaptureHostSnapshot(options.state_dir);
    const wedge::runner::SuiteRun run = wedge::runner::RunSuite(*scenarios, options, plan);
    std::vector<std::string> snapshot_leftovers =
        wedge::testing::SettledDiff(before, options.state_dir, kSettle);
    for (const auto& line : snapshot_leftovers) {
      std::cerr << "pass " << pass << " left behind (host snapshot): " << line << "\n";
    }
    for (const auto& line : run.leftovers) {
      std::cerr << "pass " << pass << " left behind (suite's check): " << line << "\n";
    }
    tally.AddPass(std::move(snapshot_leftovers), run.leftovers, SampleSelf());
  }

  wedge::bench::PrintSummary(std::cout, tally);
  if (!tally.Failures().empty()) return 1;
  if (int signo = wedge::sys::Interrupted(); signo != 0) return 128 + signo;
  if (int signo = stop_signal.load(); signo != 0) return 128 + signo;
  return 0;
}
