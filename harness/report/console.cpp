#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "report_internal.h"
#include "wedge/probe/task.h"
#include "wedge/report/report.h"

namespace wedge::report {

namespace {

using internal::Join;

// One line of an expected-versus-observed block.
struct Row {
  std::string label;
  std::string expected;
  std::string observed;
};

constexpr std::size_t kLabelWidth = 13;
constexpr std::size_t kMaxExpectedWidth = 48;

std::string Pad(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + "  " : text + std::string(width - text.size(), ' ');
}

void PrintRows(std::ostream& out, const std::vector<Row>& rows, std::string_view indent) {
  std::size_t expected_width = 10;
  for (const Row& row : rows) expected_width = std::max(expected_width, row.expected.size() + 2);
  expected_width = std::min(expected_width, kMaxExpectedWidth);
  for (const Row& row : rows) {
    std::string line = std::string(indent) + Pad(row.label, kLabelWidth) +
                       Pad(row.expected, expected_width) + row.observed;
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  }
}

std::string ExpectedList(const std::vector<std::string>& names) {
  return names.empty() ? "(any)" : Join(names, " ");
}

std::string ObservedList(const std::vector<std::string>& names) {
  return names.empty() ? "(none)" : Join(names, " ");
}

// The observed stack, one frame a row, aligned with the expected frames like a diff: expected
// frames sit on the row of the observed frame they matched (a longest common subsequence, so one
// missing frame does not hide the others), which is marked '*'; expected frames with no
// counterpart get a row of their own, marked "(not found)", where they would have been.
void AddStackRows(std::vector<Row>& rows, const std::vector<std::string>& expected,
                  const signature::ObservedTask* observed) {
  static const std::vector<std::string> kNoFrames;
  const std::vector<std::string>& frames = observed != nullptr ? observed->stack : kNoFrames;
  std::size_t e = expected.size();
  std::size_t o = frames.size();
  // common[i][j]: length of the longest common subsequence of expected[i..] and frames[j..].
  std::vector<std::vector<std::size_t>> common(e + 1, std::vector<std::size_t>(o + 1, 0));
  for (std::size_t i = e; i-- > 0;) {
    for (std::size_t j = o; j-- > 0;) {
      common[i][j] = signature::FrameMatches(expected[i], frames[j])
                         ? common[i + 1][j + 1] + 1
                         : std::max(common[i + 1][j], common[i][j + 1]);
    }
  }
  std::size_t first = rows.size();
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < e || j < o) {
    if (i < e && j < o && signature::FrameMatches(expected[i], frames[j]) &&
        common[i][j] == common[i + 1][j + 1] + 1) {
      rows.push_back({"", expected[i++], "* " + frames[j++]});
    } else if (j < o && (i == e || common[i][j + 1] >= common[i + 1][j])) {
      rows.push_back({"", "", "  " + frames[j++]});
    } else {
      rows.push_back({"", expected[i++], observed != nullptr ? "  (not found)" : ""});
    }
  }
  if (rows.size() == first) {
    rows.push_back({"", "", observed != nullptr ? "(empty)" : "-"});
  }
  rows[first].label = "stack";
  if (expected.empty()) rows[first].expected = "(any)";
}

std::string DescribeSelector(const signature::TaskSelector& select) {
  std::vector<std::string> parts;
  if (!select.process.empty()) parts.push_back("process " + select.process);
  if (!select.comm.empty()) parts.push_back("comm " + select.comm);
  if (select.thread == signature::TaskSelector::Thread::kLeader) parts.push_back("leader");
  if (select.thread == signature::TaskSelector::Thread::kNonLeader) parts.push_back("non-leader");
  return parts.empty() ? "any task" : Join(parts, ", ");
}

void PrintRole(std::ostream& out, const signature::TaskExpectation& expectation,
               const signature::ObservedTask* observed) {
  out << "    role " << expectation.role << ": ";
  if (observed != nullptr) {
    out << (observed->process.empty() ? "process" : observed->process) << " pid " << observed->pid
        << " tid " << observed->tid << " comm " << observed->comm << '\n';
  } else {
    out << "no task bound (wanted " << DescribeSelector(expectation.select) << ")\n";
  }

  std::vector<Row> rows;
  rows.push_back({"", "expected", "observed"});
  std::string states;
  for (char state : expectation.states)
    states += (states.empty() ? "" : "|") + std::string(1, state);
  rows.push_back({"state", states.empty() ? "(any)" : states,
                  observed != nullptr ? std::string(1, observed->state) : "-"});
  AddStackRows(rows, expectation.stack, observed);
  rows.push_back({"ShdPnd", ExpectedList(expectation.shd_pending),
                  observed != nullptr ? ObservedList(observed->shd_pending) : "-"});
  if (!expectation.sig_pending.empty() || (observed != nullptr && !observed->sig_pending.empty())) {
    rows.push_back({"SigPnd", ExpectedList(expectation.sig_pending),
                    observed != nullptr ? ObservedList(observed->sig_pending) : "-"});
  }
  rows.push_back({"flags", ExpectedList(expectation.task_flags),
                  observed != nullptr ? ObservedList(observed->task_flags) : "-"});
  if (observed != nullptr && !observed->wchan.empty())
    rows.push_back({"wchan", "", observed->wchan});
  if (expectation.pipe) {
    char fill[16];
    std::snprintf(fill, sizeof fill, ">= %.0f%%", expectation.pipe->min_fill * 100);
    std::string wanted = "fd " + std::to_string(expectation.pipe->fd) + " " + fill + " full";
    if (!expectation.pipe->starts_with.empty()) {
      wanted += ", \"" + expectation.pipe->starts_with + "...\"";
    }
    std::string seen = observed != nullptr ? "not a measured pipe" : "-";
    if (observed != nullptr) {
      for (const auto& pipe : observed->pipes) {
        if (pipe.fd != expectation.pipe->fd) continue;
        seen = std::to_string(pipe.unread_bytes) + " of " + std::to_string(pipe.capacity_bytes) +
               " bytes unread";
        if (!pipe.head.empty()) {
          seen += ", \"" + signature::EscapeOneLine(pipe.head.substr(0, 40)) + "...\"";
        }
      }
    }
    rows.push_back({"pipe", wanted, seen});
  }
  PrintRows(out, rows, "      ");
}

std::string EndedText(const signature::ObservedCommand& command) {
  if (command.running_at_capture) {
    return "running at capture" +
           (command.exit_code
                ? ", then exit " + std::to_string(*command.exit_code) + " after recovery"
                : std::string());
  }
  if (command.timed_out) return "timed out";
  if (command.killed_by) return "killed by " + *command.killed_by;
  if (command.exit_code) return "exit " + std::to_string(*command.exit_code);
  return "?";
}

void PrintCommand(std::ostream& out, const signature::CommandExpectation& expectation,
                  const signature::Observation& observation) {
  const signature::ObservedCommand* observed = nullptr;
  for (const auto& command : observation.commands) {
    if (command.command == expectation.command) observed = &command;
  }
  out << "    command " << expectation.command;
  if (observed != nullptr) out << ": " << observed->binary;
  out << '\n';
  std::vector<Row> rows;
  std::string expected_end =
      expectation.killed_by   ? "killed by " + *expectation.killed_by
      : expectation.exit_code ? "exit " + std::to_string(*expectation.exit_code)
      : expectation.running_at_capture
          ? (*expectation.running_at_capture ? "running at capture" : "returned before capture")
          : "(any)";
  rows.push_back(
      {"ended", expected_end, observed != nullptr ? EndedText(*observed) : "did not run"});
  if (expectation.refused_syscall || (observed != nullptr && observed->refused_syscall)) {
    std::string seen = "-";
    if (observed != nullptr && observed->refused_syscall) {
      seen = *observed->refused_syscall + " (" +
             std::to_string(observed->refused_syscall_number.value_or(-1)) + ")";
    }
    rows.push_back({"refused", expectation.refused_syscall.value_or("(any)"), seen});
  }
  for (const std::string& text : expectation.output_contains) {
    bool found = observed != nullptr && observed->output.find(text) != std::string::npos;
    rows.push_back({"output has", text, found ? "yes" : "no"});
  }
  PrintRows(out, rows, "      ");
  if (observed != nullptr && !observed->audit_record.empty()) {
    out << "      kernel: " << observed->audit_record << '\n';
  }
}

std::string Number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

void PrintRate(std::ostream& out, const signature::RateExpectation& expectation,
               const signature::Observation& observation) {
  std::string bound;
  if (expectation.min_per_second) bound += ">= " + Number(*expectation.min_per_second) + "/s";
  if (expectation.max_per_second) {
    bound += std::string(bound.empty() ? "" : " and ") +
             "<= " + Number(*expectation.max_per_second) + "/s";
  }
  bound +=
      " in " + Number(expectation.for_fraction * 100) + "% of " + expectation.window + " seconds";
  std::string seen = "no samples";
  for (const auto& series : observation.series) {
    if (series.metric != expectation.metric || series.window != expectation.window) continue;
    seen.clear();
    for (size_t i = 0; i < series.per_second.size(); ++i) {
      seen += (i ? " " : "") + Number(series.per_second[i]);
    }
    if (seen.empty()) seen = "no samples";
  }
  out << "    rate " << expectation.metric << " (" << expectation.window << ")\n";
  PrintRows(out, {{"expected", bound, ""}, {"per second", seen, ""}}, "      ");
}

void PrintSignature(std::ostream& out, std::string_view name, const signature::Signature& expected,
                    const signature::MatchResult& match,
                    const signature::Observation& observation) {
  out << "  " << name << " signature";
  if (!expected.description.empty()) out << " (" << expected.description << ")";
  out << ": "
      << (match.matched ? "matched"
                        : std::to_string(match.mismatches.size()) +
                              (match.mismatches.size() == 1 ? " mismatch" : " mismatches"))
      << '\n';
  if (expected.all_exited) {
    std::size_t left = observation.tasks.size();
    out << "    every process exited: expected yes, observed "
        << (observation.all_exited
                ? "yes"
                : "no (" + std::to_string(left) + (left == 1 ? " task left)" : " tasks left)"))
        << '\n';
  }
  for (const signature::TaskExpectation& expectation : expected.tasks) {
    const signature::ObservedTask* observed = nullptr;
    for (const auto& [role, task] : match.bound) {
      if (role == expectation.role) observed = &task;
    }
    PrintRole(out, expectation, observed);
  }
  for (const signature::CommandExpectation& expectation : expected.commands) {
    PrintCommand(out, expectation, observation);
  }
  for (const signature::RateExpectation& expectation : expected.rates) {
    PrintRate(out, expectation, observation);
  }
  for (const signature::Mismatch& mismatch : match.mismatches) {
    out << "    mismatch " << internal::FormatMismatch(mismatch) << '\n';
  }
}

std::string FormatFrame(const probe::StackFrame& frame) {
  if (frame.function.empty()) return frame.raw;
  std::string text = frame.function;
  if (!frame.offset.empty()) text += "+" + frame.offset;
  if (!frame.module.empty()) text += " [" + frame.module + "]";
  return text;
}

std::string PassLabel(const RunResult& result) {
  if (result.error) return "ERROR";
  return result.AsExpected() ? "PASS" : "FAIL";
}

}  // namespace

