// Tests of the containerd flap injector and the syscall probe against the real private stack:
// dockerd's connects to the containerd socket while containerd is away, as in seed 000 (a
// dockerd with "socket churn"). The probe's trace parser is also tested on recorded text.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "scenario_test_support.h"
#include "wedge/probe/task.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/stack/syscall_probe.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RunProcesses;
using Outage = stack::DockerStack::Outage;

const fs::path kFixtures = fs::path(WEDGE_BINARY).parent_path();

const signature::ObservedSeries* Find(const std::vector<signature::ObservedSeries>& all,
                                      const std::string& metric, const std::string& window) {
  for (const auto& series : all) {
    if (series.metric == metric && series.window == window) return &series;
  }
  return nullptr;
}

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double Sum(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}

std::string Format(const std::vector<double>& values) {
  std::string text;
  for (double value : values) {
    char number[32];
    std::snprintf(number, sizeof number, "%g", value);
    text += (text.empty() ? "" : " ") + std::string(number);
  }
  return "[" + text + "]";
}

std::size_t CountEntries(const fs::path& directory) {
  std::error_code ec;
  std::size_t count = 0;
  for (auto it = fs::directory_iterator(directory, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++count;
  }
  return count;
}

std::string NewRunId() {
  static std::atomic<int> counter{0};
  return "flap-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// What one flap did, as the test measured it.
struct FlapRun {
  std::vector<signature::ObservedSeries> series;
  std::string evidence;
  std::int64_t recovery_ms = -1;      // BringContainerdBack returned -> GET /containers/json 200
  std::int64_t top_recovery_ms = -1;  // ... -> GET /containers/ID/top 200 (needs containerd)
  int ps_during_outage = 0;           // GET /containers/json status while containerd was away
  std::size_t fds_before = 0, fds_after = 0, threads_before = 0, threads_after = 0;
  std::string listed_after;  // `docker ps` after recovery
  bool container_listed = false;
};

class ContainerdFlap : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the private docker stack runs as root";
    for (const auto& [name, path] : stack::Binaries::Defaults().paths) {
      if (::access(path.c_str(), X_OK) != 0) GTEST_SKIP() << name << " is not installed";
    }
    if (::access("/usr/bin/strace", X_OK) != 0) GTEST_SKIP() << "strace is not installed";
    state_dir_ = sys::DefaultStateDirectory();
    Result<sys::RunLock> lock = sys::RunLock::Acquire(state_dir_, [](const std::string&) {});
    ASSERT_TRUE(lock.ok()) << lock.error().message();
    lock_ = std::make_unique<sys::RunLock>(std::move(*lock));
    before_ = testing::HostNow();
    run_id_ = NewRunId();
    run_dir_ = state_dir_ / "runs" / run_id_;
    Result<std::unique_ptr<sys::Journal>> journal = sys::Journal::Create(state_dir_, run_id_);
    ASSERT_TRUE(journal.ok()) << journal.error().message();
    journal_ = std::move(*journal);
    ASSERT_TRUE(journal_->Record(sys::DirectoryChange{run_dir_}).ok());
    fs::create_directories(run_dir_);
    stack::StackOptions options;
    options.binaries = stack::Binaries::Defaults();
    options.run_directory = run_dir_;
    options.fixtures_dir = kFixtures;
    Result<std::unique_ptr<stack::DockerStack>> started =
        stack::DockerStack::Start(*journal_, options);
    ASSERT_TRUE(started.ok()) << started.error().message();
    stack_ = std::move(*started);
    Result<std::string> image = stack_->EnsureBusyboxImage();
    ASSERT_TRUE(image.ok()) << image.error().message();
    auto run =
        stack_->Docker({"run", "-d", "--network", "none", *image, "sleep", "3600"}, seconds(60));
    ASSERT_TRUE(run.ok()) << run.error().message();
    ASSERT_EQ(run->first, 0) << run->second;
    container_ = sys::TrimTrailing(run->second).substr(0, 12);
  }

  void TearDown() override {
    if (stack_ != nullptr) {
      Status stopped = stack_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped.error().message();
      stack_.reset();
    }
    if (journal_ != nullptr) {
      EXPECT_TRUE(journal_->UndoAll().ok());
      journal_.reset();
    }
    if (run_id_.empty()) return;
    EXPECT_TRUE(RunProcesses(run_id_).empty())
        << "processes left: " << ::testing::PrintToString(RunProcesses(run_id_));
    // The kernel finishes freeing dead namespaces and cgroups in kworkers, within moments.
    testing::ExpectHostUnchanged(before_, std::chrono::seconds(2));
  }

  fs::path DockerSocket() const { return stack_->directory() / "docker.sock"; }

  // The seed's sequence: ~1 s of normal operation, containerd away for `outage`, back, then
  // until GET /containers/json answers, and 1 s more.
  FlapRun Flap(Outage how, milliseconds outage) {
    FlapRun run;
    const fs::path proc = "/proc/" + std::to_string(stack_->dockerd_pid());
    run.fds_before = CountEntries(proc / "fd");
    run.threads_before = CountEntries(proc / "task");
    Result<std::unique_ptr<stack::SyscallProbe>> attached = stack::SyscallProbe::Attach(
        stack_->journal(), stack_->dockerd_pid(), stack_->containerd_socket(),
        stack_->directory() / "dockerd.log", run_dir_ / "probe");
    EXPECT_TRUE(attached.ok()) << attached.error().message();
    if (!attached.ok()) return run;
    stack::SyscallProbe& probe = **attached;
    probe.BeginWindow("before");
    sys::SleepFor(milliseconds(1100));  // one whole second
    Status away = stack_->TakeContainerdAway(how, seconds(10));
    EXPECT_TRUE(away.ok()) << away.error().message();
    probe.BeginWindow("outage");
    const std::int64_t outage_began = sys::MonotonicMillis();
    EXPECT_TRUE(RunProcesses(run_id_, true).empty())
        << "zombies: " << ::testing::PrintToString(RunProcesses(run_id_, true));
    auto during = stack::HttpGetUnix(DockerSocket(), "/containers/json", milliseconds(2000));
    run.ps_during_outage = during.ok() ? during->first : -1;
    sys::SleepFor(milliseconds(outage_began + outage.count() - sys::MonotonicMillis()));
    Status back = stack_->BringContainerdBack(seconds(20));
    EXPECT_TRUE(back.ok()) << back.error().message();
    const std::int64_t serving = sys::MonotonicMillis();
    probe.BeginWindow("after");
    while (sys::MonotonicMillis() - serving < 30000 &&
           (run.recovery_ms < 0 || run.top_recovery_ms < 0)) {
      if (run.recovery_ms < 0) {
        auto ps = stack::HttpGetUnix(DockerSocket(), "/containers/json", milliseconds(2000));
        if (ps.ok() && ps->first == 200) run.recovery_ms = sys::MonotonicMillis() - serving;
      }
      if (run.top_recovery_ms < 0) {
        auto top = stack::HttpGetUnix(DockerSocket(), "/containers/" + container_ + "/top",
                                      milliseconds(2000));
        if (top.ok() && top->first == 200) run.top_recovery_ms = sys::MonotonicMillis() - serving;
      }
      ::usleep(2000);
    }
    const std::int64_t until = std::max(run.recovery_ms, run.top_recovery_ms) + 1000;
    if (std::int64_t left = serving + until - sys::MonotonicMillis(); left > 0) {
      sys::SleepFor(milliseconds(left));
    }
    Result<std::vector<signature::ObservedSeries>> series = probe.Finish();
    EXPECT_TRUE(series.ok()) << series.error().message();
    if (series.ok()) run.series = *series;
    run.evidence = probe.EvidenceText();
    attached->reset();
    auto listed = stack_->Docker({"ps", "--format", "{{.ID}}"}, seconds(10));
    EXPECT_TRUE(listed.ok() && listed->first == 0)
        << (listed.ok() ? listed->second : listed.error().message());
    if (listed.ok()) run.listed_after = sys::TrimTrailing(listed->second);
    run.container_listed = run.listed_after.find(container_) != std::string::npos;
    run.fds_after = CountEntries(proc / "fd");
    run.threads_after = CountEntries(proc / "task");
    return run;
  }

  void Report(const std::string& kind, const FlapRun& run) {
    std::printf("[%s] outage connect/s %s connect_errors/s %s socket/s %s close/s %s\n",
                kind.c_str(), Format(Series(run, "connect", "outage")).c_str(),
                Format(Series(run, "connect_errors", "outage")).c_str(),
                Format(Series(run, "socket", "outage")).c_str(),
                Format(Series(run, "close", "outage")).c_str());
    std::printf(
        "[%s] before connect/s %s; after connect/s %s; threads %s futex_threads %s; "
        "containerd_log_lines %s\n",
        kind.c_str(), Format(Series(run, "connect", "before")).c_str(),
        Format(Series(run, "connect", "after")).c_str(),
        Format(Series(run, "threads", "outage")).c_str(),
        Format(Series(run, "futex_threads", "outage")).c_str(),
        Format(Series(run, "containerd_log_lines", "outage")).c_str());
    std::printf(
        "[%s] GET /containers/json during the outage: %d; recovery: /containers/json %lld ms, "
        "/containers/ID/top %lld ms; dockerd fds %zu -> %zu, threads %zu -> %zu; container "
        "%s listed after (ps: '%s')\n",
        kind.c_str(), run.ps_during_outage, static_cast<long long>(run.recovery_ms),
        static_cast<long long>(run.top_recovery_ms), run.fds_before, run.fds_after,
        run.threads_before, run.threads_after, run.container_listed ? "still" : "NOT",
        run.listed_after.c_str());
  }

  static std::vector<double> Series(const FlapRun& run, const std::string& metric,
                                    const std::string& window) {
    const signature::ObservedSeries* found = Find(run.series, metric, window);
    return found == nullptr ? std::vector<double>() : found->per_second;
  }

  fs::path state_dir_;
  std::unique_ptr<sys::RunLock> lock_;
  testing::HostSnapshot before_;
  std::string run_id_;
  fs::path run_dir_;
  std::unique_ptr<sys::Journal> journal_;
  std::unique_ptr<stack::DockerStack> stack_;
  std::string container_;
};

