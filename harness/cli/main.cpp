// wedge: reproduce container-stack deadlocks deterministically and prove when a patch removes
// them. See README.md and docs/scenario-format.md.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/report/report.h"
#include "wedge/runner/run_suite.h"
#include "wedge/runner/runner.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/live_match.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"
#include "wedge/vm/kernel.h"
#include "wedge/vm/matrix.h"

namespace {

namespace fs = std::filesystem;
using wedge::scenario::Scenario;

// Exit codes (docs/cli.md).
constexpr int kAllAsExpected = 0;
constexpr int kExpectationFailed = 1;
constexpr int kUsage = 2;
constexpr int kRequirementMissing = 3;
constexpr int kInternalError = 4;

constexpr const char* kUsageText = R"(usage:
  wedge list [DIR]                  scenarios, one line each, and whether this host can run them
  wedge validate FILE...            check scenario files; errors name the file and JSON pointer
  wedge run [SCENARIO|DIR]... [--json FILE] [--junit FILE] [--keep] [--with NAME=PATH]...
            [--expect VERDICT] [--repeat N] [--shard K/N] [--allow-untrusted]
            [--kernel host|VMLINUZ|PACKAGE]... [--guest-timeout SECONDS]
                                    run scenarios (default: the scenarios directory);
                                    --with picks a binary (docker, dockerd, containerd, runc,
                                    containerd-shim-runc-v2); --expect overrides the verdict
                                    the scenario files expect (e.g. for a patched binary);
                                    files others can write are refused unless
                                    --allow-untrusted; --repeat runs each N times and
                                    fails if the runs disagree; --shard K/N runs the K-th
                                    of N deterministic slices (for CI fan-out);
                                    --kernel runs them on another kernel under qemu (a
                                    vmlinuz with its modules, or a Debian package name or
                                    glob such as linux-image-6.1.0-*-cloud-amd64, fetched
                                    with apt and cached), or natively ("host"); several
                                    --kernel print a matrix scenario x kernel -> verdict;
                                    a guest still running after --guest-timeout (default
                                    180) is killed and reported as guest-stuck
  wedge verify SCENARIO --baseline NAME=PATH... --candidate NAME=PATH... [--repeat N]
               [--json FILE]        a patch's proof: passes only when every baseline run
                                    reproduces the bug and every candidate run does not
  wedge bisect SCENARIO --binary NAME --candidates PATH...
                                    the first candidate (oldest to newest) whose verdict flips
  wedge snapshot PID [--json FILE]  capture the signature of a live process tree
  wedge match PID [DIR]             which known scenario signature a live process tree shows
                                    (read-only)
  wedge cleanup                     undo whatever an interrupted run left on the host

exit status: 0 every verdict as expected, 1 an expectation failed, 2 usage or bad input,
             3 a requirement of this host is missing, 4 internal error, 128+N stopped by signal N
)";

int Usage(const std::string& problem) {
  std::cerr << "wedge: " << problem << "\n" << kUsageText;
  return kUsage;
}

std::string ErrnoText() { return std::strerror(errno); }

fs::path DefaultScenarioDirectory() {
  if (fs::is_directory("scenarios")) return "scenarios";
  return WEDGE_SCENARIO_DIR;
}

fs::path FixturesDirectory() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : self.parent_path();
}

// Loads every scenario named by `args` (files or directories), or reports the first error.
std::optional<std::vector<Scenario>> LoadAll(const std::vector<std::string>& args) {
  std::vector<fs::path> files;
  for (const auto& arg : args) {
    if (!fs::exists(arg)) {
      std::cerr << "wedge: " << arg << ": no such file or directory\n";
      return std::nullopt;
    }
    for (auto& file : wedge::scenario::ExpandScenarioPaths(arg)) files.push_back(file);
  }
  std::vector<Scenario> scenarios;
  bool ok = true;
  for (const auto& file : files) {
    auto loaded = wedge::scenario::LoadScenarioFile(file);
    if (auto* error = std::get_if<wedge::scenario::LoadError>(&loaded)) {
      std::cerr << error->ToString() << "\n";
      ok = false;
    } else {
      scenarios.push_back(std::get<Scenario>(std::move(loaded)));
    }
  }
  if (!ok) return std::nullopt;
  return scenarios;
}

