// The verdict of one run, decided from what it observed: a pure function, so every path of the
// rule is unit-tested and the report shows what it returned without recomputing anything.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wedge/report/report.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"

namespace wedge::runner {

// What a run established, the input of Decide.
struct RunFacts {
  // What the run observed, once it got as far as matching; unset when it failed before.
  std::optional<signature::Observation> observation;
  std::vector<report::PreconditionResult> preconditions;
  bool stall_timed_out = false;      // neither stalled nor exited within stall.timeout_ms
  std::optional<std::string> error;  // an internal failure that ended the run
};

struct Decision {
  scenario::Verdict verdict = scenario::Verdict::kUnexplained;
  std::string reason;  // one line: which signature matched, which precondition failed, what broke
  // Which signature binds the report's roles and is hashed: the bug's for reproduced, the
  // healthy one's for not-reproduced, the expected verdict's for unexplained.
  report::DecisiveSignature decisive = report::DecisiveSignature::kNone;
  signature::MatchResult bug_match;
  signature::MatchResult healthy_match;
  std::string signature_hash;  // of the decisive match; empty when nothing was observed
};

// The rule, in order: the bug signature matched -> reproduced; else a precondition failed ->
// not-reproduced, naming the first that failed; else the healthy signature matched ->
// not-reproduced; else unexplained (the stall's timeout, or neither matched). A run error makes
// the verdict unexplained whatever matched. `expected` is the verdict the run was asked to show
// (the scenario's, or --expect), which names the decisive signature of an unexplained run.
Decision Decide(const scenario::Scenario& scenario, scenario::Verdict expected,
                const RunFacts& facts);

}  // namespace wedge::runner
