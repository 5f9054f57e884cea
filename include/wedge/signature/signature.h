// The signature model: what a bug (or a healthy run) looks like in /proc, how an observed
// process tree is reduced to a comparable, hashable form, and how the two are matched.
//
// Kernel frames are compared after normalisation ("fuse_flush+0x155/0x190" -> "fuse_flush",
// ".part.0", ".isra.0", ".constprop.0", ".cold" dropped) as an ordered subsequence, innermost
// frame first, exactly as /proc/PID/stack lists them: a newer kernel that adds "filp_flush"
// between "fuse_flush" and "filp_close" still matches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/probe/task.h"

namespace wedge::signature {

// `text` on one line for a report: "\n" and "\t" escaped, other control characters as '?'.
std::string EscapeOneLine(std::string_view text);

// "fuse_flush+0x155/0x190" or "fuse_flush.isra.0" -> "fuse_flush".
std::string NormalizeFrame(std::string_view function);
std::vector<std::string> NormalizeStack(const std::vector<probe::StackFrame>& stack);

// True when the observed frame `frame` is `expected` or one of its "|"-separated alternatives.
bool FrameMatches(std::string_view expected, std::string_view frame);
// True when `expected` appears in `observed` in the same order, gaps allowed. An expected frame
// may name alternatives separated by "|" ("anon_pipe_write|pipe_write"): a function renamed
// between kernel versions matches under either name.
bool IsOrderedSubsequence(const std::vector<std::string>& expected,
                          const std::vector<std::string>& observed);

// Which task of the captured tree a role refers to. Unset fields match anything.
struct TaskSelector {
  std::string process;  // the label the scenario gave the process ("sandbox-init", "daemon")
  std::string comm;     // the task's comm (thread name), exact
  enum class Thread { kAny, kLeader, kNonLeader } thread = Thread::kAny;
};

// What one task must look like. Empty fields are not checked.
struct TaskExpectation {
  std::string role;  // "pidns-init", "daemon-leader", "stuck-thread"
  TaskSelector select;
  std::set<char> states;                 // any of these, e.g. {'D'}
  std::vector<std::string> stack;        // normalised frames, innermost first, as a subsequence
  std::vector<std::string> shd_pending;  // signal names that must be in ShdPnd
  std::vector<std::string> sig_pending;  // signal names that must be in SigPnd
  std::vector<std::string> task_flags;   // PF_* names that must be set, e.g. "PF_EXITING"
  // A pipe the task's process holds open as fd `fd` must be at least `min_fill` full (unread
  // bytes over capacity) and its unread bytes must start with `starts_with` (when not empty).
  struct Pipe {
    int fd = 2;
    double min_fill = 0;
    std::string starts_with;
  };
  std::optional<Pipe> pipe;
};

// How a command a scenario ran (e.g. the docker CLI) must have ended. Unset fields are not
// checked.
struct CommandExpectation {
  std::string command;                         // the run-command step's name
  std::optional<int> exit_code;                // exited normally with this status
  std::optional<std::string> killed_by;        // killed by this signal, e.g. "SIGSYS"
  std::optional<std::string> refused_syscall;  // the syscall a seccomp filter refused, by name
  std::vector<std::string> output_contains;    // substrings of stdout+stderr, all required
  // true: the command had not returned when the stall it was watched for was captured (how it
  // ended after recovery is then not checked by exit_code or killed_by: recovery ended it).
  std::optional<bool> running_at_capture;
};

// A bound on a per-second series the syscall probe measured (see ObservedSeries), over a
// window of the run. The bound must hold in at least `for_fraction` of the window's seconds.
struct RateExpectation {
  std::string metric;             // "connect", "connect_errors", "socket", "close", "threads",
                                  // "futex_threads", "containerd_log_lines"
  std::string window = "outage";  // "outage": while containerd was away; "after": after it
                                  // served again
  std::optional<double> min_per_second;  // the second's value must be >= this
  std::optional<double> max_per_second;  // and <= this
  // The bound must hold in at least ceil(for_fraction * seconds) of the window's seconds (a
  // tolerance of 1e-9 absorbs binary rounding: 0.7 of 10 seconds is 7, not 8).
  double for_fraction = 1.0;  // with aggregate "each_second"
  // "each_second": the bound applies to each second (for_fraction of them); "mean": to the mean
  // over the window's seconds, for rates that come in bursts (gRPC backoff pauses a dialer
  // between bursts, so which seconds hold the bursts depends on phase, not on the bug). The mean
  // is the seconds' sum divided by their number, compared with the bounds exactly, without a
  // tolerance: for counts it is the correctly rounded quotient, so seven seconds of exactly 15/s
  // hold both ">= 15" and "<= 15", and {0, 0, 149} never holds ">= 50".
  std::string aggregate = "each_second";
  std::string rationale;  // free text: where the bound comes from; reported, never matched
};

// A signature: a set of tasks that must all be found as described, commands that must have
// ended as described, or (for a healthy teardown) the statement that every process of the
// scenario has exited.
struct Signature {
  std::string description;
  std::vector<TaskExpectation> tasks;
  std::vector<CommandExpectation> commands;
  std::vector<RateExpectation> rates;
  bool all_exited = false;
};

// The observed side, reduced to what signatures talk about. Offsets and pids are kept for the
// report but never hashed.
struct ObservedTask {
  std::string process;  // label of the owning process
  pid_t pid = 0;
  pid_t tid = 0;
  bool leader = false;
  std::string comm;
  char state = '?';
  std::vector<std::string> stack;  // normalised
  std::vector<std::string> shd_pending;
  std::vector<std::string> sig_pending;
  std::vector<std::string> task_flags;
  std::string wchan;
  // The pipes the task's process holds, as measured at capture (fd, capacity, unread, head).
  struct Pipe {
    int fd = -1;
    int capacity_bytes = 0;
    int unread_bytes = 0;
    std::string head;  // the first unread bytes, not consumed
  };
  std::vector<Pipe> pipes;
};
// How a command ended, as the kernel reported it.
struct ObservedCommand {
  std::string command;  // the step's name
  std::string binary;   // the path that ran
  std::vector<std::string> argv;
  std::optional<int> exit_code;                // set when it exited
  std::optional<std::string> killed_by;        // set when a signal killed it, e.g. "SIGSYS"
  std::optional<std::string> refused_syscall;  // from the kernel's seccomp audit record
  std::optional<long> refused_syscall_number;
  std::string audit_record;  // the raw record, when there was one
  std::string output;        // stdout and stderr
  bool timed_out = false;    // still running at the step's timeout, then killed
  // Still running when the stall its step watched for was captured; it ended after recovery.
  bool running_at_capture = false;
  std::int64_t duration_ms = 0;
};
// A per-second series of one metric in one window, as the probe measured it: value i is the
// count (or, for sampled gauges such as threads, the mean) in second i of the window.
struct ObservedSeries {
  std::string metric;
  std::string window;
  std::vector<double> per_second;
};

struct Observation {
  std::vector<ObservedTask> tasks;        // every task captured
  std::vector<ObservedSeries> series;     // the syscall probe's per-second series
  std::vector<ObservedCommand> commands;  // every command a step ran, in order
  bool all_exited = false;                // no process of the scenario was left when captured
};
Observation Observe(const probe::TreeSnapshot& snapshot, bool all_exited);

// One difference between what a signature expects and what was observed.
struct Mismatch {
  // The task role; for a command expectation the command's name; for a rate expectation
  // "METRIC/WINDOW" ("connect/outage").
  std::string role;
  // "task", "state", "stack", "shd_pending", "sig_pending", "task_flags", "all_exited"; for
  // commands "command" (it did not run), "exit_code", "killed_by", "refused_syscall", "output";
  // for rates "rate"; "pipe" for a task's pipe; "running_at_capture" for a watched command
  std::string field;
  std::string expected;
  std::string observed;
};
struct MatchResult {
  bool matched = false;
  std::vector<Mismatch> mismatches;
  // For each expectation that found its task, in signature order: the role and the task it was
  // bound to. An expectation no task satisfies is bound to its closest candidate (fewest
  // mismatches), whose differences are in `mismatches`; one no selector finds is left out.
  std::vector<std::pair<std::string, ObservedTask>> bound;
  // For each entry of `bound`: the frames of its stack that the hash covers, innermost first up
  // to the frame the role's outermost expected frame matched. The frames below it (how the task
  // entered the kernel: a syscall's return, an interrupt's) depend on where the task happened to
  // be, not on the bug. Empty for a role that expects no stack.
  std::vector<std::vector<std::string>> hashed_stacks;
  // For each command expectation, in signature order: the command's name and what it did;
  // unset when it did not run.
  std::vector<std::pair<std::string, std::optional<ObservedCommand>>> commands;
  // For each rate expectation, in signature order: how its window's seconds fared.
  struct Rate {
    std::string metric;
    std::string window;
    bool held = false;
    std::size_t seconds = 0;     // seconds in the observed series; 0: no samples
    std::size_t satisfying = 0;  // seconds whose value is within the bound(s)
    std::size_t required = 0;    // ceil(for_fraction * seconds); 0 when there were no samples
  };
  std::vector<Rate> rates;
};
// Every task expectation must bind to a distinct task that satisfies it; every command
// expectation must find its command (by name) ended as described; every rate expectation must
// find its series (the first of the same metric and window) and hold in enough of its seconds.
// A rate mismatch has the role "METRIC/WINDOW" ("connect/outage") and the field "rate": expected
// ">= 50/s in 80% of outage seconds", observed "0 of 3 s (3 needed): 0, 2, 1 /s", or "no samples"
// for a missing or empty series (which never holds).
MatchResult Match(const Signature& expected, const Observation& observed);

// A stable hash (16 hex digits) of what was observed for the roles a signature names: per role,
// in the signature's order, the state, the normalised stack up to the role's outermost expected
// frame (see MatchResult::hashed_stacks), the pending signal names and,
// when the role expects a pipe, that pipe's fd and capacity (not its fill or bytes); then per
// command the signature names, in its order, how it ended ("exit N", "signal SIGSYS", "timed out",
// "running at capture" or "not run") and the refused syscall; then per rate expectation, in its
// order, the metric, the window and whether it held ("held" or "not held"), never the measured
// rates. Durations, output, argv and rates are not hashed. Equal for two runs that wedged (or
// churned) the same way, whatever the pids, offsets, timing or exact counts.
std::string Hash(const MatchResult& match, const Observation& observed);

}  // namespace wedge::signature