// Scenario files make wedge run commands as root, so, as sudo does with its policy files, a
// file that someone other than root (or the user running wedge) could have written is refused:
// the file must be a regular file owned by root or by us and writable by nobody else, and its
// directory must not be writable by others unless it is sticky (like /tmp).
std::optional<std::string> UntrustedReason(const fs::path& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return "cannot be examined (" + ErrnoText() + ")";
  if (!S_ISREG(st.st_mode)) return "is not a regular file (symbolic links are not followed)";
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", not by root or by you";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return "is writable by its group or by others";
  fs::path directory = fs::absolute(file).parent_path();
  struct stat dir {};
  if (::stat(directory.c_str(), &dir) != 0) return "is in a directory that cannot be examined";
  if ((dir.st_mode & S_IWOTH) != 0 && (dir.st_mode & S_ISVTX) == 0) {
    return "is in " + directory.string() + ", which others can write to";
  }
  if (dir.st_uid != 0 && dir.st_uid != ::geteuid() && (dir.st_mode & S_IWUSR) != 0) {
    return "is in " + directory.string() + ", which uid " + std::to_string(dir.st_uid) +
           " can write to";
  }
  return std::nullopt;
}

int List(const std::vector<std::string>& args) {
  if (args.size() > 1) return Usage("list takes at most one directory");
  std::vector<std::string> dirs = {args.empty() ? DefaultScenarioDirectory().string() : args[0]};
  auto scenarios = LoadAll(dirs);
  if (!scenarios) return kUsage;
  for (const auto& scenario : *scenarios) {
    std::vector<std::string> unmet = wedge::runner::UnmetRequirements(scenario);
    std::cout << scenario.name << "  expect " << wedge::scenario::VerdictName(scenario.expected)
              << "  " << (unmet.empty() ? "runnable" : "cannot run here: " + unmet.front())
              << "\n    " << scenario.summary << "\n";
  }
  return kAllAsExpected;
}

int Validate(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("validate needs at least one file");
  int status = kAllAsExpected;
  for (const auto& arg : args) {
    auto loaded = wedge::scenario::LoadScenarioFile(arg);
    if (auto* error = std::get_if<wedge::scenario::LoadError>(&loaded)) {
      std::cerr << error->ToString() << "\n";
      status = kUsage;
    } else {
      std::cout << arg << ": ok (" << std::get<Scenario>(loaded).name << ")\n";
    }
  }
  return status;
}

struct Flags {
  std::vector<std::string> positional;
  std::optional<std::string> json;
  std::optional<std::string> junit;
  bool keep = false;
  bool allow_untrusted = false;
  int repeat = 1;
  std::optional<std::pair<int, int>> shard;  // K of N, 1-based
  std::vector<std::string> with;
  std::optional<std::string> expect;
  std::vector<std::string> kernels;  // --kernel, in order
  int guest_timeout_s = 180;
};

std::optional<Flags> ParseFlags(const std::vector<std::string>& args, bool allow_junit_keep) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--json" || arg == "--junit" || arg == "--with" || arg == "--expect" ||
        arg == "--repeat" || arg == "--shard" || arg == "--kernel" || arg == "--guest-timeout") {
      if (i + 1 >= args.size()) {
        Usage(arg + " needs a value");
        return std::nullopt;
      }
      if (arg != "--json" && !allow_junit_keep) {
        Usage(arg + " is only for run");
        return std::nullopt;
      }
      const std::string& value = args[++i];
      if (arg == "--json") flags.json = value;
      if (arg == "--junit") flags.junit = value;
      if (arg == "--with") flags.with.push_back(value);
      if (arg == "--expect") flags.expect = value;
      if (arg == "--kernel") flags.kernels.push_back(value);
      if (arg == "--guest-timeout") {
        if (value.empty() || value.size() > 5 ||
            value.find_first_not_of("0123456789") != std::string::npos || std::stoi(value) < 1) {
          Usage("--guest-timeout takes a whole number of seconds from 1 to 99999, not '" + value +
                "'");
          return std::nullopt;
        }
        flags.guest_timeout_s = std::stoi(value);
      }
      if (arg == "--shard") {
        size_t slash = value.find('/');
        auto number = [](const std::string& text) {
          return !text.empty() && text.size() <= 4 &&
                         text.find_first_not_of("0123456789") == std::string::npos
                     ? std::stoi(text)
                     : 0;
        };
        int k = slash == std::string::npos ? 0 : number(value.substr(0, slash));
        int n = slash == std::string::npos ? 0 : number(value.substr(slash + 1));
        if (k < 1 || n < 1 || k > n) {
          Usage("--shard takes K/N with 1 <= K <= N, not '" + value + "'");
          return std::nullopt;
        }
        flags.shard = std::make_pair(k, n);
        continue;
      }
      if (arg == "--repeat") {
        if (value.empty() || value.size() > 4 ||
            value.find_first_not_of("0123456789") != std::string::npos || std::stoi(value) < 1) {
          Usage("--repeat takes a whole number from 1 to 9999, not '" + value + "'");
          return std::nullopt;
        }
        flags.repeat = std::stoi(value);
      }
    } else if (arg == "--keep" && allow_junit_keep) {
      flags.keep = true;
    } else if (arg == "--allow-untrusted" && allow_junit_keep) {
      flags.allow_untrusted = true;
    } else if (arg.rfind("--", 0) == 0) {
      Usage("unknown option " + arg);
      return std::nullopt;
    } else {
      flags.positional.push_back(arg);
    }
  }
  return flags;
}