void PrintResult(std::ostream& out, const scenario::Scenario& scenario, const RunResult& result) {
  out << "scenario " << result.scenario << ": " << scenario::VerdictName(result.verdict)
      << " (expected " << scenario::VerdictName(result.expected) << ")\n";
  if (!result.reason.empty()) out << "  reason: " << result.reason << '\n';
  if (result.error) out << "  error: " << *result.error << '\n';

  // The signature the run was expected to show; when the verdict differs, both, since the diff
  // of each says why neither (or the wrong one) matched.
  bool unexpected = result.verdict != result.expected;
  if (unexpected || result.expected != scenario::Verdict::kNotReproduced) {
    PrintSignature(out, "bug", scenario.bug, result.bug_match, result.observation);
  }
  if (unexpected || result.expected == scenario::Verdict::kNotReproduced) {
    PrintSignature(out, "healthy", scenario.healthy, result.healthy_match, result.observation);
  }

  for (const PreconditionResult& precondition : result.preconditions) {
    out << "  precondition " << precondition.name << ": " << (precondition.held ? "held" : "FAILED")
        << " (" << precondition.detail << ")\n";
    if (!precondition.held) out << "    the bug needs it: " << precondition.why << '\n';
  }
  if (!result.figures.empty()) {
    out << "  figures:\n";
    for (const auto& figure : result.figures) {
      out << "    " << figure.name << ": " << figure.value
          << (figure.unit.empty() ? "" : " " + figure.unit) << '\n';
    }
  }
  out << "  signature hash: " << (result.signature_hash.empty() ? "(none)" : result.signature_hash)
      << '\n';
  if (!result.injections.empty()) {
    out << "  injected (wedge's doing, not the bug's):\n";
    for (const std::string& line : result.injections) out << "    " << line << '\n';
  }
  if (result.recovery.empty()) {
    out << "  recovery: none\n";
  } else {
    out << "  recovery:\n";
    for (const std::string& line : result.recovery) out << "    " << line << '\n';
  }
  if (result.held) out << "  " << internal::HeldLine(*result.held) << '\n';
  if (result.host_clean) {
    out << "  host clean: yes\n";
  } else {
    out << "  host clean: no\n";
    for (const std::string& leftover : result.host_leftovers)
      out << "    left: " << leftover << '\n';
  }
  std::vector<std::string> phases;
  for (const PhaseTiming& phase : result.phases) {
    phases.push_back(phase.phase + " " + std::to_string(phase.duration_ms) + " ms");
  }
  out << "  phases: " << (phases.empty() ? "(none)" : Join(phases, ", ")) << "; total "
      << result.duration_ms << " ms";
  if (result.stall_detected_after_ms >= 0) {
    out << "; stall detected after " << result.stall_detected_after_ms << " ms";
  }
  out << '\n';
}

