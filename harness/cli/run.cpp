// `wedge run`: scenarios on this kernel, or on several under qemu as a kernel matrix.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <variant>

#include "cli_support.h"
#include "commands.h"
#include "stacks.h"
#include "wedge/probe/signals.h"
#include "wedge/report/report.h"
#include "wedge/runner/run_context.h"
#include "wedge/runner/run_suite.h"
#include "wedge/runner/runner.h"
#include "wedge/stack/release_root.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"
#include "wedge/vm/kernel.h"
#include "wedge/vm/matrix.h"

namespace wedge::cli {
namespace {

namespace fs = std::filesystem;
using scenario::Scenario;

// `wedge run --kernel A --kernel B ...`: the scenarios on each kernel (natively for "host", in a
// qemu guest for the others) and the matrix scenario x kernel -> verdict. With one guest kernel
// --json writes that guest's report; with several, the matrix with every kernel's report.
int RunKernelMatrix(const RunCommand& command, const std::vector<Scenario>& scenarios,
                    const std::vector<vm::KernelSpec>& specs,
                    const std::vector<ComponentChoice>& components,
                    const runner::RunOptions& options) {
  const bool any_guest = std::any_of(specs.begin(), specs.end(), [](const auto& spec) {
    return spec.source != vm::KernelSource::kHost;
  });
  if (!command.with.empty() && any_guest) {
    return Usage("run",
                 "--with does not combine with a guest --kernel: a guest runs the host's or a "
                 "release's stack as it is (mix components on this kernel)");
  }
  if (any_guest) {
    if (!fs::exists("/bin/busybox")) {
      std::cerr << "wedge: --kernel needs /bin/busybox for the guest's shell and tools; apt-get "
                   "install busybox-static\n";
      return kRequirementMissing;
    }
    auto qemu = sys::RunCommand("qemu-system-x86_64", {"--version"});
    if (!qemu.ok() || qemu->exit_code != 0) {
      std::cerr << "wedge: --kernel needs qemu-system-x86_64 ("
                << (qemu.ok() ? qemu->output : qemu.error().message())
                << "); apt-get install qemu-system-x86\n";
      return kRequirementMissing;
    }
  }
  // Every kernel is resolved (and fetched into the cache) before anything on the host changes.
  std::vector<vm::KernelImage> kernels;
  for (const auto& spec : specs) {
    auto kernel = vm::ResolveKernel(spec, vm::DefaultKernelCache(), &std::cout);
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
      return Usage("run",
                   "--kernel " + spec.text + " names " + label + ", as an earlier --kernel does");
    }
    kernels.push_back(std::move(*kernel));
  }

