#include "wedge/runner/decide.h"

namespace wedge::runner {

using scenario::Verdict;

Decision Decide(const scenario::Scenario& scenario, Verdict expected, const RunFacts& facts) {
  Decision decision;
  if (facts.observation) {
    decision.bug_match = signature::Match(scenario.bug, *facts.observation);
    decision.healthy_match = signature::Match(scenario.healthy, *facts.observation);
  }
  const report::PreconditionResult* failed_precondition = nullptr;
  for (const auto& precondition : facts.preconditions) {
    if (!precondition.held && failed_precondition == nullptr) failed_precondition = &precondition;
  }
  if (facts.error) {
    decision.verdict = Verdict::kUnexplained;
    decision.reason = "the run failed: " + *facts.error;
  } else if (!facts.observation) {
    decision.verdict = Verdict::kUnexplained;
    decision.reason = "the run observed nothing";
  } else if (decision.bug_match.matched) {
    decision.verdict = Verdict::kReproduced;
    decision.reason = "the bug signature matched: " + scenario.bug.description;
  } else if (failed_precondition != nullptr) {
    // Honest about why: this configuration cannot show the bug, whatever else happened.
    decision.verdict = Verdict::kNotReproduced;
    decision.reason = "precondition " + failed_precondition->name +
                      " failed: " + failed_precondition->detail +
                      "; the bug needs it: " + failed_precondition->why;
  } else if (decision.healthy_match.matched) {
    decision.verdict = Verdict::kNotReproduced;
    decision.reason = "the healthy signature matched: " + scenario.healthy.description;
  } else {
    decision.verdict = Verdict::kUnexplained;
    decision.reason = facts.stall_timed_out ? "the sandbox neither stalled nor exited within " +
                                                  std::to_string(scenario.stall.timeout_ms) + " ms"
                                            : "neither the bug nor the healthy signature matched";
  }
  if (!facts.observation) return decision;
  switch (decision.verdict) {
    case Verdict::kReproduced:
      decision.decisive = report::DecisiveSignature::kBug;
      break;
    case Verdict::kNotReproduced:
      decision.decisive = report::DecisiveSignature::kHealthy;
      break;
    case Verdict::kUnexplained:
      decision.decisive = expected == Verdict::kNotReproduced ? report::DecisiveSignature::kHealthy
                                                              : report::DecisiveSignature::kBug;
      break;
  }
  decision.signature_hash =
      signature::Hash(decision.decisive == report::DecisiveSignature::kBug ? decision.bug_match
                                                                           : decision.healthy_match,
                      *facts.observation);
  return decision;
}

}  // namespace wedge::runner
