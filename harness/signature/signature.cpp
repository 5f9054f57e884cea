#include "wedge/signature/signature.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "wedge/probe/signals.h"

namespace wedge::signature {
namespace {

constexpr std::string_view kBlanks = " \t\r\n";

bool IsAllDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// Removes one compiler-made suffix from the end of `name`; false when there is none.
// GCC clones a function as "f.part.N" (partial inlining), "f.isra.N" (scalar replacement),
// "f.constprop.N" (constant propagation), "f.lto_priv.N", and splits its unlikely path into
// "f.cold" (older GCC: "f.cold.N"); clang's ThinLTO promotes statics to "f.llvm.NNNN". Which
// of them a kernel shows depends on the compiler and config, not on the bug.
bool StripCloneSuffix(std::string& name) {
  const size_t last_dot = name.rfind('.');
  if (last_dot == std::string::npos || last_dot == 0) return false;
  const std::string_view last = std::string_view(name).substr(last_dot + 1);
  if (last == "cold") {
    name.resize(last_dot);
    return true;
  }
  if (!IsAllDigits(last)) return false;
  const size_t previous_dot = name.rfind('.', last_dot - 1);
  if (previous_dot == std::string::npos || previous_dot == 0) return false;
  const std::string_view kind =
      std::string_view(name).substr(previous_dot + 1, last_dot - previous_dot - 1);
  if (kind == "part" || kind == "isra" || kind == "constprop" || kind == "cold" || kind == "llvm" ||
      kind == "lto_priv") {
    name.resize(previous_dot);
    return true;
  }
  return false;
}

std::string Join(const std::vector<std::string>& items, std::string_view separator,
                 std::string_view if_empty) {
  if (items.empty()) return std::string(if_empty);
  std::string joined;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) joined += separator;
    joined += items[i];
  }
  return joined;
}

std::string DescribeStates(const std::set<char>& states) {
  std::string text;
  for (char state : states) {
    if (!text.empty()) text += " or ";
    text += state;
  }
  return text;
}

std::string DescribeSelector(const TaskSelector& select) {
  std::string text;
  auto add = [&](std::string_view part) {
    if (!text.empty()) text += ' ';
    text += part;
  };
  if (!select.process.empty()) add("process=" + select.process);
  if (!select.comm.empty()) add("comm=" + select.comm);
  if (select.thread == TaskSelector::Thread::kLeader) add("thread=leader");
  if (select.thread == TaskSelector::Thread::kNonLeader) add("thread=non-leader");
  return text.empty() ? "any task" : text;
}

bool SelectorMatches(const TaskSelector& select, const ObservedTask& task) {
  if (!select.process.empty() && select.process != task.process) return false;
  if (!select.comm.empty() && select.comm != task.comm) return false;
  switch (select.thread) {
    case TaskSelector::Thread::kAny:
      return true;
    case TaskSelector::Thread::kLeader:
      return task.leader;
    case TaskSelector::Thread::kNonLeader:
      return !task.leader;
  }
  return true;
}

// Signals are compared by number so "KILL", "SIGKILL" and "sigkill" agree.
bool HasSignal(const std::vector<std::string>& observed, const std::string& wanted) {
  const std::optional<int> wanted_number = probe::SignalNumber(wanted);
  return std::any_of(observed.begin(), observed.end(), [&](const std::string& name) {
    if (wanted_number) return probe::SignalNumber(name) == wanted_number;
    return name == wanted;
  });
}

bool HasAll(const std::vector<std::string>& observed, const std::vector<std::string>& wanted,
            bool signals) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const std::string& name) {
    if (signals) return HasSignal(observed, name);
    return std::find(observed.begin(), observed.end(), name) != observed.end();
  });
}

std::string OutputExcerpt(std::string_view output);

