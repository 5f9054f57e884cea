#include "wedge/cli/command_line.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <climits>
#include <memory>
#include <sstream>

#include "wedge/base/debian_releases.h"
#include "wedge/base/fault_point.h"

namespace wedge::cli {
namespace {

// One subcommand: its synopsis as README.md gives it and what it does, for --help and errors.
struct CommandInfo {
  const char* name;
  const char* synopsis;  // continuation lines indented under "wedge"
  const char* summary;   // lines that the overview starts at column 36
};

constexpr std::array<CommandInfo, 8> kCommands = {{
    {"list", "wedge list [DIR]", "scenarios, one line each, and whether this host can run them"},
    {"validate", "wedge validate FILE...",
     "check scenario files; errors name the file and JSON pointer"},
    {"run",
     "wedge run [SCENARIO|DIR]... [--json FILE] [--junit FILE] [--keep]\n"
     "          [--with NAME=PATH|RELEASE]... [--expect VERDICT] [--repeat N] [--shard K/N]\n"
     "          [--allow-untrusted] [--hold]\n"
     "          [--stack host|RELEASE]... [--kernel host|VMLINUZ|PACKAGE]...\n"
     "          [--guest-timeout SECONDS]",
     "run scenarios (default: the scenarios directory);\n"
     "--with picks a binary (docker, dockerd, containerd, runc,\n"
     "containerd-shim-runc-v2): a file, or that binary of\n"
     "another release's root (--with runc=bullseye);\n"
     "--expect overrides the verdict\n"
     "the scenario files expect (e.g. for a patched binary);\n"
     "files others can write are refused unless\n"
     "--allow-untrusted; --repeat runs each N times and\n"
     "fails if the runs disagree; --shard K/N runs the K-th\n"
     "of N deterministic slices (for CI fan-out);\n"
     "--kernel runs them on another kernel under qemu (a\n"
     "vmlinuz with its modules, or a Debian package name or\n"
     "glob such as linux-image-6.1.0-*-cloud-amd64, fetched\n"
     "with apt and cached; RELEASE:PACKAGE takes it from that\n"
     "release's archive), or natively (\"host\"); several\n"
     "--kernel print a matrix scenario x kernel -> verdict;\n"
     "a guest still running after --guest-timeout (default\n"
     "180) is killed and reported as guest-stuck; --stack\n"
     "runs them on a Debian release's docker stack (bullseye,\n"
     "bookworm, trixie, sid; built once with mmdebstrap and\n"
     "cached), several --stack print a matrix scenario x\n"
     "release -> verdict, and with --kernel one of scenario x\n"
     "(kernel, release), the stack in each guest; --hold\n"
     "keeps one scenario's stalled state live after its\n"
     "verdict, for inspection, until `wedge cleanup`"},
    {"verify",
     "wedge verify SCENARIO --baseline NAME=PATH... --candidate NAME=PATH... [--repeat N]\n"
     "             [--json FILE]",
     "a patch's proof: passes only when every baseline run\n"
     "reproduces the bug and every candidate run does not"},
    {"bisect",
     "wedge bisect SCENARIO --binary NAME --candidates PATH...\n"
     "             | SCENARIO --stacks RELEASE...",
     "the first candidate (oldest to newest) whose verdict flips:\n"
     "a binary, or a Debian release's whole docker stack"},
    {"snapshot", "wedge snapshot PID [--json FILE]",
     "capture the signature of a live process tree"},
    {"match", "wedge match PID [DIR]",
     "which known scenario signature a live process tree shows\n(read-only)"},
    {"cleanup", "wedge cleanup", "undo whatever an interrupted run left on the host"},
}};

constexpr std::size_t kSummaryColumn = 36;

const CommandInfo* FindCommand(std::string_view name) {
  for (const auto& info : kCommands) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every command, its synopsis and what it does, and the exit statuses: `wedge --help`.
std::string Overview() {
  std::string text = "usage:\n";
  for (const auto& info : kCommands) {
    std::vector<std::string> synopsis = Lines(info.synopsis);
    std::vector<std::string> summary = Lines(info.summary);
    for (auto& line : synopsis) line = "  " + line;
    // The summary starts on the synopsis's last line when that leaves it room.
    size_t next = 0;
    if (synopsis.back().size() + 2 <= kSummaryColumn) {
      synopsis.back() += std::string(kSummaryColumn - synopsis.back().size(), ' ') + summary[0];
      next = 1;
    }
    for (const auto& line : synopsis) text += line + "\n";
    for (; next < summary.size(); ++next) {
      text += std::string(kSummaryColumn, ' ') + summary[next] + "\n";
    }
  }
  text +=
      "\n"
      "wedge COMMAND --help describes the command's arguments; wedge --version prints the "
      "version.\n"
      "Options take their value as --opt VALUE or --opt=VALUE; after --, every argument is a\n"
      "scenario, file, PID or directory.\n"
      "\n"
      "exit status: 0 every verdict as expected, 1 an expectation failed, 2 usage or bad input,\n"
      "             3 a requirement of this host is missing, 4 internal error, 128+N stopped by "
      "signal N\n";
  return text;
}

std::string Synopsis(const CommandInfo& info) {
  std::string text = "usage: ";
  bool first = true;
  for (const auto& line : Lines(info.synopsis)) {
    text += (first ? "" : "       ") + line + "\n";
    first = false;
  }
  return text;
}

// `wedge --help` is the overview; a command's --help has its synopsis as its usage line.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (app->get_parent() == nullptr) return Overview();
    return CLI::Formatter::make_help(app, std::move(name), mode);
  }
  std::string make_usage(const CLI::App* app, std::string name) const override {
    const CommandInfo* info = FindCommand(app->get_name());
    if (info == nullptr) return CLI::Formatter::make_usage(app, std::move(name));
    return "\n" + Synopsis(*info);
  }
};

bool AllDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// A whole number from 1 to `max`, written with at most as many digits as `max`.
std::optional<int> WholeNumber(std::string_view text, int max) {
  if (!AllDigits(text) || text.size() > std::to_string(max).size()) return std::nullopt;
  const int value = std::stoi(std::string(text));
  if (value < 1 || value > max) return std::nullopt;
  return value;
}

std::optional<Shard> ShardNamed(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::optional<int> index = WholeNumber(text.substr(0, slash), 9999);
  const std::optional<int> count = WholeNumber(text.substr(slash + 1), 9999);
  if (!index || !count || *index > *count) return std::nullopt;
  return Shard{*index, *count};
}

bool IsAssignment(std::string_view text) {
  const size_t equals = text.find('=');
  return equals != std::string_view::npos && equals > 0 && equals + 1 < text.size();
}

std::optional<pid_t> PidNamed(std::string_view text) {
  if (!AllDigits(text) || text.size() > 10) return std::nullopt;
  const long long value = std::stoll(std::string(text));
  if (value < 1 || value > INT_MAX) return std::nullopt;
  return static_cast<pid_t>(value);
}

// A CLI11 check that accepts what `accepts` accepts and otherwise says what the option takes.
template <typename Accepts>
CLI::Validator Takes(std::string what, Accepts accepts) {
  return CLI::Validator(
      [what, accepts](std::string& value) -> std::string {
        return accepts(value) ? std::string() : "takes " + what + ", not '" + value + "'";
      },
      "");
}

CLI::Validator TakesWholeNumber(const std::string& what, int max) {
  return Takes(what + " from 1 to " + std::to_string(max),
               [max](const std::string& value) { return WholeNumber(value, max).has_value(); });
}

CLI::Validator TakesAssignment() {
  return Takes("NAME=PATH", [](const std::string& value) { return IsAssignment(value); });
}

// A scalar option: given more than once, the last value counts.
CLI::Option* Value(CLI::App* app, const std::string& name, std::string& into,
                   const std::string& type, const std::string& description) {
  return app->add_option(name, into, description)->type_name(type)->take_last();
}

// A repeatable option: one value per occurrence, all of them in order.
CLI::Option* Each(CLI::App* app, const std::string& name, std::vector<std::string>& into,
                  const std::string& type, const std::string& description) {
  return app->add_option(name, into, description)->type_name(type)->allow_extra_args(false);
}

CLI::Option* Positionals(CLI::App* app, const std::string& name, std::vector<std::string>& into,
                         const std::string& description) {
  return app->add_option(name, into, description)->type_name("");
}

// Where the parsed values land before they are checked as a whole and typed.
struct Values {
  std::vector<std::string> positional;
  std::string json;
  std::string junit;
  bool keep = false;
  bool hold = false;
  bool allow_untrusted = false;
  std::vector<std::string> with;
  std::string expect;
  std::string repeat;
  std::string shard;
  std::vector<std::string> kernels;
  std::vector<std::string> stacks;
  std::string guest_timeout;
  std::vector<std::string> baseline;
  std::vector<std::string> candidate;
  std::string binary;
  std::vector<std::string> candidates;
};

std::optional<std::string> Optional(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value;
}

ParseExit Error(std::string_view command, std::string_view problem) {
  return {kUsage, UsageError(command, problem)};
}

// The command named `name` from the values its options and positionals gave.
std::variant<Command, ParseExit> Finish(const std::string& name, Values& v) {
  std::vector<std::string>& positional = v.positional;
  if (name == "list") {
    if (positional.size() > 1) return Error(name, "list takes at most one directory");
    ListCommand list;
    if (!positional.empty()) list.directory = positional[0];
    return list;
  }
  if (name == "validate") {
    if (positional.empty()) return Error(name, "validate needs at least one file");
    return ValidateCommand{std::move(positional)};
  }
  if (name == "run") {
    RunCommand run;
    run.paths = std::move(positional);
    run.json = Optional(v.json);
    run.junit = Optional(v.junit);
    run.keep = v.keep;
    run.hold = v.hold;
    if (run.hold && !v.repeat.empty() && *WholeNumber(v.repeat, 9999) > 1) {
      return Error(name, "--hold keeps one run's state: it does not combine with --repeat");
    }
    if (run.hold && !v.kernels.empty()) {
      return Error(name,
                   "--hold keeps the state on this kernel: it does not combine with --kernel");
    }
    run.allow_untrusted = v.allow_untrusted;
    run.with = std::move(v.with);
    if (!v.expect.empty()) run.expect = VerdictNamed(v.expect);
    if (!v.repeat.empty()) run.repeat = *WholeNumber(v.repeat, 9999);
    if (!v.shard.empty()) run.shard = ShardNamed(v.shard);
    run.kernels = std::move(v.kernels);
    for (size_t i = 0; i < v.stacks.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (v.stacks[j] == v.stacks[i])
          return Error(name, "--stack " + v.stacks[i] + " is given twice");
      }
    }
    if (run.hold && v.stacks.size() > 1) {
      return Error(name, "--hold keeps one run's state: give at most one --stack");
    }
    run.stacks = std::move(v.stacks);
    if (!v.guest_timeout.empty()) run.guest_timeout_s = *WholeNumber(v.guest_timeout, 99999);
    return run;
  }
  if (name == "verify") {
    if (positional.size() != 1) return Error(name, "verify needs exactly one scenario file");
    if (v.baseline.empty() || v.candidate.empty()) {
      return Error(name, "verify needs --baseline NAME=PATH and --candidate NAME=PATH");
    }
    VerifyCommand verify;
    verify.scenario = positional[0];
    verify.baseline = std::move(v.baseline);
    verify.candidate = std::move(v.candidate);
    if (!v.repeat.empty()) verify.repeat = *WholeNumber(v.repeat, 999);
    verify.json = Optional(v.json);
    return verify;
  }
  if (name == "bisect") {
    if (!v.stacks.empty()) {
      if (!v.binary.empty() || !v.candidates.empty()) {
        return Error(name,
                     "--stacks bisects whole stacks: it does not combine with --binary or "
                     "--candidates");
      }
      if (positional.size() != 1 || v.stacks.size() < 2) {
        return Error(name, "bisect needs SCENARIO --stacks RELEASE RELEASE...");
      }
      for (size_t i = 0; i < v.stacks.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (v.stacks[j] == v.stacks[i]) {
            return Error(name, "--stacks names " + v.stacks[i] + " twice");
          }
        }
      }
      return BisectCommand{positional[0], "", {}, std::move(v.stacks)};
    }
    if (positional.size() != 1 || v.binary.empty() || v.candidates.size() < 2) {
      return Error(name,
                   "bisect needs SCENARIO --binary NAME --candidates PATH PATH..., or SCENARIO "
                   "--stacks RELEASE RELEASE...");
    }
    return BisectCommand{positional[0], v.binary, std::move(v.candidates), {}};
  }
  if (name == "snapshot" || name == "match") {
    const bool snapshot = name == "snapshot";
    if (snapshot && positional.size() != 1) return Error(name, "snapshot needs exactly one PID");
    if (!snapshot && (positional.empty() || positional.size() > 2)) {
      return Error(name, "match needs a PID (and optionally a DIR)");
    }
    const std::optional<pid_t> pid = PidNamed(positional[0]);
    if (!pid) return Error(name, name + ": '" + positional[0] + "' is not a pid");
    if (snapshot) return SnapshotCommand{*pid, Optional(v.json)};
    return MatchCommand{*pid, positional.size() == 2 ? Optional(positional[1]) : std::nullopt};
  }
  // cleanup, the only command left
  if (!positional.empty()) return Error(name, "cleanup takes no arguments");
  return CleanupCommand{};
}

