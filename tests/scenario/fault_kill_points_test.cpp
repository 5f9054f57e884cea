// Fault tests of wedge itself (issue 6, items 1, 2 and 5): wedge is killed with SIGKILL at many
// points of every scenario, by step (stopped at a phase with WEDGE_FAULT_STOP_AT) and by time,
// and the host must be identical to before once `wedge cleanup` has run; SIGTERM must stop a run
// cleanly without any cleanup; and a second run waits for the first without touching the host.
// They run the real wedge binary as root against the real kernel.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "scenario_test_support.h"

namespace wedge {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using testing::RunWedge;
using testing::WedgeRun;

const fs::path kScenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The state letter of /proc/PID/stat, or '\0' once the process is gone (or reaped).
char ProcessState(pid_t pid) {
  std::string text = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return '\0';
  return text[close + 2];
}

// Whether a process belongs to wedge: in one of its cgroups (wedge/... or wedge-docker-...) in
// some hierarchy. A process wedge left behind always is: its cgroups cannot be removed while it
// lives, and wedge puts everything it starts in them. Other software on the host (another
// docker, say) creating processes and network namespaces meanwhile is not wedge's doing.
bool InWedgeCgroup(const std::string& pid) {
  std::istringstream lines(ReadText("/proc/" + pid + "/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    size_t path = line.find(':', line.find(':') + 1);
    if (path != std::string::npos && line.compare(path + 1, 6, "/wedge") == 0) return true;
  }
  return false;
}

// Network namespaces: those named in /run/netns, and those any process is in (by inode).
struct NetnsState {
  std::set<std::string> named;
  std::set<std::string> in_use;  // "net:[INODE]"
  std::set<std::string> wedges;  // those a process in a wedge cgroup is in
};

NetnsState NetnsNow() {
  NetnsState state;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    state.named.insert(entry.path().filename().string());
  }
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code inner;
    fs::path link = fs::read_symlink(entry.path() / "ns" / "net", inner);
    if (inner) continue;
    state.in_use.insert(link.string());
    if (InWedgeCgroup(pid)) state.wedges.insert(link.string());
  }
  return state;
}

std::vector<std::string> NetnsLeftovers(const NetnsState& before, const NetnsState& after) {
  std::vector<std::string> lines;
  for (const auto& name : after.named) {
    if (!before.named.contains(name)) lines.push_back("named network namespace " + name);
  }
  for (const auto& ns : after.in_use) {
    if (!before.in_use.contains(ns) && after.wedges.contains(ns)) {
      lines.push_back("network namespace " + ns + " in use by wedge's processes");
    }
  }
  return lines;
}

// A wedge run whose output goes to a file, so that nothing it leaves running can hold a pipe
// of ours open.
class WedgeProcess {
 public:
  WedgeProcess(const std::vector<std::string>& args, const std::string& stop_at,
               const fs::path& output)
      : output_(output) {
    std::error_code ec;
    fs::remove(output, ec);
    fs::remove(output.string() + ".err", ec);
    bp::environment env = boost::this_process::environment();
    if (!stop_at.empty()) env["WEDGE_FAULT_STOP_AT"] = stop_at;
    child_ = bp::child(WEDGE_BINARY, bp::args(args), env, bp::std_out > output.string(),
                       bp::std_err > output.string() + ".err", bp::std_in < bp::null);
  }
  ~WedgeProcess() {
    if (child_.valid() && child_.running()) {
      ::kill(child_.id(), SIGKILL);
      child_.wait();
    }
    std::error_code ec;
    fs::remove(output_.string() + ".err", ec);
  }

  pid_t pid() const { return child_.id(); }

  // Waits until wedge has stopped itself at its fault point (true), or has exited (false).
  bool WaitUntilStopped(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      char state = ProcessState(pid());
      if (state == 'T') return true;
      if (state == '\0' || state == 'Z') return false;
      ::usleep(1000);
    }
    return false;
  }

  // Waits for wedge to end; returns its exit code, 128+N for signal N.
  int Wait() {
    child_.wait();
    int status = child_.native_exit_code();
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  }

  std::string Output() const { return ReadText(output_) + ReadText(output_.string() + ".err"); }

 private:
  fs::path output_;
  bp::child child_;
};

struct ScenarioPoints {
  std::string file;
  std::vector<std::string> phases;  // every phase a run of it goes through, in order
  std::vector<int> kill_after_ms;   // SIGKILL this long after start
};