std::string DescribePipeExpectation(const TaskExpectation::Pipe& pipe) {
  char fill[32];
  std::snprintf(fill, sizeof(fill), "%.0f%%", pipe.min_fill * 100);
  std::string text = "fd " + std::to_string(pipe.fd) + " a pipe at least " + fill + " full";
  if (!pipe.starts_with.empty()) text += ", unread bytes starting \"" + pipe.starts_with + "\"";
  return text;
}

// Why `task`'s pipe misses `pipe`, or "" when it satisfies it.
std::string PipeExpectationMiss(const TaskExpectation::Pipe& pipe, const ObservedTask& task) {
  auto observed = std::find_if(task.pipes.begin(), task.pipes.end(),
                               [&](const ObservedTask::Pipe& held) { return held.fd == pipe.fd; });
  if (observed == task.pipes.end()) return "fd " + std::to_string(pipe.fd) + " not a measured pipe";
  const std::string measured = std::to_string(observed->unread_bytes) + " of " +
                               std::to_string(observed->capacity_bytes) + " bytes unread";
  if (observed->capacity_bytes <= 0 ||
      static_cast<double>(observed->unread_bytes) <
          pipe.min_fill * static_cast<double>(observed->capacity_bytes)) {
    return measured;
  }
  if (observed->head.rfind(pipe.starts_with, 0) != 0) {
    return measured + ", starting \"" + OutputExcerpt(observed->head) + "\"";
  }
  return "";
}

// The differences between `expectation` and `task`; empty when the task satisfies it.
std::vector<Mismatch> Compare(const TaskExpectation& expectation, const ObservedTask& task) {
  std::vector<Mismatch> mismatches;
  auto add = [&](std::string field, std::string expected, std::string observed) {
    mismatches.push_back(
        Mismatch{expectation.role, std::move(field), std::move(expected), std::move(observed)});
  };
  if (!expectation.states.empty() && expectation.states.count(task.state) == 0) {
    add("state", DescribeStates(expectation.states), std::string(1, task.state));
  }
  if (!IsOrderedSubsequence(expectation.stack, task.stack)) {
    add("stack", Join(expectation.stack, " <- ", ""), Join(task.stack, " <- ", "(empty)"));
  }
  if (!HasAll(task.shd_pending, expectation.shd_pending, /*signals=*/true)) {
    add("shd_pending", Join(expectation.shd_pending, ", ", ""),
        Join(task.shd_pending, ", ", "(none)"));
  }
  if (!HasAll(task.sig_pending, expectation.sig_pending, /*signals=*/true)) {
    add("sig_pending", Join(expectation.sig_pending, ", ", ""),
        Join(task.sig_pending, ", ", "(none)"));
  }
  if (!HasAll(task.task_flags, expectation.task_flags, /*signals=*/false)) {
    add("task_flags", Join(expectation.task_flags, ", ", ""),
        Join(task.task_flags, ", ", "(none)"));
  }
  if (expectation.pipe) {
    std::string observed = PipeExpectationMiss(*expectation.pipe, task);
    if (!observed.empty()) add("pipe", DescribePipeExpectation(*expectation.pipe), observed);
  }
  return mismatches;
}

// Kuhn's augmenting path step: tries to give expectation `e` a satisfying task, moving earlier
// bindings along when that frees one.
bool Augment(size_t e, const std::vector<std::vector<size_t>>& satisfying,
             std::vector<bool>& visited, std::vector<std::optional<size_t>>& task_owner,
             std::vector<std::optional<size_t>>& bound_task) {
  for (size_t t : satisfying[e]) {
    if (visited[t]) continue;
    visited[t] = true;
    if (!task_owner[t] || Augment(*task_owner[t], satisfying, visited, task_owner, bound_task)) {
      task_owner[t] = e;
      bound_task[e] = t;
      return true;
    }
  }
  return false;
}

// The canonical spelling of a signal name ("SYS" -> "SIGSYS"); an unknown name as given.
std::string CanonicalSignal(const std::string& name) {
  const std::optional<int> number = probe::SignalNumber(name);
  return number ? probe::SignalName(*number) : name;
}

