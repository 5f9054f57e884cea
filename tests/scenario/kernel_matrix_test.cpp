// Scenario tests of the kernel matrix: the FUSE flush deadlock of pid-namespace teardown
// (kernel 5a8bee63b10f, reverted by 91ec6c85599b) on the host kernel natively and on Debian's
// 6.1 cloud kernel under qemu. 6.1 predates 5a8bee63b10f (v6.3), so its guest must reproduce
// the deadlock as the host does. They need qemu-system-x86 and the kernel package (fetched with
// apt into wedge's kernel cache); without either they are skipped, saying which.
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <boost/process.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "scenario_test_support.h"
#include "wedge/sys/command.h"
#include "wedge/vm/kernel.h"

namespace wedge {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using testing::ReadJson;
using testing::RunWedge;
using testing::WedgeRun;

const fs::path kScenario = fs::path(WEDGE_SOURCE_DIR) / "scenarios/fuse-flush-pidns-teardown.json";
constexpr const char* kDebian61Cloud = "linux-image-6.1.0-*-cloud-amd64";

// The processes of any guest run: qemu's command line names the guest's run directory.
std::vector<std::string> LiveGuestProcesses() {
  std::vector<std::string> live;
  for (const auto& process : testing::RunProcesses("/runs/guest-")) {
    if (process.find(" Z)") == std::string::npos) live.push_back(process);
  }
  return live;
}

class KernelMatrix : public testing::ScenarioTest {
 protected:
  void SetUp() override {
    testing::ScenarioTest::SetUp();
    if (IsSkipped()) return;
    auto qemu = sys::RunCommand("qemu-system-x86_64", {"--version"});
    if (!qemu.ok() || qemu->exit_code != 0) {
      GTEST_SKIP() << "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): "
                   << (qemu.ok() ? qemu->output : qemu.error().message());
    }
    // Fetches the package into the kernel cache if it is not there yet; the runs below then
    // find it cached.
    auto kernel =
        vm::ResolveKernel(*vm::ParseKernelSpec(kDebian61Cloud), vm::DefaultKernelCache(), nullptr);
    if (!kernel.ok()) {
      GTEST_SKIP() << "Debian's 6.1 cloud kernel cannot be had: " << kernel.error().message();
    }
    release_61_ = kernel->release;
  }

