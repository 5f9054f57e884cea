// The scenario model and its loader. docs/scenario-format.md is the schema, field by field;
// this header is its C++ image. Loading validates everything before wedge touches the host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/signature/signature.h"

namespace wedge::scenario {

enum class Verdict { kReproduced, kNotReproduced, kUnexplained };
std::string_view VerdictName(Verdict verdict);  // "reproduced", "not-reproduced", "unexplained"

// An upstream reference: a commit, an issue, a report.
struct Reference {
  std::string kind;  // "commit", "issue", "pull-request", "report", "mailing-list"
  std::string id;    // "5a8bee63b10f", "runc#2530"
  std::string url;   // optional
  std::string note;  // optional: what it says about the bug
};

// One resource limit, applied to the sandbox before anything runs in it.
struct Rlimit {
  std::string name;  // "RLIMIT_NOFILE"
  int resource = 0;  // RLIMIT_NOFILE
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

struct Isolation {
  bool user_namespace = false;  // map root in the sandbox to root outside (uid/gid 0 -> 0, 1 id)
  bool pid_namespace = true;
  bool mount_namespace = true;
  std::optional<std::int64_t> pids_max;        // the sandbox cgroup's pids.max
  std::map<std::string, std::string> sysctls;  // "fs.pipe-user-pages-soft" -> "1" (allowlisted)
  std::vector<Rlimit> rlimits;
};

// The libfuse3 daemon fixture (fixtures/fuse_daemon.cpp).
struct FuseDaemonFixture {
  std::string mountpoint = "mnt";  // relative to the run directory
  std::string file = "held";       // the file the daemon serves
  bool holder_thread = true;       // a second thread holds `file` open from its own fd table
  // How the holder opens `file`: kRead is O_RDONLY (its close at exit sends a FLUSH); kPath is
  // O_PATH, a path-only file whose close sends nothing to the daemon.
  enum class HolderOpen { kRead, kPath } holder_open = HolderOpen::kRead;
  bool holder_closes = false;  // the holder closes `file` while the daemon serves, before ready
  enum class Flush { kReply, kNever } flush = Flush::kReply;  // how the daemon answers FLUSH
};

// A program a scenario starts inside its sandbox, named by the scenario. One kind today.
struct Fixture {
  std::string name;  // key in the scenario's "fixtures" object
  std::variant<FuseDaemonFixture> kind;
};

// The private docker stack (wedge/stack) a scenario drives. Scenarios of one run share one
// stack unless `fresh` asks for a stack of its own (for a scenario that breaks it on purpose).
struct StackRequirement {
  bool required = false;
  bool fresh = false;
  bool busybox_image = true;  // import the busybox-static image before the steps
};

// systemd-style confinement of a command step, as a unit file would pin it.
struct CommandConfinement {
  std::vector<std::string> system_call_filter;  // SystemCallFilter= lines, in order
  bool native_architecture_only = false;        // SystemCallArchitectures=native
  bool no_new_privileges = false;               // NoNewPrivileges= (implied by a filter)
  std::vector<Rlimit> rlimits;                  // LimitNOFILE= etc.: soft and hard
};

// How a flap step takes containerd away and brings it back. Every wait is on an observed
// state (socket refusing, socket serving), never a guess; the durations are the prescribed
// outage and uptime.
struct FlapSpec {
  enum class How {
    kSigkill,       // SIGKILL containerd; restart it with the same config
    kSigstop,       // SIGSTOP it for the outage, then SIGCONT (the socket stays, nobody answers)
    kUnlinkSocket,  // unlink its socket for the outage, then restart it (it re-binds)
    kRestart,       // SIGTERM, wait for exit, restart: a clean restart
  } how = How::kSigkill;
  int cycles = 1;
  int down_ms = 3000;               // outage per cycle, from "containerd gone" observed to restart
  int up_ms = 1000;                 // between cycles, from "serving" observed to the next outage
  int recovery_timeout_ms = 30000;  // bound on waiting for `docker ps` to work again
};

// What a watched run-command step watches: the descendants of the containerd-shim of
// `container` whose comm is `comm` (with runc exec, "runc:[2:INIT]"). When every task of the
// watched processes sleeps unchanged for `settle_ms` while the command has not returned, that is
// the stall: the watched processes (and their parents, labelled `parent_label`) are captured for
// the task signatures, and the command is recorded as still running at capture. When the command
// returns first, nothing stalled.
struct CommandWatch {
  std::string container;  // the container's --name, started by an earlier run-command step or
                          // spawn step
  std::string comm;       // "runc:[2:INIT]"
  // The watched process's label in signatures: "runc-init". Empty for a container a spawn step
  // started: its processes are labelled already, and the capture is the container's whole tree.
  std::string label;
  std::string parent_label;  // its parent's label ("runc"); empty: the parent is not captured
  // The states (of /proc/PID/stat) the watched processes must all be in before a quiet period
  // counts as a stall, e.g. {"Z"} for a daemon that must have been killed: an idle process is
  // quiet too. Empty: any state.
  std::vector<char> stalled_states;
  int poll_interval_ms = 5;
  int settle_ms = 1000;
  // Injected pins, each named in the report as an injection, never as the bug's own doing:
  // hold every entry of `hold_syscall` in the shim and its descendants for `hold_ms` (strace
  // -f -e inject=SYSCALL:delay_enter=...), and shrink the watched process's stderr pipe to
  // `stderr_pipe_bytes` with F_SETPIPE_SZ as soon as it is seen.
  std::string hold_syscall;  // "clone3"; empty: nothing held
  int hold_ms = 0;
  std::optional<int> stderr_pipe_bytes;
};

// The step kinds. Each is one module under harness/kinds/ (docs/architecture.md says how one is
// added); docs/scenario-format.md documents each one's fields.

// Where a spawn step starts its fixture instead of the sandbox: as the main process of a new
// container of the private stack, run the way a user runs such a program in docker
// (docker run -d --init, with the options its kind needs, e.g. /dev/fuse and CAP_SYS_ADMIN for
// a FUSE daemon), from an image of the fixture's binary and its shared libraries.
struct ContainerSpawn {
  std::string name;        // the container's --name
  std::string init_label;  // the label of its pid 1, docker-init, in signatures
};

// "spawn": starts fixture `fixture` inside the sandbox, or in a container of its own, as
// process `name`.
struct SpawnStep {
  std::string name;
  std::string fixture;
  std::optional<ContainerSpawn> container;
};

// "kill": sends `signal` to process `target` ("sandbox-init" or a spawned name).
struct KillStep {
  std::string target;
  int signal = 0;
};

// "wait-for-stall": watches /proc until the scenario's processes stop changing, or all exit;
// then captures them. Always the last step.
struct WaitForStallStep {};

// "run-command": runs binary `binary` (a name of the binaries table, "docker") with `args` under
// `confinement` against the private stack, and records how it ended.
struct RunCommandStep {
  std::string name;
  std::string binary;
  std::vector<std::string> args;
  CommandConfinement confinement;
  int timeout_ms = 30000;  // killed and reported as timed out after this
};

// "run-command" with a "watch": the command runs in the background while wedge watches the
// processes the stack starts for it, until they stall (the capture) or the command returns.
struct WatchedCommandStep {
  RunCommandStep command;
  CommandWatch watch;
};

// "flap": makes the stack's containerd (`target`) go away and come back per `flap`, while the
// syscall probe watches dockerd; then measures dockerd's recovery.
struct FlapStep {
  std::string name;
  std::string target = "containerd";
  FlapSpec flap;
};

// One step of the trigger sequence, run in order.
using Step = std::variant<SpawnStep, KillStep, WaitForStallStep, RunCommandStep, WatchedCommandStep,
                          FlapStep>;
// The step's "action" as the file spells it: "spawn", "run-command", ...
std::string_view StepAction(const Step& step);
// The step's name ("" for kill and wait-for-stall).
std::string_view StepName(const Step& step);
// The command of a run-command step, watched or not; null for other kinds.
const RunCommandStep* CommandOf(const Step& step);

// The precondition kinds.

// "rlimit-soft-below-hard": the command's pinned rlimit `rlimit` has soft < hard. Decided by the
// file alone.
struct RlimitSoftBelowHard {
  std::string rlimit;  // "RLIMIT_NOFILE"
  int resource = 0;
};

// "pids-limit-hit": observed while the command runs: the pids cgroup of `container` refused a
// fork or clone (pids.events "max" grew).
struct PidsLimitHit {
  std::string container;  // the container's --name
};

// "pipe-capacity-at-most": observed when the command has run: the pipe the init process of
// `container` holds as fd `fd` (created by the containerd-shim, as the pipes of every exec are)
// holds at most `max_bytes`.
struct PipeCapacityAtMost {
  std::string container;
  int fd = 2;
  int max_bytes = 0;
};

// Something the bug needs that a scenario (or this host) may not provide. When one fails and
// the bug signature does not match, the verdict is not-reproduced and the report names it.
struct Precondition {
  std::string name;     // "nofile-soft-below-hard"
  std::string why;      // the upstream reason the bug needs it
  std::string command;  // the run-command step it is about
  std::variant<RlimitSoftBelowHard, PidsLimitHit, PipeCapacityAtMost> check;
};
// "rlimit-soft-below-hard", "pids-limit-hit", "pipe-capacity-at-most".
std::string_view PreconditionKind(const Precondition& precondition);

// How a stall is recognised: every task's state, wchan, CPU time and context-switch count
// unchanged over `settle_ms`, sampled every `poll_interval_ms`. `timeout_ms` only bounds a
// scenario that neither stalls nor exits (verdict unexplained).
struct StallDetection {
  int poll_interval_ms = 2;
  int settle_ms = 100;
  int timeout_ms = 10000;
};

// The recovery actions, run in order after capture whatever the verdict.

// "abort-fuse-connections": writes 1 to /sys/fs/fuse/connections/N/abort for the sandbox's mounts.
struct AbortFuseConnections {};
// "kill-sandbox": SIGKILLs every process in the sandbox cgroup and reaps.
struct KillSandbox {};
// "drain-pipes": reads and discards what the watched processes of a run-command watch (and their
// parents) write to the stderr pipe they share, until they exit: a writer blocked on a full pipe
// that nobody reads is freed, and its parent, which writes its own error into the same pipe, is
// too. Killing the writer alone would leave the parent blocked.
struct DrainPipes {};

using RecoveryStep = std::variant<AbortFuseConnections, KillSandbox, DrainPipes>;
// "abort-fuse-connections", "kill-sandbox", "drain-pipes".
std::string_view RecoveryAction(const RecoveryStep& step);

// What the host must offer to run the scenario at all (else exit 3, naming the requirement).
enum class Requirement { kRoot, kFuseDevice, kFusectl, kPidsCgroup, kKernelStacks, kSeccomp };
std::string_view RequirementName(Requirement requirement);  // "root", "fuse-device", ...

struct Scenario {
  std::filesystem::path file;
  std::string name;     // unique, [a-z0-9-]+
  std::string summary;  // one line
  std::vector<Reference> references;
  std::vector<Requirement> requires_;
  Isolation isolation;
  std::vector<Fixture> fixtures;
  StackRequirement stack;
  std::vector<Precondition> preconditions;
  std::vector<Step> steps;
  StallDetection stall;
  std::vector<RecoveryStep> recovery;
  signature::Signature bug;
  signature::Signature healthy;
  Verdict expected = Verdict::kReproduced;
  std::string expected_reason;  // why this verdict is expected on the reference machine
  // What a Debian release's stack (`--stack RELEASE`) is expected to give where it differs from
  // `expected`: "expect": {..., "stacks": {"bullseye": {"verdict", "reason"}}}.
  struct StackExpectation {
    Verdict verdict = Verdict::kReproduced;
    std::string reason;
  };
  std::map<std::string, StackExpectation> expected_on_stack;

