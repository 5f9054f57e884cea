// Fault tests of wedge itself (issues 6, 14 and 16): for every scenario in scenarios/, wedge is
// killed with SIGKILL at every phase it goes through and at every fault point inside an operation
// it reaches (stopped there with WEDGE_FAULT_STOP_AT, its state checked first), and at a spread of
// delays over an unkilled run's duration; the host must be identical to before once
// `wedge cleanup` has run. SIGTERM must stop a run cleanly without any cleanup, and a second run
// waits for the first without touching the host. They run the real wedge binary, built with
// fault points (-DWEDGE_FAULT_POINTS=ON), as root against the real kernel.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/process.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "scenario_test_support.h"
#include "wedge/base/unique_fd.h"
#include "wedge/probe/task.h"
#include "wedge/scenario/scenario.h"
#include "wedge/sys/journal.h"

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
    if (stop_at.empty()) {
      env.erase("WEDGE_FAULT_STOP_AT");
    } else {
      env["WEDGE_FAULT_STOP_AT"] = stop_at;
    }
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

// The kills by time land at these fractions of the unkilled run's duration: the middles of six
// equal slices of it.
constexpr std::array<double, 6> kKillFractions = {1 / 12.0, 3 / 12.0, 5 / 12.0,
                                                  7 / 12.0, 9 / 12.0, 11 / 12.0};

// The processes of the runs of the wedge with pid `wedge`. Its run ids are run-PID-N (a
// scenario's run) and suite-PID-N (the shared stack), which the daemons' command lines and the
// cgroups of what they start name (testing::FindRunProcesses).
std::vector<testing::RunProcess> ProcessesOfWedge(pid_t wedge) {
  std::vector<testing::RunProcess> found;
  for (const std::string prefix : {"run-", "suite-"}) {
    for (const auto& process : testing::FindRunProcesses(prefix + std::to_string(wedge) + "-")) {
      if (std::none_of(found.begin(), found.end(),
                       [&](const testing::RunProcess& seen) { return seen.pid == process.pid; })) {
        found.push_back(process);
      }
    }
  }
  return found;
}

std::vector<testing::RunProcess> Named(const std::vector<testing::RunProcess>& processes,
                                       std::string_view comm) {
  std::vector<testing::RunProcess> named;
  for (const auto& process : processes) {
    if (process.comm == comm) named.push_back(process);
  }
  return named;
}

std::string Describe(const std::vector<testing::RunProcess>& processes) {
  std::string text;
  for (const auto& process : processes) text += (text.empty() ? "" : " ") + process.ToString();
  return text.empty() ? "(no processes)" : text;
}

// Entries of STATE_DIR/`directory` whose names are one of the wedge's run ids (run-PID-N,
// suite-PID-N), with `suffix` appended: the run directories, or the journals (".jsonl").
std::vector<fs::path> OfWedge(pid_t wedge, const std::string& directory,
                              const std::string& suffix) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sys::DefaultStateDirectory() / directory, ec)) {
    const std::string name = entry.path().filename().string();
    for (const std::string prefix : {"run-", "suite-"}) {
      if (name.rfind(prefix + std::to_string(wedge) + "-", 0) == 0 && name.ends_with(suffix)) {
        found.push_back(entry.path());
      }
    }
  }
  return found;
}

// The directory of the wedge's private stack: RUN_DIR/stack of its one run that has one.
std::optional<fs::path> StackDirectoryOf(pid_t wedge) {
  std::vector<fs::path> stacks;
  for (const fs::path& run : OfWedge(wedge, "runs", "")) {
    if (fs::is_directory(run / "stack")) stacks.push_back(run / "stack");
  }
  if (stacks.size() != 1) return std::nullopt;
  return stacks.front();
}

// connect() to a unix socket: 0, or the errno it failed with.
int ConnectErrno(const fs::path& socket) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    return 0;
  }
  return errno;
}