// The table: every subcommand with its options, bound to `v`.
void DefineCommands(CLI::App& app, Values& v) {
  const std::string json_help = "write the JSON evidence bundle to FILE";
  CLI::App* list = app.add_subcommand("list", kCommands[0].summary);
  Positionals(list, "DIR", v.positional, "the scenarios to list (default: wedge's scenarios)");

  CLI::App* validate = app.add_subcommand("validate", kCommands[1].summary);
  Positionals(validate, "FILE", v.positional, "scenario files to check");

  CLI::App* run = app.add_subcommand("run", "run scenarios and compare each with its signatures");
  Positionals(run, "SCENARIO|DIR", v.positional,
              "scenario files and directories of them (default: wedge's scenarios)");
  Value(run, "--json", v.json, "FILE", json_help);
  Value(run, "--junit", v.junit, "FILE", "write JUnit XML to FILE");
  run->add_flag("--keep", v.keep, "keep each run directory (the fixtures' logs)");
  run->add_flag("--hold", v.hold,
                "after the verdict, keep the stalled state live for inspection (one\n"
                "scenario): print every role's pid, its /proc paths and the `wedge\n"
                "match` command, and wait until `wedge cleanup` (or a signal) releases\n"
                "it");
  Each(run, "--with", v.with, "NAME=PATH|RELEASE",
       "run PATH as the binary NAME (docker, dockerd, containerd, runc,\n"
       "containerd-shim-runc-v2); or that binary of a Debian release (bullseye,\n"
       "bookworm, trixie, sid) in the stack, with the stack's libraries, to pin a\n"
       "bug on one binary: --stack bookworm --with runc=bullseye")
      ->check(TakesAssignment());
  Value(run, "--expect", v.expect, "VERDICT",
        "expect VERDICT (reproduced, not-reproduced, unexplained) instead of\n"
        "what the scenario files expect, e.g. for a patched binary")
      ->check(Takes("reproduced, not-reproduced or unexplained",
                    [](const std::string& value) { return VerdictNamed(value).has_value(); }));
  Value(run, "--repeat", v.repeat, "N",
        "run each scenario N times; runs of one scenario that disagree fail")
      ->check(TakesWholeNumber("a whole number", 9999));
  Value(run, "--shard", v.shard, "K/N",
        "run the K-th of N deterministic slices of the scenarios (for CI\nfan-out)")
      ->check(Takes("K/N with 1 <= K <= N",
                    [](const std::string& value) { return ShardNamed(value).has_value(); }));
  run->add_flag("--allow-untrusted", v.allow_untrusted,
                "run scenario files that others than root and you could have\nwritten");
  Each(run, "--stack", v.stacks, "RELEASE",
       "run the private docker stack of a Debian release (host: the installed\n"
       "binaries; bullseye, bookworm, trixie, sid: that release's dockerd,\n"
       "containerd, runc and CLI, built once from Debian's archive and cached);\n"
       "several print a matrix scenario x release -> verdict")
      ->check(Takes("host, bullseye, bookworm, trixie or sid", [](const std::string& value) {
        return value == "host" || IsDebianRelease(value);
      }));
  Each(run, "--kernel", v.kernels, "host|VMLINUZ|PACKAGE",
       "run on this kernel: natively (host), or under qemu a vmlinuz with\n"
       "its modules or a Debian package name or glob such as\n"
       "linux-image-6.1.0-*-cloud-amd64 (fetched with apt, cached); several\n"
       "print a matrix scenario x kernel -> verdict");
  Value(run, "--guest-timeout", v.guest_timeout, "SECONDS",
        "kill a guest still running after SECONDS (default 180), reported as\n"
        "guest-stuck")
      ->check(TakesWholeNumber("a whole number of seconds", 99999));

  CLI::App* verify = app.add_subcommand("verify",
                                        "a patch's proof: passes only when every "
                                        "baseline run reproduces the bug\nand every "
                                        "candidate run does not");
  Positionals(verify, "SCENARIO", v.positional, "the scenario file");
  Each(verify, "--baseline", v.baseline, "NAME=PATH",
       "a binary of the baseline (repeatable), which must reproduce the bug on\n"
       "every run")
      ->check(TakesAssignment());
  Each(verify, "--candidate", v.candidate, "NAME=PATH",
       "a binary of the candidate (repeatable), which must reproduce it on no\nrun")
      ->check(TakesAssignment());
  Value(verify, "--repeat", v.repeat, "N", "runs of each side (default 3)")
      ->check(TakesWholeNumber("a whole number", 999));
  Value(verify, "--json", v.json, "FILE", json_help);

  CLI::App* bisect = app.add_subcommand("bisect", kCommands[4].summary);
  Positionals(bisect, "SCENARIO", v.positional, "the scenario file");
  Value(bisect, "--binary", v.binary, "NAME",
        "the binary the candidates replace (docker, dockerd, containerd, runc,\n"
        "containerd-shim-runc-v2)");
  bisect->add_option("--candidates", v.candidates, "the binaries to search, oldest to newest")
      ->type_name("PATH");
  bisect
      ->add_option("--stacks", v.stacks,
                   "instead of --binary and --candidates: the docker stacks to search, oldest\n"
                   "to newest (host, bullseye, bookworm, trixie, sid; each release's own\n"
                   "dockerd, containerd, runc and CLI, as --stack runs them)")
      ->type_name("RELEASE")
      ->check(Takes("host, bullseye, bookworm, trixie or sid", [](const std::string& value) {
        return value == "host" || IsDebianRelease(value);
      }));

  CLI::App* snapshot = app.add_subcommand("snapshot", kCommands[5].summary);
  Positionals(snapshot, "PID", v.positional, "the root of the tree");
  Value(snapshot, "--json", v.json, "FILE", "also write the snapshot as JSON to FILE");

  CLI::App* match = app.add_subcommand("match",
                                       "which known scenario signature a live process "
                                       "tree shows (read-only)");
  Positionals(match, "PID [DIR]", v.positional,
              "the root of the tree, then the scenarios to try (default:\nwedge's scenarios)");

  CLI::App* cleanup = app.add_subcommand("cleanup", kCommands[7].summary);
  // Taken so that any argument gets cleanup's own message.
  Positionals(cleanup, "ARGS", v.positional, "")->group("");
}

}  // namespace

