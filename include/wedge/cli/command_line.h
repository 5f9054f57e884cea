// wedge's command line: every subcommand, its options and their checks in one table (CLI11),
// parsed into a typed command before anything runs, so that a usage error changes nothing.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/scenario/scenario.h"

namespace wedge::cli {

// wedge's exit statuses; 128+N means stopped by signal N.
inline constexpr int kAllAsExpected = 0;
inline constexpr int kExpectationFailed = 1;
inline constexpr int kUsage = 2;  // usage or bad input; nothing on the host was touched
inline constexpr int kRequirementMissing = 3;
inline constexpr int kInternalError = 4;

// `wedge list [DIR]`.
struct ListCommand {
  std::optional<std::string> directory;  // unset: the scenarios directory
};

// `wedge validate FILE...`.
struct ValidateCommand {
  std::vector<std::string> files;  // at least one
};

// --shard K/N: the K-th of N slices, 1 <= K <= N.
struct Shard {
  int index = 1;
  int count = 1;
  bool operator==(const Shard&) const = default;
};

// `wedge run [SCENARIO|DIR]... [options]`.
struct RunCommand {
  std::vector<std::string> paths;  // scenario files and directories; empty: the scenarios one
  std::optional<std::string> json;
  std::optional<std::string> junit;
  bool keep = false;
  bool hold = false;  // --hold: keep the reproduced state live until `wedge cleanup` releases it
  bool allow_untrusted = false;
  std::vector<std::string> with;  // NAME=PATH or NAME=RELEASE, in order
  std::optional<scenario::Verdict> expect;
  int repeat = 1;  // 1 to 9999
  std::optional<Shard> shard;
  std::vector<std::string> kernels;  // --kernel, in order
  // --stack, in order: "host" (the installed binaries) or a Debian release, each once.
  std::vector<std::string> stacks;
  int guest_timeout_s = 180;  // 1 to 99999
};

// `wedge verify SCENARIO --baseline NAME=PATH... --candidate NAME=PATH... [options]`.
struct VerifyCommand {
  std::string scenario;
  std::vector<std::string> baseline;   // NAME=PATH, at least one
  std::vector<std::string> candidate;  // NAME=PATH, at least one
  int repeat = 3;                      // 1 to 999
  std::optional<std::string> json;
};

// `wedge bisect SCENARIO --binary NAME --candidates PATH...` or `wedge bisect SCENARIO --stacks
// RELEASE...`.
struct BisectCommand {
  std::string scenario;
  std::string binary;                   // empty with stacks
  std::vector<std::string> candidates;  // oldest to newest, at least two; or none, with stacks
  std::vector<std::string> stacks;      // "host" or a release, oldest to newest, each once
};

// `wedge snapshot PID [--json FILE]`.
struct SnapshotCommand {
  pid_t pid = 0;
  std::optional<std::string> json;
};

// `wedge match PID [DIR]`.
struct MatchCommand {
  pid_t pid = 0;
  std::optional<std::string> directory;  // unset: the scenarios directory
};

// `wedge cleanup`.
struct CleanupCommand {};

using Command = std::variant<ListCommand, ValidateCommand, RunCommand, VerifyCommand, BisectCommand,
                             SnapshotCommand, MatchCommand, CleanupCommand>;

// The end of a command line that names nothing to run: --help or --version (status 0, text for
// stdout) or a usage error (status kUsage, text for stderr: the problem, then the usage).
struct ParseExit {
  int status = kAllAsExpected;
  std::string text;
};

// Parses wedge's arguments (argv without argv[0]). Options take their value as `--opt value` or
// `--opt=value`; `--` makes every later argument positional.
std::variant<Command, ParseExit> ParseCommandLine(const std::vector<std::string>& args);

// The text of a usage error found after parsing: "wedge: PROBLEM" and the usage of `command`
// ("run", "verify", ...; every command's when empty or unknown).
std::string UsageError(std::string_view command, std::string_view problem);

// The verdict named `name` ("reproduced", "not-reproduced", "unexplained").
std::optional<scenario::Verdict> VerdictNamed(std::string_view name);

}  // namespace wedge::cli
