// Shared by the scenario tests: running the real wedge binary, and the check that every test
// makes after a run, that the host is as it was before (with the tests' own host snapshot).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host_snapshot.h"
#include "wedge/probe/task.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"

namespace wedge::testing {

struct WedgeRun {
  int exit_code = -1;
  std::string output;
};

inline WedgeRun RunWedge(const std::vector<std::string>& args) {
  boost::process::ipstream out;
  boost::process::child child(WEDGE_BINARY, boost::process::args(args),
                              (boost::process::std_out & boost::process::std_err) > out);
  WedgeRun run;
  for (std::string line; std::getline(out, line);) run.output += line + "\n";
  child.wait();
  run.exit_code = child.exit_code();
  return run;
}

// Whether the wedge under test has fault points, as `wedge --version` says: a build configured
// with -DWEDGE_FAULT_POINTS=ON (./ci/test's). Tests that stop wedge at one skip without.
inline bool WedgeHasFaultPoints() {
  static const bool has =
      RunWedge({"--version"}).output.find("\nfault points: compiled in") != std::string::npos;
  return has;
}
inline constexpr char kNeedsFaultPoints[] =
    "wedge has no fault points (configure with -DWEDGE_FAULT_POINTS=ON, as ./ci/test does)";

inline nlohmann::json ReadJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

// The host now, as the tests' own check sees it (tests/support/host_snapshot.h): read from /proc
// and /sys directly, never through wedge's CaptureHostState, whose verdict it checks.
inline HostSnapshot HostNow() { return CaptureHostSnapshot(StateDirectory()); }

// `settle`: how long a difference may take to go away (see SettledDiff).
inline void ExpectHostUnchanged(const HostSnapshot& before,
                                std::chrono::milliseconds settle = std::chrono::milliseconds(500)) {
  std::vector<std::string> leftovers = SettledDiff(before, StateDirectory(), settle);
  EXPECT_TRUE(leftovers.empty()) << "left behind: " << ::testing::PrintToString(leftovers);
}

// A process of a run, as /proc/PID/stat shows it.
struct RunProcess {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  std::string ToString() const {
    return std::to_string(pid) + "(" + comm + " " + std::string(1, state) + ")";
  }
};

// Processes of the run `run_id`: their command line names it (daemons, shims, runc, strace's
// output path) or they sit in one of its cgroups (runc init, containers).
inline std::vector<RunProcess> FindRunProcesses(const std::string& run_id,
                                                bool zombies_only = false) {
  std::vector<RunProcess> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    Result<std::string> cmdline = sys::ReadFile(entry.path() / "cmdline");
    Result<std::string> cgroup = sys::ReadFile(entry.path() / "cgroup");
    Result<std::string> stat_text = sys::ReadFile(entry.path() / "stat");
    if (!stat_text.ok()) continue;
    Result<probe::TaskStat> stat = probe::ParseStat(*stat_text);
    if (!stat.ok() || (zombies_only && stat->state != 'Z')) continue;
    if ((cmdline.ok() && cmdline->find(run_id) != std::string::npos) ||
        (cgroup.ok() && cgroup->find(run_id) != std::string::npos)) {
      found.push_back({static_cast<pid_t>(std::stol(pid)), stat->comm, stat->state});
    }
  }
  return found;
}

// The same, each as "PID(comm state)".
inline std::vector<std::string> RunProcesses(const std::string& run_id, bool zombies_only = false) {
  std::vector<std::string> found;
  for (const RunProcess& process : FindRunProcesses(run_id, zombies_only)) {
    found.push_back(process.ToString());
  }
  return found;
}

// A scenario test as root: the host as it was before the test, and a JSON report file.
class ScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "scenario tests run as root";
    before_ = HostNow();
    report_ = std::filesystem::temp_directory_path() /
              ("wedge-scenario-test-" + std::to_string(::getpid()) + ".json");
  }
  void TearDown() override { std::filesystem::remove(report_); }

  // `wedge run ARGS... --json REPORT`, which must exit 0 with one result; returns that result.
  nlohmann::json Run(std::vector<std::string> args) {
    args.insert(args.begin(), "run");
    args.push_back("--json");
    args.push_back(report_.string());
    WedgeRun run = RunWedge(args);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    nlohmann::json report = ReadJson(report_);
    EXPECT_EQ(report["results"].size(), 1u);
    return report["results"][0];
  }

  HostSnapshot before_;
  std::filesystem::path report_;
};

}  // namespace wedge::testing