// Installs the SIGINT/SIGTERM handlers, takes the run lock (saying so if another run holds
// it) and undoes whatever a killed run left behind. Returns the lock, or the exit status.
std::variant<wedge::sys::RunLock, int> BeginRun(const fs::path& state_dir) {
  wedge::sys::InstallInterruptHandlers();
  auto lock = wedge::sys::RunLock::Acquire(
      state_dir, [](const std::string& notice) { std::cerr << "wedge: " << notice << "\n"; });
  if (!lock.ok()) {
    std::cerr << "wedge: " << lock.error().message() << "\n";
    return wedge::sys::Interrupted() ? 128 + wedge::sys::Interrupted() : kInternalError;
  }
  auto cleaned = wedge::runner::Cleanup(state_dir);
  if (!cleaned.ok()) {
    std::cerr << "wedge: cleanup of an earlier run failed: " << cleaned.error().message() << "\n";
    return kInternalError;
  }
  for (const auto& line : *cleaned) std::cout << "cleanup of an earlier run: " << line << "\n";
  return std::move(lock).value();
}

// Loads the one scenario `verify` or `bisect` names and checks that it may run here: trusted
// and every requirement met. Returns the scenario, or the exit status.
std::variant<Scenario, int> LoadRunnableScenario(const std::string& file) {
  auto scenarios = LoadAll({file});
  if (!scenarios) return kUsage;
  if (scenarios->size() != 1) return Usage(file + " names more than one scenario");
  Scenario scenario = std::move(scenarios->front());
  if (auto reason = UntrustedReason(scenario.file)) {
    std::cerr << "wedge: refusing " << scenario.file.string() << ": it " << *reason << "\n";
    return kUsage;
  }
  for (const auto& unmet : wedge::runner::UnmetRequirements(scenario)) {
    std::cerr << "wedge: " << scenario.name << " cannot run on this host: " << unmet << "\n";
    return kRequirementMissing;
  }
  return scenario;
}

