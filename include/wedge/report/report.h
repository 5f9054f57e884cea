// The outcome of scenario runs and the three ways wedge reports it: the console, the JSON
// evidence bundle (--json) and JUnit XML (--junit).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/probe/task.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"

namespace wedge::report {

// A program a run used, as the report records it.
struct BinaryVersion {
  std::string name;  // "wedge-fuse", "fusermount3", "kernel"
  std::string path;
  std::string version;  // first line of its --version, or the package version
  // The docker stack's binaries: the Debian package that installed it with its version
  // ("runc 1.1.5+ds1-1+deb12u1"), the Go version that built it, and the release root it runs in
  // (empty: the host's).
  std::string package;
  std::string go_version;
  std::string release;
};

// The host a run happened on: what decides whether a bug can fire.
struct HostInfo {
  std::string kernel_release;                  // uname -r
  std::string kernel_version;                  // uname -v
  std::string machine;                         // uname -m
  std::string cgroup_mode;                     // "v1", "hybrid" or "v2"
  std::map<std::string, std::string> sysctls;  // the allowlisted ones, as found
  std::map<std::string, std::string> rlimits;  // "RLIMIT_NOFILE" -> "20000:20000" (wedge's own)
  std::vector<BinaryVersion> binaries;
  std::string wedge_version;
};

// Wall time of one phase of a run: validate, setup, trigger, stall, capture, recover, teardown.
struct PhaseTiming {
  std::string phase;
  std::int64_t duration_ms = 0;
};

// Whether one of a scenario's preconditions held on this run.
struct PreconditionResult {
  std::string name;
  bool held = false;
  std::string detail;  // what was checked: "RLIMIT_NOFILE of image-ls is 1024:524288"
  std::string why;     // the scenario's reason the bug needs it
};

// Which signature decided a run (runner::Decide): its match binds the report's roles and is
// hashed. None when the run failed before it observed anything.
enum class DecisiveSignature { kNone, kBug, kHealthy };

// One run of one scenario.
struct RunResult {
  std::string scenario;  // name
  std::string file;
  scenario::Verdict verdict = scenario::Verdict::kUnexplained;
  scenario::Verdict expected = scenario::Verdict::kReproduced;
  std::string reason;  // one line: why this verdict (which signature matched, what failed)
  std::string signature_hash;
  DecisiveSignature decisive = DecisiveSignature::kNone;
  signature::MatchResult bug_match;
  signature::MatchResult healthy_match;
  signature::Observation observation;  // normalised, what was compared
  probe::TreeSnapshot evidence;        // raw: stacks with offsets, status, fds
  std::vector<PreconditionResult> preconditions;
  // Measurements a scenario reports besides its signature, in order: name, value, unit
  // ("recovery_after_serving", "412", "ms").
  struct Figure {
    std::string name;
    std::string value;
    std::string unit;
  };
  std::vector<Figure> figures;
  std::map<std::string, std::string> binaries;  // name -> path, for the binaries a run used
  std::vector<PhaseTiming> phases;
  std::int64_t duration_ms = 0;
  std::int64_t stall_detected_after_ms = -1;  // from the last trigger step; -1 if none
  std::vector<std::string> recovery;          // what recovery did, one line each
  // What wedge injected to pin the bug (a held syscall, a resized pipe), one line each: never
  // the bug's own doing, so the report names it.
  std::vector<std::string> injections;
  // A run held with --hold: how long its state stayed live, and what released it.
  struct Held {
    std::int64_t duration_ms = 0;
    std::string released_by;    // the signal: "SIGTERM" (wedge cleanup, the next run), "SIGINT"
    std::string match_command;  // "wedge match 1234", as the hold printed it; empty if none
  };
  std::optional<Held> held;
  bool host_clean = false;                  // the post-teardown check passed
  std::vector<std::string> host_leftovers;  // what the check found, if anything
  std::optional<std::string> error;         // an internal error that ended the run early

  bool AsExpected() const { return !error && verdict == expected && host_clean; }
};

struct Report {
  HostInfo host;
  std::vector<RunResult> results;
};

// The match of the signature that decided the run (RunResult::decisive, set by runner::Decide).
const signature::MatchResult& VerdictMatch(const RunResult& result);

nlohmann::json ToJson(const HostInfo& host);
nlohmann::json ToJson(const RunResult& result);
nlohmann::json ToJson(const Report& report);
// Writes the evidence bundle; the file is replaced atomically.
Status WriteJson(const Report& report, const std::filesystem::path& file);
// One <testsuite name="wedge">, one <testcase> per run; a run not as expected is a <failure>
// whose text holds the signature diff.
std::string ToJunitXml(const Report& report);
Status WriteJunit(const Report& report, const std::filesystem::path& file);

// Human-readable output for the terminal.
void PrintResult(std::ostream& out, const scenario::Scenario& scenario, const RunResult& result);
void PrintSummary(std::ostream& out, const Report& report);

// How repeated runs of one scenario agreed (wedge run --repeat N).
struct Determinism {
  std::string scenario;
  int runs = 0;
  std::map<std::string, int> verdicts;  // "reproduced" -> 20
  std::vector<std::string> hashes;      // distinct signature hashes, in order of appearance
  std::int64_t min_ms = 0;
  std::int64_t median_ms = 0;
  std::int64_t max_ms = 0;
  // Runs disagreed: more than one verdict, or one verdict with several signature hashes.
  bool flaky() const { return verdicts.size() > 1 || hashes.size() > 1; }
};
// One entry per scenario of `report`, in order of first appearance.
std::vector<Determinism> SummarizeDeterminism(const Report& report);
void PrintDeterminism(std::ostream& out, const std::vector<Determinism>& summary);
nlohmann::json ToJson(const std::vector<Determinism>& summary);
// `wedge snapshot`: every process and task of the tree, stack and signals.
void PrintSnapshot(std::ostream& out, const probe::TreeSnapshot& snapshot);
nlohmann::json ToJson(const probe::TreeSnapshot& snapshot);

}  // namespace wedge::report