// Whether every thread of `pid` names a strace as its TracerPid.
bool TracedByStrace(pid_t pid) {
  const std::vector<pid_t> tasks = probe::ListTasks(pid);
  if (tasks.empty()) return false;
  for (pid_t tid : tasks) {
    Result<probe::TaskStatus> status = probe::ReadStatus(pid, tid);
    if (!status.ok() || status->tracer_pid == 0) return false;
    Result<std::string> tracer = probe::ReadComm(status->tracer_pid);
    if (!tracer.ok() || *tracer != "strace") return false;
  }
  return true;
}

// What a stopped wedge must show at a point, checked before it is killed there.
using StateCheck = std::function<void(pid_t wedge, const std::string& point)>;

// "stack-containerd-up": the stack's containerd runs and serves its socket; dockerd does not run.
void ExpectContainerdUpWithoutDockerd(pid_t wedge, const std::string& point) {
  const std::vector<testing::RunProcess> processes = ProcessesOfWedge(wedge);
  const std::vector<testing::RunProcess> containerd = Named(processes, "containerd");
  EXPECT_EQ(containerd.size(), 1u) << point << ": containerd should run: " << Describe(processes);
  for (const auto& process : containerd) EXPECT_NE(process.state, 'Z') << point;
  EXPECT_TRUE(Named(processes, "dockerd").empty())
      << point << ": dockerd should not be started yet: " << Describe(processes);
  const std::optional<fs::path> stack = StackDirectoryOf(wedge);
  ASSERT_TRUE(stack) << point << ": no stack directory of the run";
  EXPECT_EQ(ConnectErrno(*stack / "containerd.sock"), 0)
      << point << ": containerd's socket should accept connections";
}

// "flap-outage": containerd away as the flap's `how` leaves it, while dockerd runs, traced by the
// syscall probe.
void ExpectContainerdAway(scenario::FlapSpec::How how, pid_t wedge, const std::string& point) {
  using How = scenario::FlapSpec::How;
  const std::vector<testing::RunProcess> processes = ProcessesOfWedge(wedge);
  const std::vector<testing::RunProcess> containerd = Named(processes, "containerd");
  const std::vector<testing::RunProcess> dockerd = Named(processes, "dockerd");
  EXPECT_EQ(dockerd.size(), 1u) << point << ": dockerd should run: " << Describe(processes);
  if (dockerd.size() == 1) {
    EXPECT_TRUE(TracedByStrace(dockerd.front().pid))
        << point << ": dockerd (pid " << dockerd.front().pid << ") should be traced by the probe";
  }
  const std::optional<fs::path> stack = StackDirectoryOf(wedge);
  ASSERT_TRUE(stack) << point << ": no stack directory of the run";
  const fs::path socket = *stack / "containerd.sock";
  switch (how) {
    case How::kRestart:
      EXPECT_TRUE(containerd.empty())
          << point << ": containerd should have exited: " << Describe(processes);
      EXPECT_FALSE(fs::exists(socket)) << point << ": " << socket << " should be gone";
      break;
    case How::kSigkill:
      EXPECT_TRUE(containerd.empty())
          << point << ": containerd should have been killed: " << Describe(processes);
      EXPECT_EQ(ConnectErrno(socket), ECONNREFUSED) << point << ": " << socket;
      break;
    case How::kSigstop:
      EXPECT_EQ(containerd.size(), 1u) << point << ": " << Describe(processes);
      for (const auto& process : containerd) EXPECT_EQ(process.state, 'T') << point;
      break;
    case How::kUnlinkSocket:
      EXPECT_EQ(containerd.size(), 1u) << point << ": " << Describe(processes);
      EXPECT_FALSE(fs::exists(socket)) << point << ": " << socket << " should be unlinked";
      break;
  }
}