  std::string release_61_;
};

TEST_F(KernelMatrix, FuseFlushDeadlockReproducesOnTheHostAndOnDebian61TwiceAlike) {
  utsname host{};
  ASSERT_EQ(::uname(&host), 0);
  std::vector<nlohmann::json> matrices;
  for (int run = 0; run < 2; ++run) {
    WedgeRun wedge = RunWedge({"run", kScenario.string(), "--kernel", "host", "--kernel",
                               kDebian61Cloud, "--json", report_.string()});
    EXPECT_EQ(wedge.exit_code, 0) << wedge.output;
    nlohmann::json matrix = ReadJson(report_);
    ASSERT_EQ(matrix["wedge_matrix"], 1) << matrix.dump(2);
    ASSERT_EQ(matrix["kernels"].size(), 2u);
    EXPECT_EQ(matrix["kernels"][0]["release"], host.release);
    // The guest's report was written by wedge inside the guest: its host is the 6.1 kernel.
    EXPECT_EQ(matrix["kernels"][1]["report"]["host"]["kernel"]["release"], release_61_)
        << wedge.output;
    EXPECT_EQ(matrix["kernels"][1]["report"]["host"]["cgroup_mode"], "v2");
    ASSERT_EQ(matrix["cells"].size(), 2u);
    for (const auto& cell : matrix["cells"]) {
      EXPECT_EQ(cell["verdict"], "reproduced") << cell.dump(2) << "\n" << wedge.output;
    }
    EXPECT_NE(wedge.output.find("fuse-flush-pidns-teardown  reproduced"), std::string::npos)
        << wedge.output;
    matrices.push_back(std::move(matrix));
    EXPECT_TRUE(LiveGuestProcesses().empty());
    testing::ExpectHostUnchanged(before_);
  }
  for (size_t cell = 0; cell < 2; ++cell) {
    EXPECT_EQ(matrices[0]["cells"][cell]["verdict"], matrices[1]["cells"][cell]["verdict"]);
  }
}

TEST_F(KernelMatrix, OneGuestKernelWritesTheGuestsOwnReport) {
  WedgeRun wedge =
      RunWedge({"run", kScenario.string(), "--kernel", kDebian61Cloud, "--json", report_.string()});
  EXPECT_EQ(wedge.exit_code, 0) << wedge.output;
  nlohmann::json report = ReadJson(report_);
  EXPECT_EQ(report["host"]["kernel"]["release"], release_61_) << wedge.output;
  ASSERT_EQ(report["results"].size(), 1u);
  EXPECT_EQ(report["results"][0]["verdict"], "reproduced");
  EXPECT_EQ(report["results"][0]["host_clean"], true);
  testing::ExpectHostUnchanged(before_);
}

// The private stack in a guest (issue 17): seed 002's scenario drives the host's docker stack
// inside the 6.1 guest, as on the host: bookworm's CLI (Go 1.19) raises RLIMIT_NOFILE and the
// filter kills it with SIGSYS.
TEST_F(KernelMatrix, ADockerStackScenarioRunsInA61GuestWithTheHostsStack) {
  const fs::path seccomp = fs::path(WEDGE_SOURCE_DIR) / "scenarios/seccomp-resources-sigsys.json";
  WedgeRun wedge = RunWedge({"run", seccomp.string(), "--kernel", kDebian61Cloud, "--json",
                             report_.string(), "--guest-timeout", "600"});
  EXPECT_EQ(wedge.exit_code, 0) << wedge.output;
  nlohmann::json report = ReadJson(report_);
  EXPECT_EQ(report["host"]["kernel"]["release"], release_61_) << wedge.output;
  ASSERT_EQ(report["results"].size(), 1u) << wedge.output;
  EXPECT_EQ(report["results"][0]["verdict"], "reproduced") << wedge.output;
  EXPECT_EQ(report["results"][0]["host_clean"], true) << wedge.output;
  bool dockerd_described = false;
  for (const auto& binary : report["host"]["binaries"]) {
    if (binary["name"] == "dockerd") {
      dockerd_described = true;
      EXPECT_EQ(binary["path"], "/usr/sbin/dockerd");
      EXPECT_EQ(binary["version"].get<std::string>().find("unavailable"), std::string::npos)
          << binary.dump();
    }
  }
  EXPECT_TRUE(dockerd_described) << report["host"].dump(2);
  EXPECT_TRUE(LiveGuestProcesses().empty());
  testing::ExpectHostUnchanged(before_);
}

TEST_F(KernelMatrix, AGuestPastItsDeadlineIsKilledAndReportedStuck) {
  // One second is far too short for the guest to boot: it is still running at the deadline.
  WedgeRun wedge = RunWedge({"run", kScenario.string(), "--kernel", "host", "--kernel",
                             kDebian61Cloud, "--guest-timeout", "1", "--json", report_.string()});
  EXPECT_EQ(wedge.exit_code, 1) << wedge.output;
  nlohmann::json matrix = ReadJson(report_);
  ASSERT_EQ(matrix["cells"].size(), 2u);
  EXPECT_EQ(matrix["cells"][0]["verdict"], "reproduced");
  EXPECT_EQ(matrix["cells"][1]["verdict"], "guest-stuck");
  EXPECT_NE(matrix["cells"][1]["detail"].get<std::string>().find("killed"), std::string::npos);
  EXPECT_NE(wedge.output.find("guest-stuck !"), std::string::npos) << wedge.output;
  EXPECT_TRUE(LiveGuestProcesses().empty());
  testing::ExpectHostUnchanged(before_);
}

TEST_F(KernelMatrix, AGuestDeadlockedPastItsDeadlineIsKilledWithItsDeadlock) {
  // The deadlock of the FUSE scenario, held for a minute in the guest before wedge there would
  // capture and recover it: at the 20 s deadline the guest is deadlocked (its pid-ns init in
  // zap_pid_ns_processes, a thread in D in fuse_flush) and qemu is SIGKILLed.
  const fs::path held = fs::path(WEDGE_SOURCE_DIR) /
                        "tests/data/scenarios/guest/fuse-flush-pidns-teardown-held-60s.json";
  // A guest that brings no report back: --json writes the matrix, with the guest's console.
  WedgeRun wedge = RunWedge({"run", held.string(), "--kernel", kDebian61Cloud, "--guest-timeout",
                             "20", "--json", report_.string()});
  EXPECT_EQ(wedge.exit_code, 1) << wedge.output;
  nlohmann::json matrix = ReadJson(report_);
  ASSERT_EQ(matrix["kernels"].size(), 1u) << wedge.output;
  const nlohmann::json& guest = matrix["kernels"][0]["guest"];
  EXPECT_EQ(guest["outcome"], "guest-stuck") << wedge.output;
  std::string console;
  for (const auto& line : guest["console_tail"]) console += line.get<std::string>() + "\n";
  EXPECT_NE(console.find("waiting for the stall (settle 60000 ms"), std::string::npos)
      << "the guest should have been deadlocked when it was killed:\n"
      << console;
  EXPECT_EQ(matrix["cells"][0]["verdict"], "guest-stuck");
  EXPECT_TRUE(LiveGuestProcesses().empty());
  testing::ExpectHostUnchanged(before_);
}

TEST_F(KernelMatrix, BadKernelsAreRefusedBeforeAnythingChanges) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--kernel", "host", "--kernel", "linux-image-0.0.0-*-nonexistent"},
       "no package matches 'linux-image-0.0.0-*-nonexistent'"},
      {{"--kernel", "/nonexistent/vmlinuz-6.1.0"}, "open('/nonexistent/vmlinuz-6.1.0'): ENOENT"},
      {{"--kernel", "Linux;reboot"}, "neither host, a path"},
      {{"--kernel", "host", "--kernel", "host"}, "as an earlier --kernel does"},
  };
  for (const auto& [kernels, message] : cases) {
    std::vector<std::string> args = {"run", kScenario.string()};
    args.insert(args.end(), kernels.begin(), kernels.end());
    WedgeRun wedge = RunWedge(args);
    EXPECT_EQ(wedge.exit_code, 2) << wedge.output;
    EXPECT_NE(wedge.output.find(message), std::string::npos) << wedge.output;
    EXPECT_TRUE(testing::Diff(before_, testing::HostNow()).empty());
  }
}