// Seed 000: containerd stopped under a running dockerd (SIGTERM: containerd removes its socket)
// makes dockerd redial the missing socket about every 10 ms, far above its 100 ms waitServe poll.
TEST_F(ContainerdFlap, AContainerdOutageMakesDockerdChurnConnectsToItsSocket) {
  const pid_t containerd_before = stack_->containerd_pid();
  FlapRun run = Flap(Outage::kRestart, milliseconds(3000));
  Report("restart", run);
  const std::vector<double> before = Series(run, "connect", "before");
  const std::vector<double> outage = Series(run, "connect", "outage");
  ASSERT_EQ(before.size(), 1u) << run.evidence;
  ASSERT_EQ(outage.size(), 3u) << run.evidence;
  EXPECT_EQ(Sum(Series(run, "connect_errors", "outage")), Sum(outage)) << run.evidence;
  // The dials come in bursts of one gRPC backoff (1 s, then 1.6 s...) with pauses as long, so
  // the mean over the outage is the stable figure, not each second.
  EXPECT_GT(Mean(outage), 10.0) << run.evidence;
  EXPECT_GT(Mean(outage), 10 * (Mean(before) + 1)) << run.evidence;
  EXPECT_GT(Sum(Series(run, "containerd_log_lines", "outage")), 0) << run.evidence;
  EXPECT_FALSE(Series(run, "futex_threads", "outage").empty());
  EXPECT_NE(stack_->containerd_pid(), containerd_before);
  EXPECT_GE(run.recovery_ms, 0) << "docker ps did not work after containerd came back";
  EXPECT_GE(run.top_recovery_ms, 0) << "docker top did not work after containerd came back";
}