// `wedge run --kernel A --kernel B ...`: the scenarios on each kernel (natively for "host", in a
// qemu guest for the others) and the matrix scenario x kernel -> verdict. With one guest kernel
// --json writes that guest's report; with several, the matrix with every kernel's report.
int RunKernelMatrix(const Flags& flags, const std::vector<Scenario>& scenarios,
                    const std::vector<wedge::vm::KernelSpec>& specs,
                    const wedge::runner::RunOptions& options) {
  if (!flags.with.empty()) {
    return Usage("--with does not combine with --kernel: guests run no docker stack");
  }
  const bool any_guest = std::any_of(specs.begin(), specs.end(), [](const auto& spec) {
    return spec.source != wedge::vm::KernelSource::kHost;
  });
  if (any_guest) {
    bool unsupported = false;
    for (const auto& scenario : scenarios) {
      if (auto reason = wedge::vm::GuestUnsupportedReason(scenario)) {
        std::cerr << "wedge: " << scenario.name << " cannot run in a guest: " << *reason << "\n";
        unsupported = true;
      }
    }
    if (unsupported) return kRequirementMissing;
    if (!fs::exists("/bin/busybox")) {
      std::cerr << "wedge: --kernel needs /bin/busybox for the guest's shell and tools; apt-get "
                   "install busybox-static\n";
      return kRequirementMissing;
    }
    auto qemu = wedge::sys::RunCommand("qemu-system-x86_64", {"--version"});
    if (!qemu.ok() || qemu->exit_code != 0) {
      std::cerr << "wedge: --kernel needs qemu-system-x86_64 ("
                << (qemu.ok() ? qemu->output : qemu.error().message())
                << "); apt-get install qemu-system-x86\n";
      return kRequirementMissing;
    }
  }
  // Every kernel is resolved (and fetched into the cache) before anything on the host changes.
  std::vector<wedge::vm::KernelImage> kernels;
  for (const auto& spec : specs) {
    auto kernel = wedge::vm::ResolveKernel(spec, wedge::vm::DefaultKernelCache(), &std::cout);
    if (!kernel.ok()) {
      std::cerr << "wedge: " << kernel.error().message() << "\n";
      return kUsage;
    }
    if (!kernel->host) {
      std::cout << "kernel " << spec.text << ": " << kernel->vmlinuz.string() << " (release "
                << kernel->release << ", modules "
                << (kernel->modules_dir.empty() ? std::string("none found")
                                                : kernel->modules_dir.string())
                << ")\n";
    }
    const std::string& label = kernel->label;
    if (std::any_of(kernels.begin(), kernels.end(),
                    [&](const auto& earlier) { return earlier.label == label; })) {
      return Usage("--kernel " + spec.text + " names " + label + ", as an earlier --kernel does");
    }
    kernels.push_back(std::move(*kernel));
  }

  auto lock = BeginRun(options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;

  wedge::vm::MatrixOptions matrix_options;
  matrix_options.run = options;
  matrix_options.expect = options.expect_override;
  matrix_options.guest.state_dir = options.state_dir;
  matrix_options.guest.deadline = std::chrono::seconds(flags.guest_timeout_s);
  matrix_options.guest.keep_run_directory = flags.keep;
  matrix_options.guest.progress = &std::cout;
  if (options.expect_override) {
    matrix_options.guest_wedge_arguments = {
        "--expect", std::string(wedge::scenario::VerdictName(*options.expect_override))};
  }
  matrix_options.repeat = flags.repeat;
  if (flags.repeat > 1) {
    matrix_options.guest_wedge_arguments.push_back("--repeat");
    matrix_options.guest_wedge_arguments.push_back(std::to_string(flags.repeat));
  }
  const wedge::vm::Matrix matrix = wedge::vm::RunMatrix(scenarios, kernels, matrix_options);

  std::cout << "\n" << wedge::vm::RenderMatrix(matrix);
  if (flags.json) {
    const bool one_guest = matrix.columns.size() == 1 && !matrix.columns[0].kernel.host &&
                           matrix.columns[0].report.is_object();
    const nlohmann::json json = one_guest ? matrix.columns[0].report : wedge::vm::ToJson(matrix);
    if (auto written = wedge::sys::WriteFileAtomically(*flags.json, json.dump(2) + "\n");
        !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (flags.junit) {
    const wedge::report::Report junit =
        wedge::vm::JunitReport(matrix, wedge::runner::CollectHostInfo(options));
    if (auto written = wedge::report::WriteJunit(junit, *flags.junit); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (int signo = wedge::sys::Interrupted(); signo != 0) return 128 + signo;
  return matrix.AllAsExpected() ? kAllAsExpected : kExpectationFailed;
}

int Run(const std::vector<std::string>& args) {
  auto flags = ParseFlags(args, true);
  if (!flags) return kUsage;
  if (flags->positional.empty()) flags->positional.push_back(DefaultScenarioDirectory().string());
  // Every file is validated before anything on the host changes.
  auto scenarios = LoadAll(flags->positional);
  if (!scenarios) return kUsage;
  if (scenarios->empty()) return Usage("no scenario files found");
  if (flags->shard) {
    const size_t all = scenarios->size();
    std::vector<Scenario> mine =
        wedge::runner::ShardOf(std::move(*scenarios), flags->shard->first, flags->shard->second);
    std::cout << "shard " << flags->shard->first << "/" << flags->shard->second << ": "
              << mine.size() << " of " << all << " scenarios\n";
    *scenarios = std::move(mine);
    if (scenarios->empty()) {
      std::cout << "0 passed, 0 failed\n";
      return kAllAsExpected;
    }
  }
  if (!flags->allow_untrusted) {
    bool untrusted = false;
    for (const auto& scenario : *scenarios) {
      if (auto reason = UntrustedReason(scenario.file)) {
        std::cerr << "wedge: refusing " << scenario.file.string() << ": it " << *reason
                  << "; scenario files run commands as root (--allow-untrusted overrides)\n";
        untrusted = true;
      }
    }
    if (untrusted) return kUsage;
  }
  std::vector<wedge::vm::KernelSpec> kernels;
  for (const auto& text : flags->kernels) {
    auto spec = wedge::vm::ParseKernelSpec(text);
    if (!spec.ok()) return Usage(spec.error().message());
    kernels.push_back(*spec);
  }
  // `--kernel host` alone is a plain run on this kernel.
  const bool matrix = !kernels.empty() &&
                      !(kernels.size() == 1 && kernels[0].source == wedge::vm::KernelSource::kHost);
  const bool on_host = !matrix || std::any_of(kernels.begin(), kernels.end(), [](const auto& k) {
    return k.source == wedge::vm::KernelSource::kHost;
  });
  bool unmet_any = false;
  for (const auto& scenario : *scenarios) {
    if (!on_host) break;
    for (const auto& unmet : wedge::runner::UnmetRequirements(scenario)) {
      std::cerr << "wedge: " << scenario.name << " cannot run on this host: " << unmet << "\n";
      unmet_any = true;
    }
  }
  if (unmet_any) return kRequirementMissing;

  wedge::runner::RunOptions options;
  options.state_dir = wedge::sys::DefaultStateDirectory();
  options.fixtures_dir = FixturesDirectory();
  options.keep_run_directory = flags->keep;
  options.progress = &std::cout;
  for (const auto& assignment : flags->with) {
    if (auto status = options.binaries.Override(assignment); !status.ok()) {
      return Usage("--with " + assignment + ": " + status.error().message());
    }
  }
  if (flags->expect) {
    for (auto verdict :
         {wedge::scenario::Verdict::kReproduced, wedge::scenario::Verdict::kNotReproduced,
          wedge::scenario::Verdict::kUnexplained}) {
      if (wedge::scenario::VerdictName(verdict) == *flags->expect)
        options.expect_override = verdict;
    }
    if (!options.expect_override) {
      return Usage("--expect takes reproduced, not-reproduced or unexplained, not '" +
                   *flags->expect + "'");
    }
  }

  if (matrix) return RunKernelMatrix(*flags, *scenarios, kernels, options);

  auto lock = BeginRun(options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;

  wedge::report::Report report;
  report.host = wedge::runner::CollectHostInfo(options);
  const bool uses_stack = std::any_of(scenarios->begin(), scenarios->end(),
                                      [](const Scenario& s) { return s.stack.required; });
  if (uses_stack) {
    for (const auto& [name, version] : options.binaries.Versions()) {
      report.host.binaries.push_back({name, options.binaries.Path(name).string(), version});
    }
  }
  std::cout << "wedge " << report.host.wedge_version << " on Linux " << report.host.kernel_release
            << " (" << report.host.machine << ", cgroup " << report.host.cgroup_mode << ")\n";
  wedge::runner::SuitePlan plan;
  plan.repeat = flags->repeat;
  if (flags->repeat > 1) {
    plan.before_run = [&](const Scenario& scenario, int run) {
      std::cout << "run " << run << " of " << flags->repeat << " of " << scenario.name << "\n";
    };
  }
  plan.after_run = [](const Scenario& scenario, int, const wedge::report::RunResult& result) {
    wedge::report::PrintResult(std::cout, scenario, result);
  };
  const wedge::runner::SuiteRun suite = wedge::runner::RunSuite(*scenarios, options, plan);
  for (const auto& line : suite.teardown) std::cout << "suite teardown: " << line << "\n";
  for (const auto& line : suite.leftovers) {
    std::cout << "suite teardown left behind: " << line << "\n";
  }
  report.results = suite.results;
  int status = kAllAsExpected;
  if (flags->json) {
    if (auto written = wedge::report::WriteJson(report, *flags->json); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      status = kInternalError;
    }
  }
  if (flags->junit) {
    if (auto written = wedge::report::WriteJunit(report, *flags->junit); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      status = kInternalError;
    }
  }
  const std::vector<wedge::report::Determinism> determinism =
      wedge::report::SummarizeDeterminism(report);
  if (flags->repeat > 1) wedge::report::PrintDeterminism(std::cout, determinism);
  wedge::report::PrintSummary(std::cout, report);
  if (int signo = wedge::sys::Interrupted(); signo != 0) {
    std::cout << "stopped by " << wedge::probe::SignalName(signo)
              << " after recovering and tearing down the scenario in progress\n";
    return 128 + signo;
  }
  if (status != kAllAsExpected) return status;
  switch (wedge::runner::JudgeSuite(suite)) {
    case wedge::runner::SuiteFailure::kNone:
      return kAllAsExpected;
    case wedge::runner::SuiteFailure::kInternalError:
      return kInternalError;
    case wedge::runner::SuiteFailure::kHostNotClean:
    case wedge::runner::SuiteFailure::kNotAsExpected:
      return kExpectationFailed;
    case wedge::runner::SuiteFailure::kFlaky:
      for (const auto& d : determinism) {
        if (!d.flaky()) continue;
        std::cout << "FLAKY: " << d.scenario
                  << " gave different verdicts or signatures on repeated runs\n";
        break;
      }
      return kExpectationFailed;
  }
  return kInternalError;
}

// One side of `wedge verify`: the scenario run `repeat` times with `overrides`.
struct VerifySide {
  std::string name;  // "baseline", "candidate"
  std::vector<std::string> overrides;
  wedge::scenario::Verdict wanted = wedge::scenario::Verdict::kReproduced;
  std::vector<wedge::report::RunResult> runs;
  std::vector<std::string> leftovers;  // what the side's suite left on the host
};

int Verify(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  VerifySide baseline{"baseline", {}, wedge::scenario::Verdict::kReproduced, {}, {}};
  VerifySide candidate{"candidate", {}, wedge::scenario::Verdict::kNotReproduced, {}, {}};
  int repeat = 3;
  std::optional<std::string> json;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--baseline" || arg == "--candidate" || arg == "--repeat" || arg == "--json") {
      if (i + 1 >= args.size()) return Usage(arg + " needs a value");
      const std::string& value = args[++i];
      if (arg == "--baseline") baseline.overrides.push_back(value);
      if (arg == "--candidate") candidate.overrides.push_back(value);
      if (arg == "--json") json = value;
      if (arg == "--repeat") {
        if (value.empty() || value.size() > 3 ||
            value.find_first_not_of("0123456789") != std::string::npos || std::stoi(value) < 1) {
          return Usage("--repeat takes a whole number from 1 to 999, not '" + value + "'");
        }
        repeat = std::stoi(value);
      }
    } else if (arg.rfind("--", 0) == 0) {
      return Usage("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 1) return Usage("verify needs exactly one scenario file");
  if (baseline.overrides.empty() || candidate.overrides.empty()) {
    return Usage("verify needs --baseline NAME=PATH and --candidate NAME=PATH");
  }
  auto loaded = LoadRunnableScenario(positional[0]);
  if (const int* status = std::get_if<int>(&loaded)) return *status;
  const Scenario& scenario = std::get<Scenario>(loaded);
  wedge::runner::RunOptions base_options;
  base_options.state_dir = wedge::sys::DefaultStateDirectory();
  base_options.fixtures_dir = FixturesDirectory();
  auto lock = BeginRun(base_options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  wedge::report::Report report;
  report.host = wedge::runner::CollectHostInfo(base_options);
  for (VerifySide* side : {&baseline, &candidate}) {
    wedge::runner::RunOptions options = base_options;
    for (const auto& assignment : side->overrides) {
      if (auto status = options.binaries.Override(assignment); !status.ok()) {
        return Usage("--" + side->name + " " + assignment + ": " + status.error().message());
      }
    }
    options.expect_override = side->wanted;
    std::ostringstream quiet;
    options.progress = &quiet;
    wedge::runner::SuitePlan plan;
    plan.repeat = repeat;
    plan.after_run = [&](const Scenario&, int run, const wedge::report::RunResult& result) {
      std::cout << side->name << " run " << run << ": "
                << wedge::scenario::VerdictName(result.verdict) << " "
                << (result.signature_hash.empty() ? "(no hash)" : result.signature_hash) << " "
                << result.duration_ms << " ms" << (result.host_clean ? "" : " HOST NOT CLEAN")
                << "\n";
    };
    wedge::runner::SuiteRun suite = wedge::runner::RunSuite({&scenario, 1}, options, plan);
    side->runs = std::move(suite.results);
    side->leftovers = std::move(suite.leftovers);
    for (const auto& line : side->leftovers) {
      std::cout << side->name << " teardown left behind: " << line << "\n";
    }
    for (auto& result : side->runs) report.results.push_back(result);
  }
  if (json) {
    if (auto written = wedge::report::WriteJson(report, *json); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (int signo = wedge::sys::Interrupted(); signo != 0) return 128 + signo;

  bool passed = true;
  for (const VerifySide* side : {&baseline, &candidate}) {
    for (size_t i = 0; i < side->runs.size(); ++i) {
      const auto& result = side->runs[i];
      if (result.AsExpected()) continue;
      passed = false;
      std::cout << "\n"
                << side->name << " run " << (i + 1) << " was not "
                << wedge::scenario::VerdictName(side->wanted) << ":\n";
      wedge::report::PrintResult(std::cout, scenario, result);
    }
  }
  auto list = [](const std::vector<std::string>& overrides) {
    std::string text;
    for (const auto& o : overrides) text += (text.empty() ? "" : " ") + o;
    return text;
  };
  const bool host_clean = baseline.leftovers.empty() && candidate.leftovers.empty();
  std::string outcome;
  if (!passed) {
    outcome =
        "FAIL: not every baseline run reproduced it, or not every candidate run was free of it";
  } else if (!host_clean) {
    outcome = "FAIL: every run was as wanted, but a side's teardown left the host not clean";
  } else {
    outcome = "PASS: the baseline (" + list(baseline.overrides) + ") reproduced it " +
              std::to_string(repeat) + "/" + std::to_string(repeat) + " and the candidate (" +
              list(candidate.overrides) + ") did not, " + std::to_string(repeat) + "/" +
              std::to_string(repeat);
  }
  std::cout << "\nverify " << scenario.name << ": " << outcome << "\n";
  passed = passed && host_clean;
  return passed ? kAllAsExpected : kExpectationFailed;
}

// `wedge bisect SCENARIO --binary NAME --candidates PATH...`: the first candidate (ordered
// oldest to newest) whose verdict differs from the oldest's, by binary search. A run that is
// neither reproduced nor not-reproduced is inconclusive: the search stops there and says so
// rather than guessing which side it belongs to.
int Bisect(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  std::string binary;
  std::vector<std::string> candidates;
  bool reading_candidates = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--binary") {
      if (i + 1 >= args.size()) return Usage("--binary needs a name");
      binary = args[++i];
      reading_candidates = false;
    } else if (arg == "--candidates") {
      reading_candidates = true;
    } else if (arg.rfind("--", 0) == 0) {
      return Usage("unknown option " + arg);
    } else if (reading_candidates) {
      candidates.push_back(arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 1 || binary.empty() || candidates.size() < 2) {
    return Usage("bisect needs SCENARIO --binary NAME --candidates PATH PATH...");
  }
  auto loaded = LoadRunnableScenario(positional[0]);
  if (const int* status = std::get_if<int>(&loaded)) return *status;
  const Scenario& scenario = std::get<Scenario>(loaded);
  wedge::runner::RunOptions base;
  base.state_dir = wedge::sys::DefaultStateDirectory();
  base.fixtures_dir = FixturesDirectory();
  for (const auto& path : candidates) {
    if (auto status = wedge::runner::RunOptions(base).binaries.Override(binary + "=" + path);
        !status.ok()) {
      return Usage("--candidates " + path + ": " + status.error().message());
    }
  }
  auto lock = BeginRun(base.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  std::map<size_t, wedge::scenario::Verdict> verdicts;
  std::vector<std::string> unclean;  // candidates after whose run the host was not clean
  auto run = [&](size_t index) {
    if (auto known = verdicts.find(index); known != verdicts.end()) return known->second;
    wedge::runner::RunOptions options = base;
    (void)options.binaries.Override(binary + "=" + candidates[index]);
    std::ostringstream quiet;
    options.progress = &quiet;
    const wedge::runner::SuiteRun suite = wedge::runner::RunSuite({&scenario, 1}, options, {});
    if (suite.results.empty()) return wedge::scenario::Verdict::kUnexplained;  // interrupted
    const wedge::report::RunResult& result = suite.results.front();
    std::cout << "  " << candidates[index] << ": " << wedge::scenario::VerdictName(result.verdict)
              << (result.host_clean ? "" : " (host NOT clean)") << "\n";
    for (const auto& line : suite.leftovers) {
      std::cout << "  " << candidates[index] << " teardown left behind: " << line << "\n";
    }
    if (!result.host_clean || !suite.host_clean()) unclean.push_back(candidates[index]);
    verdicts[index] = result.verdict;
    return result.verdict;
  };
  auto search = [&]() -> int {
    std::cout << "bisect " << scenario.name << " over " << candidates.size() << " " << binary
              << " binaries\n";
    size_t low = 0;
    size_t high = candidates.size() - 1;
    const auto first = run(low);
    const auto last = run(high);
    if (wedge::sys::Interrupted()) return 128 + wedge::sys::Interrupted();
    if (first == wedge::scenario::Verdict::kUnexplained ||
        last == wedge::scenario::Verdict::kUnexplained) {
      std::cout << "inconclusive: the oldest or the newest candidate gave unexplained\n";
      return kExpectationFailed;
    }
    if (first == last) {
      std::cout << "no flip: every end gives " << wedge::scenario::VerdictName(first) << "\n";
      return kAllAsExpected;
    }
    while (high - low > 1) {
      size_t middle = low + (high - low) / 2;
      auto verdict = run(middle);
      if (wedge::sys::Interrupted()) return 128 + wedge::sys::Interrupted();
      if (verdict == wedge::scenario::Verdict::kUnexplained) {
        std::cout << "inconclusive: " << candidates[middle] << " gave unexplained; the flip lies "
                  << "after " << candidates[low] << " and at or before " << candidates[high]
                  << "\n";
        return kExpectationFailed;
      }
      (verdict == first ? low : high) = middle;
    }
    std::cout << "first flip: candidate " << (high + 1) << " (" << candidates[high] << ") gives "
              << wedge::scenario::VerdictName(last) << "; candidate " << (low + 1) << " ("
              << candidates[low] << ") gives " << wedge::scenario::VerdictName(first) << "\n";
    return kAllAsExpected;
  };
  const int status = search();
  if (status > kExpectationFailed || unclean.empty()) return status;
  // A run that left the host changed may have changed the verdicts of the runs after it.
  std::cout << "the host was not clean after the run of";
  for (const auto& path : unclean) std::cout << " " << path;
  std::cout << "\n";
  return kExpectationFailed;
}

int Snapshot(const std::vector<std::string>& args) {
  auto flags = ParseFlags(args, false);
  if (!flags) return kUsage;
  if (flags->positional.size() != 1) return Usage("snapshot needs exactly one PID");
  const std::string& text = flags->positional[0];
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return Usage("snapshot: '" + text + "' is not a pid");
  }
  pid_t pid = static_cast<pid_t>(std::stol(text));
  if (!fs::exists("/proc/" + text)) {
    std::cerr << "wedge: snapshot: no process " << pid << "\n";
    return kUsage;
  }
  wedge::probe::TreeSnapshot snapshot =
      wedge::probe::ReadProcesses(wedge::probe::ListDescendants(pid), /*peek_pipes=*/true);
  wedge::report::PrintSnapshot(std::cout, snapshot);
  if (flags->json) {
    nlohmann::json json = wedge::report::ToJson(snapshot);
    std::ofstream out(*flags->json);
    out << json.dump(2) << "\n";
    if (!out) {
      std::cerr << "wedge: could not write " << *flags->json << "\n";
      return kInternalError;
    }
  }
  return kAllAsExpected;
}

// `wedge match PID`: which known scenario signature a live process tree shows, and how closely
// (signature::MatchLiveTree). Read-only: it reads /proc and nothing else.
int Match(const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) return Usage("match needs a PID (and optionally a DIR)");
  const std::string& text = args[0];
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return Usage("match: '" + text + "' is not a pid");
  }
  pid_t pid = static_cast<pid_t>(std::stol(text));
  if (!fs::exists("/proc/" + text)) {
    std::cerr << "wedge: match: no process " << pid << "\n";
    return kUsage;
  }
  auto scenarios = LoadAll({args.size() == 2 ? args[1] : DefaultScenarioDirectory().string()});
  if (!scenarios) return kUsage;
  const wedge::probe::TreeSnapshot tree =
      wedge::probe::ReadProcesses(wedge::probe::ListDescendants(pid));
  std::cout << "captured " << tree.processes.size() << " process(es) under pid " << pid << "\n";

  std::vector<wedge::signature::KnownSignature> known;
  for (const Scenario& scenario : *scenarios) {
    known.push_back(
        {scenario.name, scenario.bug, scenario.expected == wedge::scenario::Verdict::kReproduced});
  }
  bool any = false;
  for (const auto& candidate : wedge::signature::MatchLiveTree(tree, known)) {
    const Scenario& scenario = (*scenarios)[candidate.candidate];
    const bool full = candidate.complete();
    any = any || full;
    std::cout << (full ? "MATCH " : "      ") << scenario.name << ": " << candidate.satisfied
              << " of " << candidate.total << " roles as the bug signature describes\n";
    if (candidate.satisfied == 0) continue;
    std::cout << "    " << scenario.summary << "\n";
    for (const auto& [role, task] : candidate.match.bound) {
      std::cout << "    " << role << ": pid " << task.pid << " tid " << task.tid << " " << task.comm
                << " state " << task.state << "\n";
    }
    for (const auto& mismatch : candidate.match.mismatches) {
      std::cout << "    differs: " << mismatch.role << " " << mismatch.field << ": expected "
                << mismatch.expected << ", observed " << mismatch.observed << "\n";
    }
    if (full) {
      for (const auto& reference : scenario.references) {
        std::cout << "    see " << reference.kind << " " << reference.id
                  << (reference.note.empty() ? "" : ": " + reference.note) << "\n";
      }
    }
  }
  if (!any) std::cout << "no known scenario's bug signature matches this tree completely\n";
  return kAllAsExpected;
}

int Cleanup(const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("cleanup takes no arguments");
  if (::geteuid() != 0) {
    std::cerr << "wedge: cleanup must run as root\n";
    return kRequirementMissing;
  }
  auto cleaned = wedge::runner::Cleanup(wedge::sys::DefaultStateDirectory());
  if (!cleaned.ok()) {
    std::cerr << "wedge: cleanup: " << cleaned.error().message() << "\n";
    return kInternalError;
  }
  for (const auto& line : *cleaned) std::cout << line << "\n";
  if (cleaned->empty()) std::cout << "nothing to clean up\n";
  return kAllAsExpected;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage("no command given");
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsageText;
    return kAllAsExpected;
  }
  try {
    if (command == "list") return List(args);
    if (command == "validate") return Validate(args);
    if (command == "run") return Run(args);
    if (command == "snapshot") return Snapshot(args);
    if (command == "verify") return Verify(args);
    if (command == "match") return Match(args);
    if (command == "bisect") return Bisect(args);
    if (command == "cleanup") return Cleanup(args);
  } catch (const std::exception& e) {
    std::cerr << "wedge: internal error: " << e.what() << "\n";
    return kInternalError;
  }
  return Usage("unknown command '" + command + "'");
}