// SIGKILL while the guest of `args` runs (stopped at the fault point "guest"); then `wedge
// cleanup` must leave the host as before.
void KillWhileTheGuestRunsThenCleanup(const std::vector<std::string>& args,
                                      const testing::HostSnapshot& before) {
  bp::ipstream out;
  bp::environment env = boost::this_process::environment();
  env["WEDGE_FAULT_STOP_AT"] = "guest";
  bp::child wedge(WEDGE_BINARY, bp::args(args), env, (bp::std_out & bp::std_err) > out);
  std::string output;
  for (std::string line; std::getline(out, line);) {
    output += line + "\n";
    if (line == "fault point: stopped before guest") break;
  }
  ASSERT_NE(output.find("fault point: stopped before guest"), std::string::npos) << output;
  EXPECT_FALSE(testing::Diff(before, testing::HostNow()).empty())
      << "the guest's journal and run directory should be there while it runs";
  ::kill(wedge.id(), SIGKILL);
  wedge.wait();
  WedgeRun cleanup = RunWedge({"cleanup"});
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.output;
  EXPECT_NE(cleanup.output.find("/runs/guest-"), std::string::npos) << cleanup.output;
  EXPECT_TRUE(LiveGuestProcesses().empty());
  testing::ExpectHostUnchanged(before);
}

TEST_F(KernelMatrix, CleanupUndoesARunKilledWhileItsGuestRuns) {
  if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
  KillWhileTheGuestRunsThenCleanup({"run", kScenario.string(), "--kernel", kDebian61Cloud},
                                   before_);
}

TEST_F(KernelMatrix, CleanupUndoesARunKilledWhileItsGuestRunsAReleasesStack) {
  if (!testing::WedgeHasFaultPoints()) GTEST_SKIP() << testing::kNeedsFaultPoints;
  const fs::path seccomp = fs::path(WEDGE_SOURCE_DIR) / "scenarios/seccomp-resources-sigsys.json";
  KillWhileTheGuestRunsThenCleanup(
      {"run", seccomp.string(), "--kernel", kDebian61Cloud, "--stack", "bullseye"}, before_);
}

}  // namespace
}  // namespace wedge