// How a command ended, for a mismatch: "exit 0", "SIGSYS", "timed out after 30000 ms".
std::string DescribeEnding(const ObservedCommand& command) {
  if (command.running_at_capture) return "still running at capture";
  if (command.timed_out) {
    return "timed out after " + std::to_string(command.duration_ms) + " ms";
  }
  if (command.killed_by) return CanonicalSignal(*command.killed_by);
  if (command.exit_code) return "exit " + std::to_string(*command.exit_code);
  return "(unknown)";
}

// How a command ended, for the hash: no durations, so equal runs hash equal.
std::string HashedEnding(const ObservedCommand& command) {
  if (command.running_at_capture) return "running at capture";
  if (command.timed_out) return "timed out";
  if (command.killed_by) return "signal " + CanonicalSignal(*command.killed_by);
  if (command.exit_code) return "exit " + std::to_string(*command.exit_code);
  return "unknown";
}

std::string DescribeRefusedSyscall(const ObservedCommand& command) {
  if (command.refused_syscall) return *command.refused_syscall;
  if (command.refused_syscall_number) {
    return "syscall " + std::to_string(*command.refused_syscall_number) + " (no name)";
  }
  return "(none)";
}

// The start of a command's output on one line, control characters escaped.
std::string OutputExcerpt(std::string_view output) {
  constexpr size_t kMaxBytes = 80;
  std::string excerpt = EscapeOneLine(output.substr(0, kMaxBytes));
  if (output.size() > kMaxBytes) excerpt += "...";
  return excerpt;
}

// The differences between `expectation` and how `command` ended; empty when it satisfies it.
std::vector<Mismatch> CompareCommand(const CommandExpectation& expectation,
                                     const ObservedCommand& command) {
  std::vector<Mismatch> mismatches;
  auto add = [&](std::string field, std::string expected, std::string observed) {
    mismatches.push_back(
        Mismatch{expectation.command, std::move(field), std::move(expected), std::move(observed)});
  };
  // A command wedge killed at its timeout neither exited nor was killed by the bug.
  // Nor did one that recovery ended after the capture.
  const bool ended_by_wedge = command.timed_out || command.running_at_capture;
  if (expectation.running_at_capture &&
      *expectation.running_at_capture != command.running_at_capture) {
    add("running_at_capture",
        *expectation.running_at_capture ? "still running at capture" : "returned before capture",
        command.running_at_capture ? "still running at capture" : DescribeEnding(command));
  }
  if (expectation.exit_code &&
      (ended_by_wedge || command.killed_by || command.exit_code != expectation.exit_code)) {
    add("exit_code", "exit " + std::to_string(*expectation.exit_code), DescribeEnding(command));
  }
  if (expectation.killed_by &&
      (ended_by_wedge || !command.killed_by ||
       CanonicalSignal(*command.killed_by) != CanonicalSignal(*expectation.killed_by))) {
    add("killed_by", *expectation.killed_by, DescribeEnding(command));
  }
  if (expectation.refused_syscall && command.refused_syscall != expectation.refused_syscall) {
    add("refused_syscall", *expectation.refused_syscall, DescribeRefusedSyscall(command));
  }
  for (const std::string& text : expectation.output_contains) {
    if (command.output.find(text) != std::string::npos) continue;
    std::string observed =
        "not in the " + std::to_string(command.output.size()) + " bytes of output";
    if (!command.output.empty()) observed += ": \"" + OutputExcerpt(command.output) + "\"";
    add("output", text, std::move(observed));
  }
  return mismatches;
}