void PrintSummary(std::ostream& out, const Report& report) {
  std::size_t name_width = 8;
  for (const RunResult& result : report.results) {
    name_width = std::max(name_width, result.scenario.size() + 2);
  }
  int passed = 0;
  int failed = 0;
  for (const RunResult& result : report.results) {
    (result.AsExpected() ? passed : failed)++;
    std::string line = Pad(PassLabel(result), 7) + Pad(result.scenario, name_width) +
                       std::string(scenario::VerdictName(result.verdict)) + " (expected " +
                       std::string(scenario::VerdictName(result.expected)) + ")  " +
                       internal::FormatSeconds(result.duration_ms) + " s";
    if (!result.signature_hash.empty()) line += "  " + result.signature_hash;
    if (!result.host_clean) line += "  host not clean";
    out << line << '\n';
  }
  out << passed << " passed, " << failed << " failed\n";
}

void PrintSnapshot(std::ostream& out, const probe::TreeSnapshot& snapshot) {
  for (const probe::ProcessSnapshot& process : snapshot.processes) {
    out << "process " << (process.label.empty() ? "" : process.label + " ") << "pid "
        << process.pid;
    if (!process.children.empty()) {
      std::vector<std::string> children;
      for (pid_t child : process.children) children.push_back(std::to_string(child));
      out << ", children " << Join(children, " ");
    }
    out << '\n';
    for (const probe::TaskSnapshot& task : process.tasks) {
      const std::string& comm = task.stat.comm.empty() ? task.status.name : task.stat.comm;
      std::string state =
          !task.status.state_text.empty()
              ? task.status.state_text
              : std::string(1, task.status.state != '?' ? task.status.state : task.stat.state);
      out << "  task " << task.tid << " " << comm << " " << state << '\n';
      out << "    ShdPnd: " << ObservedList(task.status.shd_pnd.Names())
          << "  SigPnd: " << ObservedList(task.status.sig_pnd.Names()) << '\n';
      char flags_hex[16];
      std::snprintf(flags_hex, sizeof flags_hex, "0x%08" PRIx32, task.stat.flags);
      std::vector<std::string> flag_names = probe::TaskFlagNames(task.stat.flags);
      out << "    flags: " << flags_hex << (flag_names.empty() ? "" : " " + Join(flag_names, " "))
          << '\n';
      out << "    wchan: " << (task.wchan.empty() ? "-" : task.wchan) << '\n';
      if (task.stack.empty()) {
        out << "    stack: (empty)\n";
      } else {
        out << "    stack:\n";
        for (const probe::StackFrame& frame : task.stack) {
          out << "      " << FormatFrame(frame) << '\n';
        }
      }
    }
    for (const probe::FileDescriptor& fd : process.fds) {
      out << "  fd " << fd.fd << " -> " << fd.target;
      if (fd.pipe_unread_bytes) {
        out << " (" << *fd.pipe_unread_bytes << " bytes unread";
        if (fd.pipe_capacity_bytes) out << " of " << *fd.pipe_capacity_bytes;
        out << ")";
      }
      if (fd.pipe_head && !fd.pipe_head->empty()) {
        out << " starting \"" << signature::EscapeOneLine(fd.pipe_head->substr(0, 72)) << "\"";
      }
      out << '\n';
    }
  }
}

}  // namespace wedge::report