// "stall" of a watched command with a hold: the hold's strace traces every thread of the
// container's shim (and, with -f, what the shim starts: runc, runc init).
void ExpectShimTracedByTheHold(pid_t wedge, const std::string& point) {
  const std::vector<testing::RunProcess> processes = ProcessesOfWedge(wedge);
  std::vector<pid_t> shims;
  for (const auto& process : processes) {
    if (process.comm.rfind("containerd-shim", 0) == 0) shims.push_back(process.pid);
  }
  EXPECT_FALSE(shims.empty()) << point << ": no containerd shim: " << Describe(processes);
  EXPECT_TRUE(std::any_of(shims.begin(), shims.end(), TracedByStrace))
      << point << ": no shim has strace as the TracerPid of every thread: " << Describe(processes);
}

// "undo": the run's journal half undone: its last line closes an entry newer than each one still
// pending, and some are still pending.
void ExpectUndoHalfDone(pid_t wedge, const std::string& point) {
  const std::vector<fs::path> journals = OfWedge(wedge, "journal", ".jsonl");
  ASSERT_EQ(journals.size(), 1u) << point << ": " << journals.size() << " journals of the run";
  const std::string text = ReadText(journals.front());
  const std::vector<sys::JournalEntry> pending = sys::ParseJournal(text);
  EXPECT_FALSE(pending.empty()) << point << ": nothing left to undo\n" << text;
  std::string last;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) last = line;
  }
  const nlohmann::json closing = nlohmann::json::parse(last, nullptr, false);
  ASSERT_TRUE(closing.is_object() && closing.contains("undone") &&
              closing["undone"].is_number_unsigned())
      << point << ": the journal's last line should be an undo: " << last;
  const std::uint64_t undone = closing["undone"].get<std::uint64_t>();
  for (const sys::JournalEntry& entry : pending) {
    EXPECT_TRUE(entry.change.ok()) << point << ": " << entry.change.error().message();
    EXPECT_LT(entry.seq, undone) << point << ": entry " << entry.seq
                                 << " is newer than the one just undone\n"
                                 << text;
  }
}

// Process scenarios run in a sandbox whose cgroup sits in wedge/RUN_ID, a level the run creates
// (with wedge/ itself on a host without it) and leaves to the journal: the teardown's UndoAll
// undoes two entries or more, so it reaches "undo" with older ones pending. The rule is the
// runner's (NeedsSandbox in harness/runner/stages.cpp): a spawn into a container runs in the
// private stack, whose stop removes the levels it created itself.
bool RunsInASandbox(const scenario::Scenario& scenario) {
  return std::any_of(scenario.steps.begin(), scenario.steps.end(), [](const scenario::Step& step) {
    const auto* spawn = std::get_if<scenario::SpawnStep>(&step);
    return (spawn != nullptr && !spawn->container) ||
           std::holds_alternative<scenario::KillStep>(step) ||
           std::holds_alternative<scenario::WaitForStallStep>(step);
  });
}

// A point wedge is stopped at and killed: a phase as it begins, or a point inside an operation.
struct StopPoint {
  std::string name;
  StateCheck check;  // empty: nothing to check but the stop itself
};

// The phase `phase` of `scenario` as a stop point: at "stall" a hold's strace must be attached.
StopPoint PhasePoint(const scenario::Scenario& scenario, const std::string& phase) {
  if (phase == "stall") {
    for (const scenario::Step& step : scenario.steps) {
      const auto* watched = std::get_if<scenario::WatchedCommandStep>(&step);
      if (watched != nullptr && !watched->watch.hold_syscall.empty()) {
        return {phase, ExpectShimTracedByTheHold};
      }
    }
  }
  return {phase, {}};
}

// The points inside operations that a run of `scenario` reaches (include/wedge/base/
// fault_point.h), each with the state to check there.
std::vector<StopPoint> OperationPoints(const scenario::Scenario& scenario) {
  std::vector<StopPoint> points;
  if (scenario.stack.required) {
    points.push_back({"stack-containerd-up", ExpectContainerdUpWithoutDockerd});
  }
  for (const scenario::Step& step : scenario.steps) {
    if (const auto* flap = std::get_if<scenario::FlapStep>(&step)) {
      // The point is the first outage; the first flap step reaches it first.
      const scenario::FlapSpec::How how = flap->flap.how;
      points.push_back({"flap-outage", [how](pid_t wedge, const std::string& point) {
                          ExpectContainerdAway(how, wedge, point);
                        }});
      break;
    }
  }
  if (RunsInASandbox(scenario)) points.push_back({"undo", ExpectUndoHalfDone});
  return points;
}