// Every command expectation, in signature order, against the command of the same name.
void MatchCommands(const std::vector<CommandExpectation>& expectations, const Observation& observed,
                   MatchResult& result) {
  for (const CommandExpectation& expectation : expectations) {
    auto command = std::find_if(
        observed.commands.begin(), observed.commands.end(),
        [&](const ObservedCommand& candidate) { return candidate.command == expectation.command; });
    if (command == observed.commands.end()) {
      result.mismatches.push_back(Mismatch{expectation.command, "command", "ran", "did not run"});
      result.commands.emplace_back(expectation.command, std::nullopt);
      continue;
    }
    for (Mismatch& mismatch : CompareCommand(expectation, *command)) {
      result.mismatches.push_back(std::move(mismatch));
    }
    result.commands.emplace_back(expectation.command, *command);
  }
}

// A number as a bound or a fraction shows it: "50", "12.5", "66.6".
std::string FormatBound(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

// A measured per-second value: counts as integers, means of sampled gauges to one decimal.
std::string FormatValue(double value) {
  char text[32];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(text, sizeof(text), "%.0f", value);
  } else {
    std::snprintf(text, sizeof(text), "%.1f", value);
  }
  return text;
}

// ">= 50/s in 80% of outage seconds", "<= 15/s in 100% of after seconds",
// ">= 1/s and <= 20/s in 50% of outage seconds".
std::string DescribeRate(const RateExpectation& expectation) {
  std::string bound;
  if (expectation.min_per_second) bound = ">= " + FormatBound(*expectation.min_per_second) + "/s";
  if (expectation.max_per_second) {
    if (!bound.empty()) bound += " and ";
    bound += "<= " + FormatBound(*expectation.max_per_second) + "/s";
  }
  if (expectation.aggregate == "mean") return bound + " on average over the " + expectation.window;
  return bound + " in " + FormatBound(expectation.for_fraction * 100) + "% of " +
         expectation.window + " seconds";
}

bool WithinRate(const RateExpectation& expectation, double value) {
  if (std::isnan(value)) return false;
  if (expectation.min_per_second && value < *expectation.min_per_second) return false;
  if (expectation.max_per_second && value > *expectation.max_per_second) return false;
  return true;
}

// The seconds of a window that must satisfy the bound: ceil(for_fraction * seconds), at least
// one. The tolerance absorbs binary rounding (0.7 * 10 is 7.000000000000001 in a double).
std::size_t RequiredSeconds(double for_fraction, std::size_t seconds) {
  const double exact = for_fraction * static_cast<double>(seconds);
  auto required = static_cast<std::size_t>(std::max(0.0, std::ceil(exact - 1e-9)));
  return std::clamp<std::size_t>(required, 1, seconds);
}

// "0 of 3 s (3 needed): 0, 2, 1 /s"; more than 12 seconds show the first and last 6 and the
// extremes.
std::string DescribeSeries(const MatchResult::Rate& rate, const std::vector<double>& values) {
  constexpr std::size_t kShown = 12;
  std::string text = std::to_string(rate.satisfying) + " of " + std::to_string(rate.seconds) +
                     " s (" + std::to_string(rate.required) + " needed): ";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values.size() > kShown && i == kShown / 2) {
      text += "..., ";
      i = values.size() - kShown / 2;
    }
    text += FormatValue(values[i]);
    text += i + 1 < values.size() ? ", " : " /s";
  }
  if (values.size() > kShown) {
    const auto [low, high] = std::minmax_element(values.begin(), values.end());
    text += "; min " + FormatValue(*low) + ", max " + FormatValue(*high);
  }
  return text;
}