// The phases each kind of scenario goes through (runner.cpp's PhaseClock): process scenarios
// (FUSE) stall, are captured and recovered; command scenarios on the shared stack start it
// first; a fresh stack is part of setup. A phase a run does not reach fails the test.
const std::vector<ScenarioPoints>& AllScenarioPoints() {
  static const std::vector<ScenarioPoints> points = {
      {"fuse-flush-pidns-teardown.json",
       {"setup", "trigger", "stall", "capture", "match", "recover", "teardown"},
       {0, 3, 6, 10, 15, 20, 30, 45, 60, 80}},
      {"fuse-flush-pidns-teardown-no-holder.json",
       {"setup", "trigger", "stall", "capture", "match", "recover", "teardown"},
       {0, 3, 6, 10, 15, 20, 30, 45, 60, 80}},
      {"seccomp-resources-sigsys.json",
       {"stack", "setup", "trigger", "match", "teardown"},
       {0, 10, 40, 120, 250, 400, 600, 900}},
      {"seccomp-resources-sigsys-nofile-equal.json",
       {"stack", "setup", "trigger", "match", "teardown"},
       {0, 10, 40, 120, 250, 400, 600, 900}},
      {"containerd-socket-flap.json", {"setup", "trigger", "match", "teardown"}, {200, 1500, 4000}},
      // A watched command: the stall phase is the watch; a returned exec is never captured.
      {"runc-exec-pipe-full.json",
       {"setup", "trigger", "stall", "match", "recover", "teardown"},
       {150, 500}},
      // The hang itself: SIGKILL while strace holds clone3 and while runc init blocks on its pipe.
      {"runc-exec-pipe-full-injected.json",
       {"setup", "trigger", "stall", "capture", "match", "recover", "teardown"},
       {400, 1500, 3000, 4000}},
      {"containerd-socket-flap-sigkill.json",
       {"setup", "trigger", "match", "teardown"},
       {200, 1500, 4000}},
  };
  return points;
}

class FaultKillPoints : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "fault tests run as root";
    if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
    // Whatever an earlier crashed test left, so that the baseline is a clean host.
    RunWedge({"cleanup"});
    before_ = testing::HostNow();
    netns_before_ = NetnsNow();
    output_ = fs::temp_directory_path() / ("wedge-fault-test-" + std::to_string(::getpid()));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove(output_, ec);
  }

  // Everything that differs from the baseline: wedge's own host state and network namespaces.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> lines = runner::DescribeLeftovers(before_, testing::HostNow());
    std::erase_if(lines, [](const std::string& line) {
      // "stack process PID(comm)": only wedge's own count.
      if (line.rfind("stack process ", 0) != 0) return false;
      std::string pid = line.substr(14, line.find('(') - 14);
      return !InWedgeCgroup(pid);
    });
    for (auto& line : NetnsLeftovers(netns_before_, NetnsNow())) lines.push_back(line);
    return lines;
  }

  // Leftovers, allowing a moment for the kernel to finish what the undo started (a killed
  // task leaving D state, a network namespace being freed after its last process).
  std::vector<std::string> SettledLeftovers() {
    std::vector<std::string> lines;
    for (int i = 0; i < 100; ++i) {
      lines = Leftovers();
      if (lines.empty()) break;
      ::usleep(20000);
    }
    return lines;
  }

  // After a SIGKILL: `wedge cleanup` must bring the host back to the baseline.
  void CleanupAndCheck(const std::string& point, const std::string& run_output) {
    WedgeRun cleanup = RunWedge({"cleanup"});
    EXPECT_EQ(cleanup.exit_code, 0) << point << "\n" << cleanup.output;
    std::vector<std::string> leftovers = SettledLeftovers();
    if (!leftovers.empty()) {
      ++leaks_;
      ADD_FAILURE() << point << " left behind: " << ::testing::PrintToString(leftovers)
                    << "\nrun output:\n"
                    << run_output << "\ncleanup output:\n"
                    << cleanup.output;
    }
  }

  void KillAtPhase(const std::string& file, const std::string& phase) {
    const std::string point = file + " SIGKILL at phase " + phase;
    WedgeProcess wedge({"run", (kScenarios / file).string()}, phase, output_);
    const bool stopped = wedge.WaitUntilStopped(std::chrono::seconds(60));
    EXPECT_TRUE(stopped) << point << ": wedge never reached the phase\n" << wedge.Output();
    ::kill(wedge.pid(), SIGKILL);
    EXPECT_EQ(wedge.Wait(), 128 + SIGKILL) << point;
    if (stopped) {
      EXPECT_NE(wedge.Output().find("fault point: stopped before " + phase), std::string::npos)
          << point << "\n"
          << wedge.Output();
    }
    ++kill_points_;
    CleanupAndCheck(point, wedge.Output());
  }

  // Returns whether wedge was still running when it was killed.
  bool KillAfter(const std::string& file, int ms) {
    const std::string point = file + " SIGKILL after " + std::to_string(ms) + " ms";
    WedgeProcess wedge({"run", (kScenarios / file).string()}, "", output_);
    if (ms > 0) ::usleep(static_cast<useconds_t>(ms) * 1000);
    ::kill(wedge.pid(), SIGKILL);
    const bool killed = wedge.Wait() == 128 + SIGKILL;
    if (killed) ++kill_points_;
    CleanupAndCheck(point, wedge.Output());
    return killed;
  }

  runner::HostState before_;
  NetnsState netns_before_;
  fs::path output_;
  int kill_points_ = 0;
  int leaks_ = 0;
};

