// `wedge run SCENARIO... --kernel A --kernel B ...` and `--stack R1 --stack R2 ...`: every
// scenario in every column, a column being a kernel (the host's natively, the others in a
// guest each) and a docker stack (the host's binaries, or a Debian release's root), as a
// matrix scenario x column -> verdict.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "wedge/report/report.h"
#include "wedge/runner/runner.h"
#include "wedge/scenario/scenario.h"
#include "wedge/vm/guest.h"
#include "wedge/vm/kernel.h"

namespace wedge::vm {

// One scenario in one column.
struct MatrixCell {
  std::string scenario;
  std::string column;   // the column's label (MatrixColumn::Label)
  std::string kernel;   // the kernel's label
  std::string stack;    // the stack's label (MatrixColumnSpec::stack); empty: the host's binaries
  std::string verdict;  // reproduced, not-reproduced, unexplained, guest-stuck, guest-failed,
                        // error, missing (the guest's report lacks the scenario), flaky
                        // (repeated runs disagree)
  std::string expected;
  bool as_expected = false;
  std::string detail;  // the run's reason, or what went wrong with the guest
};

// One kernel's and stack's column.
struct MatrixColumn {
  KernelImage kernel;
  std::string
      stack;  // the stack ("bullseye", "bookworm+runc=bullseye"); empty: the host's binaries
  std::string release;            // uname -r where the scenarios ran
  nlohmann::json report;          // the wedge report of that kernel's run
  std::optional<GuestRun> guest;  // unset for the host
  std::int64_t wall_ms = 0;       // the whole column, boot included
  bool host_clean = true;         // the host check after the column
  std::vector<std::string> leftovers;

  // The kernel's label alone; the release alone on the host's kernel; else "KERNEL+RELEASE".
  std::string Label() const;
};

struct Matrix {
  std::vector<std::string> scenarios;
  std::vector<MatrixColumn> columns;
  std::vector<MatrixCell> cells;  // scenario-major
  bool AllAsExpected() const;
};

// The cells of one column (labelled `kernel`) from the wedge report it produced (`report` null: the
// guest gave none, and every cell says `outcome` with `detail`). Repeated runs of a scenario make
// one cell: their verdict when every run gave it with one signature hash, else "flaky".
std::vector<MatrixCell> CellsFromReport(const std::vector<std::string>& scenarios,
                                        const std::vector<std::string>& expected,
                                        const std::string& kernel, const nlohmann::json& report,
                                        const std::string& outcome, const std::string& detail);

// The matrix as a table: a header row of kernel labels (and releases), one row per scenario;
// a cell not as expected is marked with '!'.
std::string RenderMatrix(const Matrix& matrix);
// {"wedge_matrix": 1, "scenarios", "kernels": [{label, release, wall_ms, boot_s, ...,
// "report"}], "cells"}.
nlohmann::json ToJson(const Matrix& matrix);
// The matrix as a report for JUnit XML (report::WriteJunit): one test case per cell, named
// "SCENARIO on KERNEL"; a cell without a verdict (guest-stuck, guest-failed, flaky, missing)
// is an error. `host` describes the machine the matrix ran on.
report::Report JunitReport(const Matrix& matrix, const report::HostInfo& host);

struct MatrixOptions {
  runner::RunOptions run;  // for the host column, and state_dir for the guests
  GuestOptions guest;      // for the other columns
  std::vector<std::string> guest_wedge_arguments;  // passed to wedge run in each guest
  std::optional<scenario::Verdict> expect;
  int repeat = 1;  // runs of each scenario on the host (guests get --repeat in their arguments)
};

// The kernel modules the scenarios need in a guest ("fuse" for FUSE scenarios).
std::vector<std::string> ModulesFor(const std::vector<scenario::Scenario>& scenarios);

// One column to run: a kernel, and the stack's binaries (a release's, for `stack`).
struct MatrixColumnSpec {
  KernelImage kernel;
  // The stack's label (stack::Binaries::Label, or "host"); empty: options.run.binaries.
  std::string stack;
  stack::Binaries binaries;
};

// Runs every scenario in every column, in order, printing progress to options.run.progress.
// Each guest column boots once and runs all the scenarios, with the column's stack in the guest
// when they drive docker (vm/guest_stack.h): a (kernel, release) pair is one boot.
Matrix RunMatrix(const std::vector<scenario::Scenario>& scenarios,
                 const std::vector<MatrixColumnSpec>& columns, const MatrixOptions& options);
// The kernels alone, each with options.run.binaries.
Matrix RunMatrix(const std::vector<scenario::Scenario>& scenarios,
                 const std::vector<KernelImage>& kernels, const MatrixOptions& options);

}  // namespace wedge::vm
