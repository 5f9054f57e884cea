// libFuzzer target for wedge's command line (wedge::cli::ParseCommandLine). The input is an
// argument vector: its first byte picks the subcommand (or, past the list, leaves the first
// argument to the input), and the rest is split into arguments at NUL bytes. Parsing is pure, so
// the fuzzer runs anywhere; build and run it with ci/fuzz.
//
// Checked for every input: no crash and no exception; a refusal is a ParseExit with status 2
// (usage) and a non-empty message that is UTF-8 whenever the arguments are; status 0 only with
// a --help, -h, --version or `help` argument; never any other status (4 would say wedge broke);
// and a parsed command respects the ranges its header documents.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/base/overloaded.h"
#include "wedge/cli/command_line.h"
#include "wedge/scenario/json_document.h"

namespace {

using namespace wedge::cli;

constexpr std::string_view kCommandWords[] = {"list",   "validate", "run",   "verify",
                                              "bisect", "snapshot", "match", "cleanup",
                                              "help",   "--help",   "-h",    "--version"};
constexpr std::size_t kCommandWordCount = sizeof(kCommandWords) / sizeof(kCommandWords[0]);

[[noreturn]] void Broken(const std::string& what, const std::vector<std::string>& args) {
  std::fprintf(stderr, "cli_fuzzer: %s; arguments:", what.c_str());
  for (const auto& arg : args) std::fprintf(stderr, " [%s]", arg.c_str());
  std::fprintf(stderr, "\n");
  std::abort();
}

bool IsUtf8(std::string_view text) { return !wedge::scenario::FirstInvalidUtf8(text); }

// True when some argument may ask for help or the version: the only reasons for status 0.
bool AsksForHelpOrVersion(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "help") return true;
  for (const std::string& arg : args) {
    if (arg.starts_with("--help") || arg.starts_with("--version")) return true;
    // A short flag, possibly combined with others ("-kh").
    if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-' && arg.find('h') != std::string::npos) {
      return true;
    }
  }
  return false;
}

void CheckCommand(const Command& command, const std::vector<std::string>& args) {
  auto check = [&](bool holds, const char* what) {
    if (!holds) Broken(std::string("parsed command breaks its contract: ") + what, args);
  };
  std::visit(wedge::Overloaded{
                 [&](const ValidateCommand& validate) {
                   check(!validate.files.empty(), "validate with no file");
                 },
                 [&](const RunCommand& run) {
                   check(run.repeat >= 1 && run.repeat <= 9999, "run --repeat out of 1..9999");
                   check(run.guest_timeout_s >= 1 && run.guest_timeout_s <= 99999,
                         "run --guest-timeout out of 1..99999");
                   if (run.shard) {
                     check(run.shard->index >= 1 && run.shard->index <= run.shard->count,
                           "run --shard K/N without 1 <= K <= N");
                   }
                 },
                 [&](const VerifyCommand& verify) {
                   check(!verify.baseline.empty(), "verify with no --baseline");
                   check(!verify.candidate.empty(), "verify with no --candidate");
                   check(verify.repeat >= 1 && verify.repeat <= 999,
                         "verify --repeat out of 1..999");
                 },
                 [&](const BisectCommand& bisect) {
                   check(bisect.candidates.size() >= 2, "bisect with fewer than two candidates");
                 },
                 [](const auto&) {},
             },
             command);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::vector<std::string> args;
  const std::size_t pick = data[0];
  if (pick < kCommandWordCount * 16) args.emplace_back(kCommandWords[pick % kCommandWordCount]);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  while (!rest.empty() || args.empty()) {
    const std::size_t nul = rest.find('\0');
    args.emplace_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }

  std::variant<Command, ParseExit> parsed = ParseCommandLine(args);
  if (auto* command = std::get_if<Command>(&parsed)) {
    CheckCommand(*command, args);
    return 0;
  }
  const ParseExit& exit = std::get<ParseExit>(parsed);
  if (exit.text.empty()) Broken("ParseExit with no text", args);
  bool utf8_args = true;
  for (const std::string& arg : args) utf8_args = utf8_args && IsUtf8(arg);
  if (utf8_args && !IsUtf8(exit.text)) Broken("ParseExit text is not UTF-8", args);
  if (exit.status == kAllAsExpected) {
    if (!AsksForHelpOrVersion(args)) Broken("status 0 without --help or --version", args);
  } else if (exit.status != kUsage) {
    Broken("ParseExit status " + std::to_string(exit.status) + " (only 0 or 2 are allowed)", args);
  }
  return 0;
}