TEST_F(FaultKillPoints, SigkillAtEveryPhaseAndAfterManyDelaysThenCleanupLeavesTheHostAsBefore) {
  const auto start = std::chrono::steady_clock::now();
  int by_step = 0;
  int by_time = 0;
  int finished_first = 0;
  for (const ScenarioPoints& scenario : AllScenarioPoints()) {
    for (const std::string& phase : scenario.phases) {
      KillAtPhase(scenario.file, phase);
      ++by_step;
    }
    for (int ms : scenario.kill_after_ms) {
      if (KillAfter(scenario.file, ms)) {
        ++by_time;
      } else {
        ++finished_first;
      }
    }
  }
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
  std::cout << "fault test: " << kill_points_ << " kill points tried (" << by_step << " by step, "
            << by_time << " by time; " << finished_first
            << " runs finished before their kill time), " << leaks_ << " leaks found, in "
            << seconds.count() << " s\n";
  EXPECT_GE(kill_points_, 50);
  EXPECT_EQ(leaks_, 0);
}

TEST_F(FaultKillPoints, SigtermStopsTheRunCleanlyWithoutCleanup) {
  const std::vector<std::pair<std::string, std::string>> points = {
      {"fuse-flush-pidns-teardown.json", "trigger"}, {"fuse-flush-pidns-teardown.json", "stall"},
      {"fuse-flush-pidns-teardown.json", "recover"}, {"seccomp-resources-sigsys.json", "stack"},
      {"seccomp-resources-sigsys.json", "trigger"},  {"containerd-socket-flap.json", "trigger"},
  };
  for (const auto& [file, phase] : points) {
    const std::string point = file + " SIGTERM at phase " + phase;
    WedgeProcess wedge({"run", (kScenarios / file).string()}, phase, output_);
    ASSERT_TRUE(wedge.WaitUntilStopped(std::chrono::seconds(60))) << point << "\n"
                                                                  << wedge.Output();
    ::kill(wedge.pid(), SIGTERM);
    ::kill(wedge.pid(), SIGCONT);
    EXPECT_EQ(wedge.Wait(), 128 + SIGTERM) << point << "\n" << wedge.Output();
    EXPECT_NE(wedge.Output().find("stopped by SIGTERM"), std::string::npos) << point << "\n"
                                                                            << wedge.Output();
    // No `wedge cleanup`: the run itself must have undone everything.
    std::vector<std::string> leftovers = SettledLeftovers();
    EXPECT_TRUE(leftovers.empty())
        << point << " left behind: " << ::testing::PrintToString(leftovers) << "\n"
        << wedge.Output();
    if (!leftovers.empty()) RunWedge({"cleanup"});
  }
}

TEST_F(FaultKillPoints, ASecondRunWaitsForTheFirstWithoutTouchingTheHost) {
  // The first run stops at a fault point mid-scenario, its host changes made and the run lock
  // held; the second, of another scenario, must wait for it and change nothing meanwhile. The
  // first stops as its capture begins: its deadlock has then been observed to be settled, so
  // what the host shows while both wait is the first run's doing, complete (stopped as the stall
  // phase begins, the teardown it triggered could still put a task in D after `during`).
  const fs::path second_output = output_.string() + "-second";
  WedgeProcess first({"run", (kScenarios / "fuse-flush-pidns-teardown.json").string()}, "capture",
                     output_);
  ASSERT_TRUE(first.WaitUntilStopped(std::chrono::seconds(60))) << first.Output();
  const runner::HostState during = testing::HostNow();
  ASSERT_FALSE(runner::DescribeLeftovers(before_, during).empty())
      << "the first run should hold host changes while it is stopped";

  WedgeProcess second({"run", (kScenarios / "fuse-flush-pidns-teardown-no-holder.json").string()},
                      "", second_output);
  const std::string notice = "another wedge run (pid " + std::to_string(first.pid()) + ") holds";
  bool waiting = false;
  for (int i = 0; i < 1000 && !waiting; ++i) {
    waiting = second.Output().find(notice) != std::string::npos;
    if (!waiting) ::usleep(10000);
  }
  EXPECT_TRUE(waiting) << second.Output();
  EXPECT_NE(second.Output().find("waiting"), std::string::npos) << second.Output();
  // Give it time to do whatever it would wrongly do, then check it did nothing.
  ::usleep(500000);
  const char state = ProcessState(second.pid());
  EXPECT_TRUE(state != '\0' && state != 'Z') << "the second run should still be waiting\n"
                                             << second.Output();
  std::vector<std::string> touched = runner::DescribeLeftovers(during, testing::HostNow());
  EXPECT_TRUE(touched.empty()) << "the waiting run changed the host: "
                               << ::testing::PrintToString(touched);

  ::kill(first.pid(), SIGCONT);
  EXPECT_EQ(first.Wait(), 0) << first.Output();
  EXPECT_NE(first.Output().find("verdict: reproduced"), std::string::npos) << first.Output();
  EXPECT_EQ(second.Wait(), 0) << second.Output();
  EXPECT_NE(second.Output().find("verdict: not-reproduced"), std::string::npos) << second.Output();
  std::vector<std::string> leftovers = SettledLeftovers();
  EXPECT_TRUE(leftovers.empty()) << "left behind: " << ::testing::PrintToString(leftovers);
  std::error_code ec;
  fs::remove(second_output, ec);
}

}  // namespace
}  // namespace wedge