// What an unkilled run of a scenario went through, from its report and its clock.
struct MeasuredRun {
  std::vector<std::string> phases;  // the report's phases, in order, each once
  std::int64_t duration_ms = 0;     // the report's duration of the scenario's run
  std::int64_t wall_ms = 0;         // the wedge process's life: start, run, shared stack's stop
};

// The counts of one scenario's kill points, and of all of them in this test binary's run.
struct KillCounts {
  int scenarios = 0;
  int kill_points = 0;
  int by_step = 0;
  int by_time = 0;
  int finished_first = 0;
  int leaks = 0;
  std::int64_t seconds = 0;
};

// The summary line: "fault test: N kill points tried (...), L leaks found, in S s".
std::string Summary(const KillCounts& counts) {
  return std::to_string(counts.kill_points) + " kill points tried (" +
         std::to_string(counts.by_step) + " by step, " + std::to_string(counts.by_time) +
         " by time; " + std::to_string(counts.finished_first) +
         " runs finished before their kill time), " + std::to_string(counts.leaks) +
         " leaks found, in " + std::to_string(counts.seconds) + " s";
}

KillCounts& AllScenariosCounts() {
  static KillCounts counts;
  return counts;
}

// After every test: the totals of the scenarios this binary ran (under ctest, one each).
class PrintKillPointTotals : public ::testing::Environment {
 public:
  void TearDown() override {
    const KillCounts& counts = AllScenariosCounts();
    if (counts.scenarios == 0) return;
    std::cout << "fault test: " << counts.scenarios << " scenarios of scenarios/, in all:\n"
              << "fault test: " << Summary(counts) << "\n";
  }
};
[[maybe_unused]] ::testing::Environment* const kPrintKillPointTotals =
    ::testing::AddGlobalTestEnvironment(new PrintKillPointTotals);

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

  // Everything that differs from the baseline: the host as the tests' own snapshot sees it, and
  // network namespaces.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> lines = testing::Diff(before_, testing::HostNow());
    std::erase_if(lines, [](const std::string& line) {
      // "process PID(comm)" of the container stack: only wedge's own count (the host may run a
      // docker of its own). wedge's helpers count wherever they are: an exiting pid-namespace
      // init has already left its cgroup.
      if (line.rfind("process ", 0) != 0) return false;
      const size_t open = line.find('(');
      const std::string pid = line.substr(8, open - 8);
      const std::string comm = line.substr(open + 1, line.size() - open - 2);
      const bool stack = comm == "dockerd" || comm == "containerd" ||
                         comm.rfind("containerd-shim", 0) == 0 || comm == "runc" ||
                         comm.rfind("runc:[", 0) == 0;
      return stack && !InWedgeCgroup(pid);
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

  // One unkilled run of `file` with --json: the phases and durations its kill points come from.
  // Like every run, it must leave the host as it found it, without any cleanup.
  MeasuredRun Measure(const fs::path& file) {
    MeasuredRun measured;
    const fs::path report = output_.string() + ".json";
    std::error_code ec;
    fs::remove(report, ec);
    const auto started = std::chrono::steady_clock::now();
    WedgeProcess wedge({"run", file.string(), "--json", report.string()}, "", output_);
    const int exit_code = wedge.Wait();
    measured.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - started)
                           .count();
    EXPECT_EQ(exit_code, 0) << file << ", unkilled:\n" << wedge.Output();
    std::vector<std::string> leftovers = SettledLeftovers();
    if (!leftovers.empty()) {
      ++leaks_;
      ADD_FAILURE() << file << ", unkilled, left behind: " << ::testing::PrintToString(leftovers)
                    << "\n"
                    << wedge.Output();
      RunWedge({"cleanup"});
    }
    if (!fs::exists(report)) {
      ADD_FAILURE() << file << ": the unkilled run wrote no report\n" << wedge.Output();
      return measured;
    }
    const nlohmann::json parsed = nlohmann::json::parse(ReadText(report), nullptr, false);
    fs::remove(report, ec);
    if (!parsed.is_object() || !parsed.contains("results") || parsed["results"].size() != 1) {
      ADD_FAILURE() << file << ": the unkilled run's report should hold one result";
      return measured;
    }
    const nlohmann::json& result = parsed["results"][0];
    for (const nlohmann::json& phase : result.value("phases", nlohmann::json::array())) {
      const std::string name = phase.value("phase", "");
      if (!name.empty() && std::find(measured.phases.begin(), measured.phases.end(), name) ==
                               measured.phases.end()) {
        measured.phases.push_back(name);
      }
    }
    measured.duration_ms = result.value("duration_ms", std::int64_t{0});
    return measured;
  }

  // Stops wedge at `stop`, checks the state there, kills it. Returns whether it stopped there.
  // A run that ends on its own error before the point (the stack refusing the scenario's
  // container now and then: `docker run` exit 125 under pids.max 1) never reaches it; the host
  // is still checked after it, and the point is tried again, at most twice more, and counted
  // once. A run that hangs instead fails at once.
  bool KillAtPoint(const fs::path& file, const StopPoint& stop) {
    return KillAtPoint({"run", file.string()}, file.filename().string(), stop);
  }
  // The same for the wedge command `args`, named `label` in failures.
  bool KillAtPoint(const std::vector<std::string>& args, const std::string& label,
                   const StopPoint& stop) {
    const std::string point = label + " SIGKILL at " + stop.name;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      WedgeProcess wedge(args, stop.name, output_);
      const bool stopped = wedge.WaitUntilStopped(std::chrono::seconds(60));
      if (!stopped) {
        ::kill(wedge.pid(), SIGKILL);  // a hung run ends here; one that exited keeps its status
        const int exit_code = wedge.Wait();
        CleanupAndCheck(point + " (attempt " + std::to_string(attempt) + ", not reached)",
                        wedge.Output());
        if (exit_code == 4 && attempt < 3) {
          std::cout << "fault test: " << point << ": the run ended (exit 4) before the point; "
                    << "trying again\n"
                    << wedge.Output();
          ++retries_;
          continue;
        }
        ADD_FAILURE() << point << ": wedge never reached the point (exit " << exit_code << ")\n"
                      << wedge.Output();
        return false;
      }
      EXPECT_NE(wedge.Output().find("fault point: stopped before " + stop.name), std::string::npos)
          << point << "\n"
          << wedge.Output();
      if (stop.check) stop.check(wedge.pid(), point);
      ::kill(wedge.pid(), SIGKILL);
      EXPECT_EQ(wedge.Wait(), 128 + SIGKILL) << point;
      ++kill_points_;
      CleanupAndCheck(point, wedge.Output());
      return true;
    }
    return false;
  }

  // Returns whether wedge was still running when it was killed.
  bool KillAfter(const fs::path& file, int ms) {
    const std::string point =
        file.filename().string() + " SIGKILL after " + std::to_string(ms) + " ms";
    WedgeProcess wedge({"run", file.string()}, "", output_);
    if (ms > 0) ::usleep(static_cast<useconds_t>(ms) * 1000);
    ::kill(wedge.pid(), SIGKILL);
    const bool killed = wedge.Wait() == 128 + SIGKILL;
    if (killed) ++kill_points_;
    CleanupAndCheck(point, wedge.Output());
    return killed;
  }

  testing::HostSnapshot before_;
  NetnsState netns_before_;
  fs::path output_;
  int kill_points_ = 0;
  int leaks_ = 0;
  int retries_ = 0;  // stops tried again after a run ended before reaching them
};