namespace wedge::report {

std::vector<Determinism> SummarizeDeterminism(const Report& report) {
  std::vector<Determinism> summary;
  std::map<std::string, std::vector<std::int64_t>> durations;
  for (const RunResult& result : report.results) {
    auto it = std::find_if(summary.begin(), summary.end(),
                           [&](const Determinism& d) { return d.scenario == result.scenario; });
    if (it == summary.end()) {
      Determinism fresh;
      fresh.scenario = result.scenario;
      summary.push_back(std::move(fresh));
      it = summary.end() - 1;
    }
    ++it->runs;
    ++it->verdicts[std::string(scenario::VerdictName(result.verdict))];
    if (std::find(it->hashes.begin(), it->hashes.end(), result.signature_hash) ==
        it->hashes.end()) {
      it->hashes.push_back(result.signature_hash);
    }
    durations[result.scenario].push_back(result.duration_ms);
  }
  for (Determinism& d : summary) {
    std::vector<std::int64_t>& ms = durations[d.scenario];
    std::sort(ms.begin(), ms.end());
    d.min_ms = ms.front();
    d.median_ms = ms[(ms.size() - 1) / 2];
    d.max_ms = ms.back();
  }
  return summary;
}

void PrintDeterminism(std::ostream& out, const std::vector<Determinism>& summary) {
  out << "determinism:\n";
  for (const Determinism& d : summary) {
    out << "  " << (d.flaky() ? "FLAKY " : "stable ") << d.scenario << ": " << d.runs << " runs,";
    for (const auto& [verdict, count] : d.verdicts) out << " " << verdict << " x" << count;
    out << "; " << d.hashes.size()
        << (d.hashes.size() == 1 ? " signature hash" : " signature hashes");
    if (d.hashes.size() <= 4) {
      out << " (";
      for (size_t i = 0; i < d.hashes.size(); ++i) {
        out << (i ? ", " : "") << (d.hashes[i].empty() ? "(none)" : d.hashes[i]);
      }
      out << ")";
    }
    out << "; duration min/median/max " << d.min_ms << "/" << d.median_ms << "/" << d.max_ms
        << " ms\n";
  }
}

}  // namespace wedge::report