std::optional<scenario::Verdict> VerdictNamed(std::string_view name) {
  for (auto verdict : {scenario::Verdict::kReproduced, scenario::Verdict::kNotReproduced,
                       scenario::Verdict::kUnexplained}) {
    if (scenario::VerdictName(verdict) == name) return verdict;
  }
  return std::nullopt;
}

std::string UsageError(std::string_view command, std::string_view problem) {
  std::string text = "wedge: " + std::string(problem) + "\n";
  const CommandInfo* info = FindCommand(command);
  if (info == nullptr) return text + Overview();
  return text + Synopsis(*info) + "wedge " + info->name + " --help describes its arguments\n";
}

std::variant<Command, ParseExit> ParseCommandLine(const std::vector<std::string>& args) {
  if (args.empty()) return Error("", "no command given");
  std::vector<std::string> words = args;
  // `wedge help [COMMAND]` is `wedge [COMMAND] --help`.
  if (words[0] == "help") {
    words.erase(words.begin());
    words.push_back("--help");
  }
  const std::string& first = words[0];
  if (!first.starts_with("-") && FindCommand(first) == nullptr) {
    return Error("", "unknown command '" + first + "'");
  }
  if (first.starts_with("-") && first != "-h" && first != "--help" && first != "--version") {
    return Error("", "unknown option " + first +
                         " before the command (a command's options "
                         "follow it)");
  }

  CLI::App app("wedge: reproduce container-stack deadlocks deterministically", "wedge");
  app.formatter(std::make_shared<HelpFormatter>());
  // Whether this wedge can be stopped by WEDGE_FAULT_STOP_AT is part of what it is.
  app.set_version_flag(
      "--version", std::string("wedge " WEDGE_VERSION "\nfault points: ") +
                       (FaultPointsCompiledIn() ? "compiled in (WEDGE_FAULT_STOP_AT)" : "none"));
  app.require_subcommand(1);
  Values values;
  DefineCommands(app, values);

  std::reverse(words.begin(), words.end());  // CLI11 takes the arguments last first
  try {
    app.parse(words);
  } catch (const CLI::CallForHelp&) {
    return ParseExit{kAllAsExpected, app.help()};
  } catch (const CLI::CallForAllHelp&) {
    return ParseExit{kAllAsExpected, app.help("", CLI::AppFormatMode::All)};
  } catch (const CLI::CallForVersion& version) {
    return ParseExit{kAllAsExpected, std::string(version.what()) + "\n"};
  } catch (const CLI::ParseError& error) {
    const std::vector<CLI::App*> parsed = app.get_subcommands();
    return Error(parsed.empty() ? "" : parsed.back()->get_name(), error.what());
  }
  return Finish(app.get_subcommands().front()->get_name(), values);
}

}  // namespace wedge::cli
