#include "wedge/vm/matrix.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "wedge/report/report.h"
#include "wedge/runner/run_suite.h"
#include "wedge/sys/process.h"
#include "wedge/vm/guest_stack.h"

namespace wedge::vm {
namespace {

std::string JsonString(const nlohmann::json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_string()
             ? object[key].get<std::string>()
             : "";
}

std::string ExpectedName(const scenario::Scenario& scenario,
                         const std::optional<scenario::Verdict>& expect, const std::string& stack) {
  return std::string(scenario::VerdictName(expect.value_or(scenario.ExpectedOn(stack))));
}

// The host column: the scenarios natively, as `wedge run` runs them, with the host check.
MatrixColumn RunOnHost(const std::vector<scenario::Scenario>& scenarios,
                       const MatrixColumnSpec& spec, const MatrixOptions& options) {
  const KernelImage& kernel = spec.kernel;
  MatrixColumn column;
  column.kernel = kernel;
  column.stack = spec.stack;
  const std::int64_t started = sys::MonotonicMillis();
  report::Report report;
  report.host = runner::CollectHostInfo(options.run);
  column.release = report.host.kernel_release;
  runner::RunOptions run_options = options.run;
  run_options.expect_override = options.expect;
  if (!spec.stack.empty()) run_options.binaries = spec.binaries;
  for (const auto& binary : runner::DescribeBinaries(scenarios, run_options.binaries)) {
    report.host.binaries.push_back(binary);
  }
  runner::SuitePlan plan;
  plan.repeat = options.repeat;
  if (options.run.progress != nullptr) {
    plan.after_run = [&](const scenario::Scenario& scenario, int, const report::RunResult& result) {
      report::PrintResult(*options.run.progress, scenario, result);
    };
  }
  runner::SuiteRun suite = runner::RunSuite(scenarios, run_options, plan);
  report.results = std::move(suite.results);
  column.leftovers = std::move(suite.leftovers);
  column.host_clean = column.leftovers.empty();
  column.report = report::ToJson(report);
  column.wall_ms = sys::MonotonicMillis() - started;
  return column;
}

MatrixColumn RunOnGuest(const std::vector<scenario::Scenario>& scenarios,
                        const MatrixColumnSpec& spec, const MatrixOptions& options) {
  const KernelImage& kernel = spec.kernel;
  MatrixColumn column;
  column.kernel = kernel;
  column.stack = spec.stack;
  column.release = kernel.release;
  const std::int64_t started = sys::MonotonicMillis();
  const runner::HostState before = runner::CaptureHostState(options.run.state_dir);
  std::ostream* progress = options.run.progress;

  GuestContents contents;
  contents.wedge_directory = options.run.fixtures_dir;
  contents.busybox = "/bin/busybox";
  if (std::filesystem::exists("/usr/bin/fusermount3")) contents.programs = {"/usr/bin/fusermount3"};
  for (const auto& scenario : scenarios) contents.scenario_files.push_back(scenario.file);
  contents.wedge_arguments = options.guest_wedge_arguments;
  contents.modules_dir = kernel.modules_dir;
  std::vector<std::string> wanted = ModulesFor(scenarios);
  GuestOptions guest_options = options.guest;
  if (UsesStack(scenarios)) {
    if (Status added = AddStack(spec.binaries, contents); !added.ok()) {
      GuestRun refused;
      refused.detail = added.error().message();
      column.guest = std::move(refused);
      column.wall_ms = sys::MonotonicMillis() - started;
      return column;
    }
    for (const auto& module : StackModules(spec.binaries)) wanted.push_back(module);
    // dockerd, containerd and their images beside wedge's own runs.
    guest_options.memory_mib = std::max(guest_options.memory_mib, 2048);
  }
  if (!wanted.empty() && kernel.modules_dir.empty() && progress != nullptr) {
    *progress << "[" << kernel.label << "] no modules directory for " << kernel.release
              << ": the guest has only what is built in\n";
  } else if (!wanted.empty()) {
    Result<std::vector<KernelModule>> modules = ModuleLoadOrder(wanted, kernel.modules_dir);
    if (modules.ok()) {
      contents.modules = std::move(*modules);
      if (progress != nullptr) {
        *progress << "[" << kernel.label << "] modules to load:";
        for (const auto& module : contents.modules) *progress << " " << module.path.string();
        *progress << (contents.modules.empty() ? " none (built in)" : "") << "\n";
      }
    } else if (progress != nullptr) {
      // The guest's wedge checks the scenario's requirements and says what is missing.
      *progress << "[" << kernel.label << "] " << modules.error().message() << " under "
                << kernel.modules_dir.string() << "; the guest runs without it\n";
    }
  }

  Result<GuestRun> run = RunInGuest(kernel, contents, guest_options);
  if (run.ok()) {
    column.guest = std::move(*run);
    column.report = column.guest->report;
    if (column.report.is_object() && column.report.contains("host")) {
      column.release = JsonString(column.report["host"]["kernel"], "release");
    }
  } else {
    GuestRun failed;
    failed.outcome = GuestOutcome::kFailed;
    failed.detail = run.error().message();
    column.guest = std::move(failed);
  }
  if (progress != nullptr && column.guest->outcome == GuestOutcome::kReported) {
    // wedge's own output in the guest: everything the console shows after /init started it.
    *progress << "[" << kernel.label << "] wedge in the guest:\n";
    std::istringstream console(column.guest->console_text);
    bool wedge_started = false;
    for (std::string line; std::getline(console, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (wedge_started) *progress << "  | " << line << "\n";
      wedge_started = wedge_started || line.find(kGuestBootedMarker) != std::string::npos;
    }
  } else if (progress != nullptr) {
    *progress << "[" << kernel.label << "] the guest's console, last lines:\n";
    for (const auto& line : column.guest->console_tail) *progress << "    " << line << "\n";
  }
  column.leftovers = runner::SettledLeftovers(before, options.run.state_dir);
  column.host_clean = column.leftovers.empty();
  column.wall_ms = sys::MonotonicMillis() - started;
  return column;
}

std::string Pad(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

}  // namespace

std::string MatrixColumn::Label() const {
  if (stack.empty()) return kernel.label;
  if (kernel.host) return stack;
  return kernel.label + "+" + stack;
}

bool Matrix::AllAsExpected() const {
  return std::all_of(cells.begin(), cells.end(),
                     [](const MatrixCell& c) { return c.as_expected; }) &&
         std::all_of(columns.begin(), columns.end(),
                     [](const MatrixColumn& c) { return c.host_clean; });
}

std::vector<MatrixCell> CellsFromReport(const std::vector<std::string>& scenarios,
                                        const std::vector<std::string>& expected,
                                        const std::string& kernel, const nlohmann::json& report,
                                        const std::string& outcome, const std::string& detail) {
  std::vector<MatrixCell> cells;
  for (size_t i = 0; i < scenarios.size(); ++i) {
    MatrixCell cell;
    cell.scenario = scenarios[i];
    cell.column = kernel;
    cell.kernel = kernel;
    cell.expected = expected[i];
    cell.verdict = outcome;
    cell.detail = detail;
    if (report.is_object() && report.contains("results") && report["results"].is_array()) {
      // Every run of the scenario (--repeat): one verdict when they all agree.
      std::map<std::string, int> verdicts;
      std::set<std::string> hashes;
      int runs = 0;
      bool all_as_expected = true;
      std::string reason;
      for (const auto& result : report["results"]) {
        if (JsonString(result, "scenario") != cell.scenario) continue;
        ++runs;
        std::string verdict = JsonString(result, "verdict");
        if (result.contains("error") && result["error"].is_string()) {
          verdict = "error";
          reason = result["error"].get<std::string>();
        } else if (reason.empty()) {
          reason = JsonString(result, "reason");
        }
        ++verdicts[verdict];
        hashes.insert(JsonString(result, "signature_hash"));
        all_as_expected =
            all_as_expected && verdict != "error" && result.value("as_expected", false);
      }
      if (runs == 0) {
        cell.verdict = "missing";
        cell.detail = "the report has no result for this scenario";
        cell.as_expected = false;
      } else if (verdicts.size() == 1 && hashes.size() == 1) {
        cell.verdict = verdicts.begin()->first;
        cell.detail = runs > 1 ? std::to_string(runs) + " runs alike: " + reason : reason;
        cell.as_expected = all_as_expected;
      } else {
        cell.verdict = "flaky";
        cell.detail = std::to_string(runs) + " runs disagree:";
        for (const auto& [verdict, count] : verdicts) {
          cell.detail += " " + verdict + " " + std::to_string(count);
        }
        cell.detail += ", " + std::to_string(hashes.size()) + " signature hashes";
        cell.as_expected = false;
      }
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

std::string RenderMatrix(const Matrix& matrix) {
  std::vector<std::string> header = {"scenario"};
  std::vector<std::string> releases = {""};
  for (const auto& column : matrix.columns) {
    header.push_back(column.Label());
    releases.push_back(column.release.empty() ? "" : "(" + column.release + ")");
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& scenario : matrix.scenarios) {
    std::vector<std::string> row = {scenario};
    for (const auto& column : matrix.columns) {
      std::string text = "?";
      for (const auto& cell : matrix.cells) {
        if (cell.scenario == scenario && cell.column == column.Label()) {
          text = cell.verdict + (cell.as_expected ? "" : " !");
        }
      }
      row.push_back(text);
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) {
    widths[i] = std::max(header[i].size(), releases[i].size());
    for (const auto& row : rows) widths[i] = std::max(widths[i], row[i].size());
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& fields) {
    std::string text;
    for (size_t i = 0; i < fields.size(); ++i) {
      text += (i + 1 == fields.size() ? fields[i] : Pad(fields[i], widths[i] + 2));
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line(header);
  line(releases);
  for (const auto& row : rows) line(row);
  for (const auto& cell : matrix.cells) {
    if (!cell.as_expected) {
      out << "! " << cell.scenario << " on " << cell.column << ": " << cell.verdict << ", expected "
          << cell.expected << (cell.detail.empty() ? "" : ": " + cell.detail) << "\n";
    }
  }
  return out.str();
}

nlohmann::json ToJson(const Matrix& matrix) {
  nlohmann::json kernels = nlohmann::json::array();
  for (const auto& column : matrix.columns) {
    nlohmann::json kernel = {
        {"label", column.kernel.label},    {"host", column.kernel.host},
        {"column", column.Label()},        {"stack", column.stack},
        {"release", column.release},       {"wall_ms", column.wall_ms},
        {"host_clean", column.host_clean}, {"host_leftovers", column.leftovers},
        {"report", column.report}};
    if (!column.kernel.host) kernel["vmlinuz"] = column.kernel.vmlinuz.string();
    if (column.guest) {
      const GuestRun& guest = *column.guest;
      kernel["guest"] = {{"outcome", GuestOutcomeName(guest.outcome)},
                         {"detail", guest.detail},
                         {"qemu_wall_ms", guest.wall_ms},
                         {"initramfs_ms", guest.initramfs_ms},
                         {"initramfs_bytes", guest.initramfs_bytes},
                         {"console_tail", guest.console_tail}};
      if (guest.console.booted_at_s) kernel["guest"]["booted_at_s"] = *guest.console.booted_at_s;
      if (guest.console.exited_at_s)
        kernel["guest"]["wedge_exited_at_s"] = *guest.console.exited_at_s;
      if (guest.console.wedge_exit) kernel["guest"]["wedge_exit"] = *guest.console.wedge_exit;
    }
    kernels.push_back(std::move(kernel));
  }
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& cell : matrix.cells) {
    cells.push_back({{"scenario", cell.scenario},
                     {"column", cell.column},
                     {"kernel", cell.kernel},
                     {"stack", cell.stack},
                     {"verdict", cell.verdict},
                     {"expected", cell.expected},
                     {"as_expected", cell.as_expected},
                     {"detail", cell.detail}});
  }
  return {{"wedge_matrix", 1},
          {"scenarios", matrix.scenarios},
          {"kernels", std::move(kernels)},
          {"cells", std::move(cells)},
          {"as_expected", matrix.AllAsExpected()}};
}

report::Report JunitReport(const Matrix& matrix, const report::HostInfo& host) {
  auto verdict_named = [](const std::string& name) -> std::optional<scenario::Verdict> {
    for (auto verdict : {scenario::Verdict::kReproduced, scenario::Verdict::kNotReproduced,
                         scenario::Verdict::kUnexplained}) {
      if (scenario::VerdictName(verdict) == name) return verdict;
    }
    return std::nullopt;
  };
  report::Report junit;
  junit.host = host;
  for (const auto& cell : matrix.cells) {
    report::RunResult result;
    result.scenario = cell.scenario + " on " + cell.column;
    result.reason = cell.detail;
    result.expected = verdict_named(cell.expected).value_or(scenario::Verdict::kReproduced);
    if (auto verdict = verdict_named(cell.verdict)) {
      result.verdict = *verdict;
    } else {
      result.error = cell.verdict + (cell.detail.empty() ? "" : ": " + cell.detail);
    }
    for (const auto& column : matrix.columns) {
      if (column.Label() != cell.column) continue;
      result.host_clean = column.host_clean;
      if (!column.report.is_object() || !column.report.contains("results")) continue;
      for (const auto& run : column.report["results"]) {
        if (JsonString(run, "scenario") != cell.scenario) continue;
        result.duration_ms += run.value("duration_ms", std::int64_t{0});
        if (result.signature_hash.empty())
          result.signature_hash = JsonString(run, "signature_hash");
      }
    }
    // A cell's verdict can be as the scenario expects while its column's host check failed,
    // or the other way round: the cell says which.
    if (!result.error && result.verdict == result.expected && !cell.as_expected) {
      result.error = "not as expected: " + cell.detail;
    }
    junit.results.push_back(std::move(result));
  }
  return junit;
}

std::vector<std::string> ModulesFor(const std::vector<scenario::Scenario>& scenarios) {
  for (const auto& scenario : scenarios) {
    for (auto requirement : scenario.requires_) {
      if (requirement == scenario::Requirement::kFuseDevice ||
          requirement == scenario::Requirement::kFusectl) {
        return {"fuse"};
      }
    }
  }
  return {};
}

Matrix RunMatrix(const std::vector<scenario::Scenario>& scenarios,
                 const std::vector<MatrixColumnSpec>& specs, const MatrixOptions& options) {
  Matrix matrix;
  for (const auto& scenario : scenarios) matrix.scenarios.push_back(scenario.name);
  for (const auto& spec : specs) {
    if (sys::Interrupted()) break;
    std::vector<std::string> expected;
    for (const auto& scenario : scenarios) {
      // A mixed stack ("bookworm+runc=bullseye") is held to its release's expectation.
      expected.push_back(
          ExpectedName(scenario, options.expect, spec.stack.empty() ? "" : spec.binaries.release));
    }
    const KernelImage& kernel = spec.kernel;
    if (options.run.progress != nullptr) {
      *options.run.progress << "== kernel " << kernel.label
                            << (kernel.host ? " (natively)" : " (guest, " + kernel.release + ")")
                            << (spec.stack.empty() ? "" : ", stack " + spec.stack) << "\n";
    }
    MatrixColumn column =
        kernel.host ? RunOnHost(scenarios, spec, options) : RunOnGuest(scenarios, spec, options);
    const std::string label = column.Label();
    for (const auto& line : column.leftovers) {
      if (options.run.progress != nullptr) {
        *options.run.progress << "[" << label << "] left behind: " << line << "\n";
      }
    }
    std::string outcome = "error";
    std::string detail;
    if (column.guest && column.guest->outcome != GuestOutcome::kReported) {
      outcome = std::string(GuestOutcomeName(column.guest->outcome));
      detail = column.guest->detail;
    }
    for (auto& cell :
         CellsFromReport(matrix.scenarios, expected, label, column.report, outcome, detail)) {
      cell.kernel = kernel.label;
      cell.stack = spec.stack;
      matrix.cells.push_back(std::move(cell));
    }
    matrix.columns.push_back(std::move(column));
  }
  // Scenario-major, in the order given.
  std::stable_sort(matrix.cells.begin(), matrix.cells.end(),
                   [&](const MatrixCell& a, const MatrixCell& b) {
                     auto index = [&](const std::string& name) {
                       return std::find(matrix.scenarios.begin(), matrix.scenarios.end(), name) -
                              matrix.scenarios.begin();
                     };
                     return index(a.scenario) < index(b.scenario);
                   });
  return matrix;
}

Matrix RunMatrix(const std::vector<scenario::Scenario>& scenarios,
                 const std::vector<KernelImage>& kernels, const MatrixOptions& options) {
  std::vector<MatrixColumnSpec> specs;
  for (const auto& kernel : kernels) specs.push_back({kernel, "", options.run.binaries});
  return RunMatrix(scenarios, specs, options);
}

}  // namespace wedge::vm