// Every rate expectation, in signature order, against the first series of its metric and window.
void MatchRates(const std::vector<RateExpectation>& expectations, const Observation& observed,
                MatchResult& result) {
  for (const RateExpectation& expectation : expectations) {
    MatchResult::Rate rate;
    rate.metric = expectation.metric;
    rate.window = expectation.window;
    const std::string role = expectation.metric + "/" + expectation.window;
    auto series = std::find_if(
        observed.series.begin(), observed.series.end(), [&](const ObservedSeries& candidate) {
          return candidate.metric == expectation.metric && candidate.window == expectation.window;
        });
    if (series == observed.series.end() || series->per_second.empty()) {
      result.mismatches.push_back(Mismatch{role, "rate", DescribeRate(expectation), "no samples"});
      result.rates.push_back(std::move(rate));
      continue;
    }
    const std::vector<double>& values = series->per_second;
    rate.seconds = values.size();
    if (expectation.aggregate == "mean") {
      // Summed first and divided once: a sum of counts is exact, so the mean is the correctly
      // rounded quotient (seven seconds of 15 give 15, not the 14.999999999999998 of a sum of
      // 15/7s).
      double sum = 0;
      for (double value : values) sum += value;
      const double mean = sum / static_cast<double>(values.size());
      rate.required = 1;
      rate.satisfying = WithinRate(expectation, mean) ? 1 : 0;
      rate.held = rate.satisfying == 1;
      if (!rate.held) {
        std::string seen =
            "mean " + FormatValue(mean) + "/s over " + std::to_string(rate.seconds) + " s: ";
        for (std::size_t i = 0; i < values.size() && i < 12; ++i) {
          seen += FormatValue(values[i]) + (i + 1 < values.size() ? ", " : " /s");
        }
        result.mismatches.push_back(Mismatch{role, "rate", DescribeRate(expectation), seen});
      }
      result.rates.push_back(std::move(rate));
      continue;
    }
    rate.satisfying =
        static_cast<std::size_t>(std::count_if(values.begin(), values.end(), [&](double value) {
          return WithinRate(expectation, value);
        }));
    rate.required = RequiredSeconds(expectation.for_fraction, rate.seconds);
    rate.held = rate.satisfying >= rate.required;
    if (!rate.held) {
      result.mismatches.push_back(
          Mismatch{role, "rate", DescribeRate(expectation), DescribeSeries(rate, values)});
    }
    result.rates.push_back(std::move(rate));
  }
}

