#include "wedge/report/report.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "report_internal.h"

namespace wedge::report {

const signature::MatchResult& VerdictMatch(const RunResult& result) {
  return result.decisive == DecisiveSignature::kHealthy ? result.healthy_match : result.bug_match;
}

}  // namespace wedge::report

namespace wedge::report::internal {

std::string FormatMismatch(const signature::Mismatch& mismatch) {
  std::string where = mismatch.role.empty() ? mismatch.field : mismatch.role + "." + mismatch.field;
  return where + ": expected " + mismatch.expected + "; observed " + mismatch.observed;
}

std::vector<std::string> DiffLines(const RunResult& result) {
  std::vector<std::string> lines;
  if (result.verdict != result.expected) {
    lines.push_back("expected " + std::string(scenario::VerdictName(result.expected)) + ", got " +
                    std::string(scenario::VerdictName(result.verdict)));
  }
  if (!result.reason.empty()) lines.push_back("reason: " + result.reason);
  if (result.error) lines.push_back("error: " + *result.error);
  if (result.verdict != result.expected) {
    auto add_signature = [&lines](std::string_view name, const signature::MatchResult& match) {
      if (match.matched) {
        lines.push_back(std::string(name) + " signature: matched");
        return;
      }
      lines.push_back(std::string(name) + " signature: " + std::to_string(match.mismatches.size()) +
                      (match.mismatches.size() == 1 ? " mismatch" : " mismatches"));
      for (const signature::Mismatch& mismatch : match.mismatches) {
        lines.push_back("  " + FormatMismatch(mismatch));
      }
    };
    add_signature("bug", result.bug_match);
    add_signature("healthy", result.healthy_match);
  }
  if (!result.host_clean) {
    lines.push_back(result.host_leftovers.empty() ? "host not clean after teardown"
                                                  : "host not clean after teardown, left behind:");
    for (const std::string& leftover : result.host_leftovers) lines.push_back("  " + leftover);
  }
  return lines;
}

std::string HeldLine(const RunResult::Held& held) {
  std::string line =
      "held for " + FormatSeconds(held.duration_ms) + " s, released by " + held.released_by;
  if (!held.match_command.empty()) line += "; the hold printed `" + held.match_command + "`";
  return line;
}

std::string FormatSeconds(std::int64_t milliseconds) {
  if (milliseconds < 0) milliseconds = 0;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%" PRId64 ".%03" PRId64, milliseconds / 1000,
                milliseconds % 1000);
  return buffer;
}

std::string Hex16(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016" PRIx64, value);
  return buffer;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) joined += separator;
    joined += parts[i];
  }
  return joined;
}

}  // namespace wedge::report::internal