  const Fixture* FindFixture(std::string_view fixture_name) const;
  // The verdict expected on the stack of `release` ("" or "host": the reference machine's).
  Verdict ExpectedOn(std::string_view release) const;
  // And why.
  const std::string& ExpectedReasonOn(std::string_view release) const;
};

// A validation failure: which file, where in it (an RFC 6901 JSON pointer; "" for the whole
// document) and what was expected there.
struct LoadError {
  std::string file;
  std::string pointer;
  std::string message;  // "expected an array of state letters (R S D T t Z X I), got a string"
  int line = 0;         // for syntax errors: where the parser stopped (1-based), else 0
  int column = 0;
  // "FILE: /steps/1/signal: expected a signal name such as \"SIGKILL\", got \"SIGFOO\""
  std::string ToString() const;
};

// Parses and validates `text` as the scenario file `file_name`. Refuses unknown keys, wrong
// types, out-of-range numbers, names that refer to nothing, sysctls outside the allowlist and
// paths that leave the run directory.
std::variant<Scenario, LoadError> ParseScenario(std::string_view text,
                                                const std::filesystem::path& file_name);
// Reads and parses one file (at most 1 MiB, valid UTF-8).
std::variant<Scenario, LoadError> LoadScenarioFile(const std::filesystem::path& file);
// The scenario files (*.json) of a directory, sorted by name; a file argument is returned as is.
std::vector<std::filesystem::path> ExpandScenarioPaths(const std::filesystem::path& path);

// Sysctls a scenario may set, as "fs.pipe-user-pages-soft": wedge::AllowedSysctls(), the one
// list that journal replay and the host check use too.
const std::vector<std::string>& AllowedSysctls();

}  // namespace wedge::scenario