class ContainerdFlapKind : public ContainerdFlap,
                           public ::testing::WithParamInterface<std::pair<Outage, const char*>> {};

// What each way of taking containerd away does to dockerd's connects.
TEST_P(ContainerdFlapKind, DockerdRecoversAndItsConnectsMatchTheOutage) {
  const auto [how, kind] = GetParam();
  FlapRun run = Flap(how, milliseconds(3000));
  Report(kind, run);
  const std::vector<double> outage = Series(run, "connect", "outage");
  ASSERT_EQ(outage.size(), 3u) << run.evidence;
  EXPECT_GE(run.recovery_ms, 0) << run.evidence;
  EXPECT_GE(run.top_recovery_ms, 0) << run.evidence;
  EXPECT_TRUE(run.container_listed) << run.listed_after;
  switch (how) {
    case Outage::kSigkill:
      // The socket file stays: connect() fails with ECONNREFUSED, which the dialer does not
      // retry itself, so gRPC's backoff (1 s and up) paces the redials of dockerd's two
      // containerd clients.
      EXPECT_GT(Sum(outage), 0) << run.evidence;
      EXPECT_EQ(Sum(Series(run, "connect_errors", "outage")), Sum(outage)) << run.evidence;
      EXPECT_LT(Mean(outage), 10.0) << run.evidence;
      EXPECT_NE(run.evidence.find("ECONNREFUSED"), std::string::npos) << run.evidence;
      break;
    case Outage::kRestart:
      EXPECT_GT(Mean(outage), 10.0) << run.evidence;
      EXPECT_NE(run.evidence.find("ENOENT"), std::string::npos) << run.evidence;
      break;
    case Outage::kSigstop:
    case Outage::kUnlinkSocket:
      // dockerd's established connections stay open (to a stopped process, or to a listener
      // nobody else can reach): nothing fails, so nothing redials.
      EXPECT_EQ(Sum(outage), 0) << run.evidence;
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryOutage, ContainerdFlapKind,
                         ::testing::Values(std::make_pair(Outage::kSigkill, "sigkill"),
                                           std::make_pair(Outage::kSigstop, "sigstop"),
                                           std::make_pair(Outage::kUnlinkSocket, "unlink"),
                                           std::make_pair(Outage::kRestart, "restart")),
                         [](const auto& param_info) {
                           return std::string(param_info.param.second);
                         });

// A stack stopped in the middle of a flap brings containerd back first, so that its containers
// can be removed and dockerd stops in time.
TEST_F(ContainerdFlap, StopsCleanlyWhileContainerdIsAway) {
  EXPECT_FALSE(stack_->BringContainerdBack(seconds(1)).ok()) << "containerd is not away";
  Status away = stack_->TakeContainerdAway(Outage::kSigstop, seconds(10));
  ASSERT_TRUE(away.ok()) << away.error().message();
  EXPECT_FALSE(stack_->TakeContainerdAway(Outage::kSigkill, seconds(1)).ok()) << "already away";
  const std::int64_t began = sys::MonotonicMillis();
  Status stopped = stack_->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped.error().message();
  EXPECT_LT(sys::MonotonicMillis() - began, 10000);
  EXPECT_NE(stack_->ContainerdLog().find("containerd successfully booted"), std::string::npos);
}

// Recorded strace -f -ttt lines: one thread's connect split by another thread's close.
TEST(SyscallProbeTrace, CountsConnectsToTheSocketPerWindowSecond) {
  const std::string trace =
      "101 1000.100000 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 9\n"
      "101 1000.100100 connect(9, {sa_family=AF_UNIX, sun_path=\"/s/containerd.sock\"}, 21) = "
      "-1 ENOENT (No such file or directory)\n"
      "101 1000.100200 close(9)        = 0\n"
      "102 1000.200000 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 10\n"
      "101 1000.300000 connect(9, {sa_family=AF_UNIX, sun_path=\"/s/containerd.sock\"}, 21 "
      "<unfinished ...>\n"
      "102 1000.300100 close(10 <unfinished ...>\n"
      "101 1000.300200 <... connect resumed>) = -1 ECONNREFUSED (Connection refused)\n"
      "102 1000.300300 <... close resumed>) = 0\n"
      "101 1001.500000 connect(11, {sa_family=AF_UNIX, sun_path=\"/s/containerd.sock\"}, 21) = 0\n"
      // A vforked child (ps for `docker top`) runs before its parent's clone returns; neither
      // it nor what it forks is dockerd. A new thread is.
      "101 1001.510000 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD <unfinished "
      "...>\n"
      "103 1001.520000 close(3)        = 0\n"
      "103 1001.530000 clone(child_stack=NULL, flags=SIGCHLD) = 104\n"
      "104 1001.540000 close(3)        = 0\n"
      "101 1001.550000 <... clone resumed>) = 103\n"
      "101 1001.560000 clone(child_stack=0xc000100000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|"
      "CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS, tls=0xc000090090) = 105\n"
      "105 1001.570000 close(4)        = 0\n"
      "101 1001.600000 connect(12, {sa_family=AF_UNIX, sun_path=\"/s/other.sock\"}, 16) = 0\n"
      "+++ exited with 0 +++\n"
      "101 1002.600000 connect(13, {sa_family=AF_UNIX, sun_path=\"/s/containerd.sock\"}, 21 "
      "<unfinished ...>\n";
  const std::vector<stack::ProbeWindow> windows = {
      {"outage", 1000000000, 1002000000},  // two whole seconds
      {"after", 1002000000, 1002900000},   // no whole second
      {"outage", 1002500000, 1003600000},  // one more second of "outage"
      {"held", 1004000000, 1004990000},    // a millisecond timer's "1 s": one second
  };
  const auto series = stack::CountTraceSeries(trace, "/s/containerd.sock", windows);
  auto values = [&](const std::string& metric, const std::string& window) {
    const signature::ObservedSeries* found = Find(series, metric, window);
    return found == nullptr ? std::vector<double>{-1} : found->per_second;
  };
  EXPECT_EQ(values("connect", "outage"), (std::vector<double>{2, 1, 1}));
  EXPECT_EQ(values("connect_errors", "outage"), (std::vector<double>{2, 0, 0}));
  EXPECT_EQ(values("socket", "outage"), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(values("close", "outage"), (std::vector<double>{2, 1, 0}));
  EXPECT_EQ(values("connect", "after"), std::vector<double>{});
  EXPECT_EQ(values("connect", "held"), std::vector<double>{0});
}

}  // namespace
}  // namespace wedge