std::uint64_t Fnv1a64(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

std::string EscapeOneLine(std::string_view text) {
  std::string line;
  for (const char c : text) {
    if (c == '\n') {
      line += "\\n";
    } else if (c == '\t') {
      line += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      line += '?';
    } else {
      line += c;
    }
  }
  return line;
}

std::string NormalizeFrame(std::string_view function) {
  std::string_view text = function;
  const size_t begin = text.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return "";
  text.remove_prefix(begin);
  text = text.substr(0, text.find_last_not_of(kBlanks) + 1);
  // A raw /proc line: "[<0>] fuse_flush+0x155/0x190 [fuse]".
  if (text.starts_with("[<")) {
    const size_t end = text.find(">]");
    if (end != std::string_view::npos) {
      text.remove_prefix(end + 2);
      text.remove_prefix(std::min(text.find_first_not_of(kBlanks), text.size()));
    }
  }
  const size_t cut = text.find_first_of(" +");
  std::string name(text.substr(0, cut));
  while (StripCloneSuffix(name)) {
  }
  return name;
}

std::vector<std::string> NormalizeStack(const std::vector<probe::StackFrame>& stack) {
  std::vector<std::string> frames;
  frames.reserve(stack.size());
  for (const probe::StackFrame& frame : stack) frames.push_back(NormalizeFrame(frame.function));
  return frames;
}

bool FrameMatches(std::string_view expected, std::string_view frame) {
  while (true) {
    const size_t bar = expected.find('|');
    if (expected.substr(0, bar) == frame) return true;
    if (bar == std::string_view::npos) return false;
    expected.remove_prefix(bar + 1);
  }
}

namespace {

// How many frames of `observed` it takes, innermost first, to find all of `expected` in order
// (greedily); nullopt when they are not all there. 0 for an empty `expected`.
std::optional<size_t> FramesToMatch(const std::vector<std::string>& expected,
                                    const std::vector<std::string>& observed) {
  size_t next = 0;
  size_t taken = 0;
  while (next < expected.size() && taken < observed.size()) {
    if (FrameMatches(expected[next], observed[taken])) ++next;
    ++taken;
  }
  if (next < expected.size()) return std::nullopt;
  return taken;
}

}  // namespace

bool IsOrderedSubsequence(const std::vector<std::string>& expected,
                          const std::vector<std::string>& observed) {
  return FramesToMatch(expected, observed).has_value();
}

Observation Observe(const probe::TreeSnapshot& snapshot, bool all_exited) {
  Observation observation;
  observation.all_exited = all_exited;
  for (const probe::ProcessSnapshot& process : snapshot.processes) {
    for (const probe::TaskSnapshot& task : process.tasks) {
      ObservedTask observed;
      observed.process = process.label;
      observed.pid = process.pid;
      observed.tid = task.tid;
      observed.leader = task.tid == process.pid;
      observed.comm = task.status.name.empty() ? task.stat.comm : task.status.name;
      observed.state = task.status.state != '?' ? task.status.state : task.stat.state;
      observed.stack = NormalizeStack(task.stack);
      observed.shd_pending = task.status.shd_pnd.Names();
      observed.sig_pending = task.status.sig_pnd.Names();
      observed.task_flags = probe::TaskFlagNames(task.stat.flags);
      observed.wchan = task.wchan;
      for (const probe::FileDescriptor& fd : process.fds) {
        if (!fd.pipe_inode || !fd.pipe_capacity_bytes || !fd.pipe_unread_bytes) continue;
        observed.pipes.push_back(
            {fd.fd, *fd.pipe_capacity_bytes, *fd.pipe_unread_bytes, fd.pipe_head.value_or("")});
      }
      observation.tasks.push_back(std::move(observed));
    }
  }
  return observation;
}

namespace {

// `observed` up to and including the frame that the last of `expected` matched (greedily, as
// IsOrderedSubsequence does); all of `observed` when `expected` does not match; nothing when it
// is empty.
std::vector<std::string> AnchoredFrames(const std::vector<std::string>& expected,
                                        const std::vector<std::string>& observed) {
  const std::optional<size_t> taken = FramesToMatch(expected, observed);
  if (!taken) return observed;
  return std::vector<std::string>(observed.begin(), observed.begin() + *taken);
}

void MatchTasks(const std::vector<TaskExpectation>& expectations, const Observation& observed,
                MatchResult& result) {
  const size_t expectation_count = expectations.size();
  const size_t task_count = observed.tasks.size();
  std::vector<std::vector<size_t>> selected(expectation_count);
  std::vector<std::vector<size_t>> satisfying(expectation_count);
  for (size_t e = 0; e < expectation_count; ++e) {
    for (size_t t = 0; t < task_count; ++t) {
      if (!SelectorMatches(expectations[e].select, observed.tasks[t])) continue;
      selected[e].push_back(t);
      if (Compare(expectations[e], observed.tasks[t]).empty()) satisfying[e].push_back(t);
    }
  }

  // The largest set of expectations bound to distinct tasks that satisfy them, so one role
  // taking a task another role needs cannot fail a signature that the tree does show.
  std::vector<std::optional<size_t>> task_owner(task_count);
  std::vector<std::optional<size_t>> bound_task(expectation_count);
  for (size_t e = 0; e < expectation_count; ++e) {
    std::vector<bool> visited(task_count, false);
    Augment(e, satisfying, visited, task_owner, bound_task);
  }

  // The rest bind to the unbound selected task that differs least, for the diff.
  for (size_t e = 0; e < expectation_count; ++e) {
    if (bound_task[e]) continue;
    const TaskExpectation& expectation = expectations[e];
    std::optional<size_t> best;
    std::vector<Mismatch> best_mismatches;
    for (size_t t : selected[e]) {
      if (task_owner[t]) continue;
      std::vector<Mismatch> mismatches = Compare(expectation, observed.tasks[t]);
      if (!best || mismatches.size() < best_mismatches.size()) {
        best = t;
        best_mismatches = std::move(mismatches);
      }
    }
    if (!best) {
      const std::string reason =
          selected[e].empty() ? "no such task" : "every such task is bound to another role";
      result.mismatches.push_back(
          Mismatch{expectation.role, "task", DescribeSelector(expectation.select), reason});
      continue;
    }
    task_owner[*best] = e;
    bound_task[e] = best;
    for (Mismatch& mismatch : best_mismatches) result.mismatches.push_back(std::move(mismatch));
  }

  for (size_t e = 0; e < expectation_count; ++e) {
    if (!bound_task[e]) continue;
    // A bound task keeps only the pipe its role talks about: the rest are not signature.
    ObservedTask task = observed.tasks[*bound_task[e]];
    std::erase_if(task.pipes, [&](const ObservedTask::Pipe& pipe) {
      return !expectations[e].pipe || pipe.fd != expectations[e].pipe->fd;
    });
    result.hashed_stacks.push_back(AnchoredFrames(expectations[e].stack, task.stack));
    result.bound.emplace_back(expectations[e].role, std::move(task));
  }
}

}  // namespace

MatchResult Match(const Signature& expected, const Observation& observed) {
  MatchResult result;
  if (expected.all_exited) {
    if (!observed.all_exited) {
      result.mismatches.push_back(
          Mismatch{"", "all_exited", "true",
                   "false (" + std::to_string(observed.tasks.size()) + " tasks left)"});
    }
  } else {
    MatchTasks(expected.tasks, observed, result);
  }
  MatchCommands(expected.commands, observed, result);
  MatchRates(expected.rates, observed, result);
  result.matched = result.mismatches.empty();
  return result;
}

std::string Hash(const MatchResult& match, const Observation& observed) {
  std::string canonical;
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  for (size_t i = 0; i < match.bound.size(); ++i) {
    const auto& [role, task] = match.bound[i];
    canonical += "role=" + role + "\n";
    canonical += std::string("state=") + task.state + "\n";
    const std::vector<std::string>& frames =
        i < match.hashed_stacks.size() ? match.hashed_stacks[i] : task.stack;
    canonical += "stack=" + Join(frames, ",", "") + "\n";
    canonical += "shd_pending=" + Join(sorted(task.shd_pending), ",", "") + "\n";
    canonical += "sig_pending=" + Join(sorted(task.sig_pending), ",", "") + "\n";
    // The capacity, not the fill: how many bytes a dump had written when captured may vary.
    for (const ObservedTask::Pipe& pipe : task.pipes) {
      canonical +=
          "pipe=" + std::to_string(pipe.fd) + ":" + std::to_string(pipe.capacity_bytes) + "\n";
    }
  }
  if (match.bound.empty() && match.commands.empty() && observed.all_exited) {
    canonical = "all-exited";
  }
  for (const auto& [name, command] : match.commands) {
    canonical += "command=" + name + "\n";
    canonical += "ended=" + (command ? HashedEnding(*command) : std::string("not run")) + "\n";
    std::string refused;
    if (command && command->refused_syscall) {
      refused = *command->refused_syscall;
    } else if (command && command->refused_syscall_number) {
      refused = "nr " + std::to_string(*command->refused_syscall_number);
    }
    canonical += "refused_syscall=" + refused + "\n";
  }
  // Whether each bound held, not the rates: two runs that churn alike hash alike.
  for (const MatchResult::Rate& rate : match.rates) {
    canonical += "rate=" + rate.metric + "\n";
    canonical += "window=" + rate.window + "\n";
    canonical += std::string(rate.held ? "held" : "not held") + "\n";
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a64(canonical)));
  return hex;
}

}  // namespace wedge::signature