  auto lock = BeginRun(options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;

  // The columns: each kernel with each stack, kernel-major.
  const std::vector<std::string> stacks =
      command.stacks.empty() ? std::vector<std::string>{"host"} : command.stacks;
  auto binaries = StackBinaries("run", stacks, components, options);
  if (const int* status = std::get_if<int>(&binaries)) return *status;
  std::vector<vm::MatrixColumnSpec> columns;
  for (const auto& kernel : kernels) {
    for (size_t i = 0; i < stacks.size(); ++i) {
      const stack::Binaries& chosen = std::get<std::vector<stack::Binaries>>(binaries)[i];
      const std::string label = chosen.Label().empty() ? stacks[i] : chosen.Label();
      const bool own_binaries = label != "host";
      columns.push_back({kernel, command.stacks.size() > 1 || own_binaries ? label : "", chosen});
    }
  }

  vm::MatrixOptions matrix_options;
  matrix_options.run = options;
  matrix_options.expect = options.expect_override;
  matrix_options.guest.state_dir = options.state_dir;
  matrix_options.guest.deadline = std::chrono::seconds(command.guest_timeout_s);
  matrix_options.guest.keep_run_directory = command.keep;
  matrix_options.guest.progress = &std::cout;
  if (options.expect_override) {
    matrix_options.guest_wedge_arguments = {
        "--expect", std::string(scenario::VerdictName(*options.expect_override))};
  }
  matrix_options.repeat = command.repeat;
  if (command.repeat > 1) {
    matrix_options.guest_wedge_arguments.push_back("--repeat");
    matrix_options.guest_wedge_arguments.push_back(std::to_string(command.repeat));
  }
  const vm::Matrix matrix = vm::RunMatrix(scenarios, columns, matrix_options);

  std::cout << "\n" << vm::RenderMatrix(matrix);
  if (command.json) {
    const bool one_guest = matrix.columns.size() == 1 && !matrix.columns[0].kernel.host &&
                           matrix.columns[0].report.is_object();
    const nlohmann::json json = one_guest ? matrix.columns[0].report : vm::ToJson(matrix);
    if (auto written = sys::WriteFileAtomically(*command.json, json.dump(2) + "\n");
        !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (command.junit) {
    const report::Report junit = vm::JunitReport(matrix, runner::CollectHostInfo(options));
    if (auto written = report::WriteJunit(junit, *command.junit); !written.ok()) {
      std::cerr << "wedge: " << written.error().message() << "\n";
      return kInternalError;
    }
  }
  if (int signo = sys::Interrupted(); signo != 0) return 128 + signo;
  return matrix.AllAsExpected() ? kAllAsExpected : kExpectationFailed;
}

// The scenarios on this kernel, in one suite; the report, the summary and the exit status.
int RunOnThisKernel(const RunCommand& command, const std::vector<Scenario>& scenarios,
                    const std::vector<ComponentChoice>& components, runner::RunOptions options) {
  auto lock = BeginRun(options.state_dir);
  if (const int* status = std::get_if<int>(&lock)) return *status;
  const std::vector<std::string> stacks =
      command.stacks.empty() ? std::vector<std::string>{"host"} : command.stacks;
  if (stacks[0] != "host" || !components.empty()) {
    auto binaries = StackBinaries("run", stacks, components, options);
    if (const int* status = std::get_if<int>(&binaries)) return *status;
    options.binaries = std::get<std::vector<stack::Binaries>>(binaries)[0];
  }

  report::Report report;
  report.host = runner::CollectHostInfo(options);
  for (auto& binary : runner::DescribeBinaries(scenarios, options.binaries)) {
    report.host.binaries.push_back(std::move(binary));
  }
  std::cout << "wedge " << report.host.wedge_version << " on Linux " << report.host.kernel_release
            << " (" << report.host.machine << ", cgroup " << report.host.cgroup_mode << ")\n";
  runner::SuitePlan plan;
  plan.repeat = command.repeat;
  if (command.repeat > 1) {
    plan.before_run = [&](const Scenario& scenario, int run) {
      std::cout << "run " << run << " of " << command.repeat << " of " << scenario.name << "\n";
    };
  }
  plan.after_run = [](const Scenario& scenario, int, const report::RunResult& result) {
    report::PrintResult(std::cout, scenario, result);
  };
  const runner::SuiteRun suite = runner::RunSuite(scenarios, options, plan);
  for (const auto& line : suite.teardown) std::cout << "suite teardown: " << line << "\n";
  for (const auto& line : suite.leftovers) {
    std::cout << "suite teardown left behind: " << line << "\n";
  }
  report.results = suite.results;

  bool written = true;
  if (command.json) {
    if (auto status = report::WriteJson(report, *command.json); !status.ok()) {
      std::cerr << "wedge: " << status.error().message() << "\n";
      written = false;
    }
  }
  if (command.junit) {
    if (auto status = report::WriteJunit(report, *command.junit); !status.ok()) {
      std::cerr << "wedge: " << status.error().message() << "\n";
      written = false;
    }
  }
  const std::vector<report::Determinism> determinism = report::SummarizeDeterminism(report);
  if (command.repeat > 1) report::PrintDeterminism(std::cout, determinism);
  report::PrintSummary(std::cout, report);
  if (int signo = sys::Interrupted(); signo != 0) {
    std::cout << "stopped by " << probe::SignalName(signo)
              << " after recovering and tearing down the scenario in progress\n";
    return 128 + signo;
  }
  if (!written) return kInternalError;
  switch (runner::JudgeSuite(suite)) {
    case runner::SuiteFailure::kNone:
      return kAllAsExpected;
    case runner::SuiteFailure::kInternalError:
      return kInternalError;
    case runner::SuiteFailure::kHostNotClean:
    case runner::SuiteFailure::kNotAsExpected:
      return kExpectationFailed;
    case runner::SuiteFailure::kFlaky:
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

}  // namespace

int Execute(const RunCommand& command) {
  // Every file is validated before anything on the host changes.
  auto scenarios =
      LoadAll(command.paths.empty() ? std::vector<std::string>{DefaultScenarioDirectory().string()}
                                    : command.paths);
  if (!scenarios) return kUsage;
  if (scenarios->empty()) return Usage("run", "no scenario files found");
  if (command.shard) {
    const size_t all = scenarios->size();
    *scenarios = runner::ShardOf(std::move(*scenarios), command.shard->index, command.shard->count);
    std::cout << "shard " << command.shard->index << "/" << command.shard->count << ": "
              << scenarios->size() << " of " << all << " scenarios\n";
    if (scenarios->empty()) {
      std::cout << "0 passed, 0 failed\n";
      return kAllAsExpected;
    }
  }
  if (command.hold && scenarios->size() != 1) {
    return Usage("run", "--hold keeps one scenario's state: give one scenario file, not " +
                            std::to_string(scenarios->size()) + " scenarios");
  }
  if (!command.allow_untrusted) {
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
  std::vector<vm::KernelSpec> kernels;
  for (const auto& text : command.kernels) {
    auto spec = vm::ParseKernelSpec(text);
    if (!spec.ok()) return Usage("run", spec.error().message());
    kernels.push_back(*spec);
  }
  // `--kernel host` alone is a plain run on this kernel.
  const bool matrix =
      !kernels.empty() && !(kernels.size() == 1 && kernels[0].source == vm::KernelSource::kHost);
  const bool on_host = !matrix || std::any_of(kernels.begin(), kernels.end(), [](const auto& k) {
    return k.source == vm::KernelSource::kHost;
  });
  bool unmet_any = false;
  for (const auto& scenario : *scenarios) {
    if (!on_host) break;
    for (const auto& unmet : runner::UnmetRequirements(scenario)) {
      std::cerr << "wedge: " << scenario.name << " cannot run on this host: " << unmet << "\n";
      unmet_any = true;
    }
  }
  if (unmet_any) return kRequirementMissing;

  runner::RunOptions options;
  options.state_dir = sys::DefaultStateDirectory();
  options.fixtures_dir = FixturesDirectory();
  options.keep_run_directory = command.keep;
  options.hold = command.hold;
  options.progress = &std::cout;
  std::vector<std::string> with_paths;
  const auto components = SplitComponents("run", command.with, with_paths);
  if (!components) return kUsage;
  for (const auto& assignment : with_paths) {
    if (auto status = options.binaries.Override(assignment); !status.ok()) {
      return Usage("run", status.error().message());  // it names the --with
    }
  }
  options.expect_override = command.expect;

  const bool release_stack = std::any_of(command.stacks.begin(), command.stacks.end(),
                                         [](const std::string& s) { return s != "host"; });
  if (release_stack && !with_paths.empty()) {
    return Usage("run",
                 "--with does not combine with --stack RELEASE: a release's daemons see only its "
                 "root (--with " +
                     with_paths.front() + "; --with NAME=RELEASE takes a binary from another one)");
  }
  if (matrix || command.stacks.size() > 1) {
    if (kernels.empty()) kernels.push_back({vm::KernelSource::kHost, "host", "", ""});
    return RunKernelMatrix(command, *scenarios, kernels, *components, options);
  }
  return RunOnThisKernel(command, *scenarios, *components, options);
}

}  // namespace wedge::cli