// One instance per scenario file, so that each scenario's kill points are one test (and one ctest
// entry, within its timeout).
class FaultKillPointsOfScenario : public FaultKillPoints,
                                  public ::testing::WithParamInterface<std::string> {};

TEST_P(FaultKillPointsOfScenario,
       SigkillAtEveryPhasePointAndSpreadOfDelaysThenCleanupLeavesTheHostAsBefore) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path file = GetParam();
  auto loaded = scenario::LoadScenarioFile(file);
  ASSERT_TRUE(std::holds_alternative<scenario::Scenario>(loaded))
      << std::get<scenario::LoadError>(loaded).ToString();
  const scenario::Scenario& scenario = std::get<scenario::Scenario>(loaded);

  // The plan: every phase the unkilled run went through, every point inside an operation it
  // reaches, and delays spread over how long it took.
  const MeasuredRun measured = Measure(file);
  ASSERT_FALSE(measured.phases.empty()) << file << ": the unkilled run's report has no phases";
  EXPECT_LE(measured.duration_ms, measured.wall_ms);
  std::vector<StopPoint> stops;
  for (const std::string& phase : measured.phases) stops.push_back(PhasePoint(scenario, phase));
  for (StopPoint& point : OperationPoints(scenario)) stops.push_back(std::move(point));
  std::vector<int> delays;
  for (double fraction : kKillFractions) {
    delays.push_back(static_cast<int>(fraction * static_cast<double>(measured.wall_ms)));
  }
  const int planned = static_cast<int>(stops.size() + delays.size());
  std::string stop_names;
  for (const StopPoint& stop : stops) stop_names += (stop_names.empty() ? "" : " ") + stop.name;
  std::string delay_list;
  for (int ms : delays) delay_list += (delay_list.empty() ? "" : " ") + std::to_string(ms);
  std::cout << "fault test: " << scenario.name << ": " << planned
            << " kill points planned: " << stops.size() << " stops (" << stop_names << "), "
            << delays.size() << " delays (" << delay_list << " ms) over the unkilled run's "
            << measured.wall_ms << " ms (its report: " << measured.duration_ms << " ms)\n";

  KillCounts counts;
  for (const StopPoint& stop : stops) {
    if (KillAtPoint(file, stop)) ++counts.by_step;
  }
  for (int ms : delays) {
    if (KillAfter(file, ms)) {
      ++counts.by_time;
    } else {
      ++counts.finished_first;
    }
  }
  counts.scenarios = 1;
  counts.kill_points = kill_points_;
  counts.leaks = leaks_;
  counts.seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
          .count();
  std::cout << "fault test: " << scenario.name << ": " << Summary(counts) << "\n";
  if (retries_ > 0) {
    std::cout << "fault test: " << scenario.name << ": " << retries_
              << " stop(s) tried again after a run ended before reaching them\n";
  }
  KillCounts& all = AllScenariosCounts();
  all.scenarios += counts.scenarios;
  all.kill_points += counts.kill_points;
  all.by_step += counts.by_step;
  all.by_time += counts.by_time;
  all.finished_first += counts.finished_first;
  all.leaks += counts.leaks;
  all.seconds += counts.seconds;

  // Every stop reached and killed there; every delay tried, killing wedge unless it was done.
  EXPECT_EQ(counts.by_step, static_cast<int>(stops.size()));
  EXPECT_EQ(counts.by_time + counts.finished_first, static_cast<int>(delays.size()));
  EXPECT_EQ(kill_points_, planned - counts.finished_first);
  EXPECT_EQ(leaks_, 0);
}

// "fuse-flush-pidns-teardown.json" -> "fuse_flush_pidns_teardown".
std::string ScenarioTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> files;
  for (const fs::path& file : scenario::ExpandScenarioPaths(kScenarios)) files.push_back(file);
  return files;
}

// Every scenario in scenarios/ (*.json, sorted), whatever is added there.
INSTANTIATE_TEST_SUITE_P(AllScenarios, FaultKillPointsOfScenario,
                         ::testing::ValuesIn(ScenarioFiles()), ScenarioTestName);

// The entries of a stack cache directory, by name.
std::set<std::string> CacheEntries(const fs::path& cache) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache, ec)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// Whether a root is being built in `cache`: a .build- directory mmdebstrap has begun to fill.
bool BuildingARoot(const fs::path& cache) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache, ec)) {
    if (entry.path().filename().string().rfind(sys::kStackBuildPrefix, 0) == 0 &&
        fs::exists(entry.path() / "var", ec)) {
      return true;
    }
  }
  return false;
}

// A release's stack (issue 16): wedge killed while mmdebstrap writes a release's root, with the
// root complete but not renamed into place, and inside a cell on that release's stack (its
// containerd up, dockerd not yet; and as the trigger begins). After `wedge cleanup` the host is
// as before, and the cache holds nothing a later run would trust.
TEST_F(FaultKillPoints,
       SigkillDuringAReleaseRootBuildOrAReleaseCellThenCleanupLeavesTheHostAsBefore) {
  const fs::path file = kScenarios / "seccomp-resources-sigsys.json";
  const std::vector<std::string> on_bullseye = {"run", file.string(), "--stack", "bullseye"};
  // A cache of its own, so that the root is built here whatever the machine's cache holds; the
  // runs and `wedge cleanup` inherit it.
  const fs::path cache =
      fs::temp_directory_path() / ("wedge-fault-stack-cache-" + std::to_string(::getpid()));
  fs::remove_all(cache);
  fs::create_directories(cache);
  ::chmod(cache.c_str(), 0755);
  ::setenv("WEDGE_STACK_CACHE", cache.c_str(), 1);
  struct Unset {
    ~Unset() { ::unsetenv("WEDGE_STACK_CACHE"); }
  } unset;

  {
    const std::string point = "bullseye's root SIGKILL while mmdebstrap writes it";
    WedgeProcess wedge(on_bullseye, "", output_);
    const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(3);
    while (!BuildingARoot(cache) && std::chrono::steady_clock::now() < until) {
      const char state = ProcessState(wedge.pid());
      if (state == '\0' || state == 'Z') break;
      ::usleep(20000);
    }
    ASSERT_TRUE(BuildingARoot(cache)) << "no root build seen in " << cache << "\n"
                                      << wedge.Output();
    ::kill(wedge.pid(), SIGKILL);
    EXPECT_EQ(wedge.Wait(), 128 + SIGKILL) << point;
    CleanupAndCheck(point, wedge.Output());
    EXPECT_EQ(CacheEntries(cache), std::set<std::string>{"apt"}) << point;
  }

  const StopPoint built = {"release-root-built", [&cache](pid_t, const std::string& point) {
                             EXPECT_TRUE(BuildingARoot(cache)) << point;
                             EXPECT_EQ(CacheEntries(cache).size(), 2u)
                                 << point << ": the root not yet renamed into place";
                           }};
  EXPECT_TRUE(KillAtPoint(on_bullseye, "bullseye's root", built));
  EXPECT_EQ(CacheEntries(cache), std::set<std::string>{"apt"}) << "after a kill before the rename";

  // Built to the end, then killed in its cells.
  WedgeRun unkilled = RunWedge(on_bullseye);
  EXPECT_EQ(unkilled.exit_code, 0) << unkilled.output;
  EXPECT_TRUE(SettledLeftovers().empty());
  EXPECT_TRUE(KillAtPoint(on_bullseye, "a bullseye cell",
                          {"stack-containerd-up", ExpectContainerdUpWithoutDockerd}));
  EXPECT_TRUE(KillAtPoint(on_bullseye, "a bullseye cell", {"trigger", {}}));
  EXPECT_EQ(leaks_, 0);
  fs::remove_all(cache);
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
  const testing::HostSnapshot during = testing::HostNow();
  ASSERT_FALSE(testing::Diff(before_, during).empty())
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
  std::vector<std::string> touched = testing::Diff(during, testing::HostNow());
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
