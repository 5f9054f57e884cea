#include "wedge/inject/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace wedge::inject {
namespace {

namespace fs = std::filesystem;

// A small table with the shapes of systemd's: nesting two deep and a shared @default.
constexpr const char* kTinyTable = R"({
  "systemd_version": "252",
  "groups": {
    "@default": ["exit_group", "futex"],
    "@io": ["read", "write"],
    "@res": ["setrlimit", "nice"],
    "@svc": ["@io", "@res", "openat"],
    "@all": ["@svc", "@default", "kill"],
    "@broken": ["@io", "@missing"],
    "@loop": ["@loop2"],
    "@loop2": ["@loop", "read"]
  }
})";

SyscallGroups Tiny() {
  Result<SyscallGroups> groups = SyscallGroups::ParseJson(kTinyTable);
  EXPECT_TRUE(groups.ok()) << groups.error().message();
  return std::move(groups).value();
}

std::set<std::string> Names(std::initializer_list<const char*> names) {
  return std::set<std::string>(names.begin(), names.end());
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> RunAndCapture(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return out;
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// --- the group table -------------------------------------------------------------------------

TEST(SyscallGroups, TheBuiltinTableIsSystemd252sWithNestedGroupsKeptAsPrinted) {
  const SyscallGroups& groups = SyscallGroups::Builtin();
  EXPECT_EQ(groups.systemd_version(), "252");
  ASSERT_TRUE(groups.groups().contains("@system-service"));
  const std::vector<std::string>& service = groups.groups().at("@system-service");
  EXPECT_NE(std::find(service.begin(), service.end(), "@resources"), service.end());
  EXPECT_NE(std::find(service.begin(), service.end(), "@default"), service.end());
  const std::vector<std::string>& resources = groups.groups().at("@resources");
  EXPECT_NE(std::find(resources.begin(), resources.end(), "setrlimit"), resources.end());
  // prlimit64 is in @default in systemd 252, not in @resources: Go >= 1.21 uses it.
  EXPECT_EQ(std::find(resources.begin(), resources.end(), "prlimit64"), resources.end());
  EXPECT_TRUE(groups.groups().contains("@known"));
}

TEST(SyscallGroups, TheBuiltinTableMatchesWhatTheInstalledSystemdAnalyzePrints) {
  if (!OnPath("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
  std::optional<std::string> version = RunAndCapture("systemd-analyze --version");
  ASSERT_TRUE(version.has_value());
  const std::string expected = "systemd " + SyscallGroups::Builtin().systemd_version() + " ";
  if (!version->starts_with(expected)) {
    GTEST_SKIP() << "installed " << version->substr(0, version->find('\n'))
                 << "; the built-in table is from systemd "
                 << SyscallGroups::Builtin().systemd_version();
  }
  std::optional<std::string> text =
      RunAndCapture("SYSTEMD_COLORS=0 systemd-analyze --no-pager syscall-filter 2>/dev/null");
  ASSERT_TRUE(text.has_value()) << "systemd-analyze syscall-filter failed";
  Result<SyscallGroups> parsed = SyscallGroups::ParseSystemdAnalyze(*text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->groups(), SyscallGroups::Builtin().groups())
      << "regenerate data/systemd-syscall-groups.json with tools/gen-syscall-groups";
}

TEST(SyscallGroups, TheRepositoryDataFileLoadsToTheBuiltinTable) {
  Result<SyscallGroups> loaded =
      SyscallGroups::Load(fs::path(WEDGE_SOURCE_DIR) / "data" / "systemd-syscall-groups.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message();
  EXPECT_EQ(loaded->groups(), SyscallGroups::Builtin().groups());
  EXPECT_EQ(loaded->systemd_version(), "252");
}

TEST(SyscallGroups, SystemdAnalyzeOutputParsesWithoutDescriptionsOrTheUngroupedSection) {
  const std::string text =
      "\x1b[1m@default\x1b[0m\n"
      "    # System calls that are always permitted\n"
      "    exit_group\n"
      "    futex\n"
      "\n"
      "@svc\n"
      "    # General system service operations\n"
      "    @default\n"
      "    read\n"
      "\n"
      "# Ungrouped System Calls (known but not included in any of the groups except @known):\n"
      "#   arc_gettls\n"
      "\n"
      "# Unlisted System Calls (supported by the local kernel, but not included in any of the "
      "groups listed above):\n"
      "#   landlock_restrict_self\n"
      "\n"
      "# Not showing unlisted system calls, couldn't retrieve kernel system call list: ENOENT\n";
  Result<SyscallGroups> parsed = SyscallGroups::ParseSystemdAnalyze(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  const std::map<std::string, std::vector<std::string>> expected = {
      {"@default", {"exit_group", "futex"}}, {"@svc", {"@default", "read"}}};
  EXPECT_EQ(parsed->groups(), expected);
}

TEST(SyscallGroups, SystemdAnalyzeOutputWithAMemberOutsideAGroupIsRejected) {
  EXPECT_FALSE(SyscallGroups::ParseSystemdAnalyze("    read\n").ok());
  EXPECT_FALSE(SyscallGroups::ParseSystemdAnalyze("").ok());
}

TEST(SyscallGroups, AMalformedJsonTableIsRejected) {
  EXPECT_FALSE(SyscallGroups::ParseJson("{").ok());
  EXPECT_FALSE(SyscallGroups::ParseJson(R"({"systemd_version": "252", "groups": {}})").ok());
  EXPECT_FALSE(
      SyscallGroups::ParseJson(R"({"systemd_version": "252", "groups": {"io": ["read"]}})").ok());
  EXPECT_FALSE(
      SyscallGroups::ParseJson(R"({"systemd_version": "252", "groups": {"@io": [1]}})").ok());
}

TEST(SyscallGroups, ExpandingAGroupFollowsNestedGroupsAllTheWayDown) {
  Result<std::set<std::string>> all = Tiny().Expand("@all");
  ASSERT_TRUE(all.ok()) << all.error().message();
  EXPECT_EQ(*all,
            Names({"read", "write", "setrlimit", "nice", "openat", "exit_group", "futex", "kill"}));
}

TEST(SyscallGroups, ExpandingAnUnknownGroupIsAnError) {
  Result<std::set<std::string>> missing = Tiny().Expand("@nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("unknown syscall group '@nope'"), std::string::npos);
}

TEST(SyscallGroups, AnUnknownNestedGroupIsAnErrorNamingTheGroupThatUsesIt) {
  Result<std::set<std::string>> broken = Tiny().Expand("@broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message().find("'@missing' (in '@broken')"), std::string::npos)
      << broken.error().message();
}

TEST(SyscallGroups, AGroupThatIncludesItselfIsAnErrorNotARecursionWithoutEnd) {
  EXPECT_FALSE(Tiny().Expand("@loop").ok());
}

TEST(SyscallGroups, EverySystemdGroupExpandsAndSystemServiceIncludesItsNestedGroups) {
  const SyscallGroups& groups = SyscallGroups::Builtin();
  for (const auto& [name, members] : groups.groups()) {
    EXPECT_TRUE(groups.Expand(name).ok()) << name;
  }
  Result<std::set<std::string>> service = groups.Expand("@system-service");
  ASSERT_TRUE(service.ok());
  EXPECT_TRUE(service->contains("setrlimit"));  // via @resources
  EXPECT_TRUE(service->contains("read"));       // via @basic-io
  EXPECT_TRUE(service->contains("futex"));      // via @default
  EXPECT_FALSE(service->contains("@resources"));
}

// --- combining SystemCallFilter= lines -------------------------------------------------------

TEST(CombineSystemCallFilter, AFirstPlainLineMakesAnAllowListThatIncludesDefault) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"@io"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_TRUE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"exit_group", "futex", "read", "write"}));
}

TEST(CombineSystemCallFilter, InAllowListModeATildeLineRemoves) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"@svc", "~@res write"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_TRUE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"exit_group", "futex", "read", "openat"}));
}

TEST(CombineSystemCallFilter, InAllowListModeALaterPlainLineAdds) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"@io", "nice @res"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_TRUE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"exit_group", "futex", "read", "write", "nice", "setrlimit"}));
}

TEST(CombineSystemCallFilter, AFirstTildeLineMakesADenyListWithoutDefault) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"~@res"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_FALSE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"setrlimit", "nice"}));
}

TEST(CombineSystemCallFilter, InDenyListModeALaterTildeLineAddsToTheDeniedSet) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"~@res", "~@io"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_FALSE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"setrlimit", "nice", "read", "write"}));
}

TEST(CombineSystemCallFilter, InDenyListModeAPlainLineRemovesFromTheDeniedSet) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"~@svc", "@io setrlimit"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_FALSE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"nice", "openat"}));
}

TEST(CombineSystemCallFilter, AnEmptyLineResetsAndTheNextLineDecidesTheModeAgain) {
  Result<SyscallFilter> deny = CombineSystemCallFilter({"@io", "", "~@res"}, Tiny());
  ASSERT_TRUE(deny.ok()) << deny.error().message();
  EXPECT_FALSE(deny->allow_list);
  EXPECT_EQ(deny->syscalls, Names({"setrlimit", "nice"}));

  Result<SyscallFilter> allow = CombineSystemCallFilter({"~@res", "", "@io"}, Tiny());
  ASSERT_TRUE(allow.ok()) << allow.error().message();
  EXPECT_TRUE(allow->allow_list);
  EXPECT_EQ(allow->syscalls, Names({"exit_group", "futex", "read", "write"}));

  Result<SyscallFilter> nothing = CombineSystemCallFilter({"@io", ""}, Tiny());
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->allow_list);
  EXPECT_TRUE(nothing->syscalls.empty());
}

TEST(CombineSystemCallFilter, SpacesAfterTheTildeAndBetweenEntriesAreAllowed) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"  ~  @res \t kill  "}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_FALSE(filter->allow_list);
  EXPECT_EQ(filter->syscalls, Names({"setrlimit", "nice", "kill"}));
}

TEST(CombineSystemCallFilter, UnknownSyscallNamesAreKeptForTheBuilderToSkip) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"~no_such_call"}, Tiny());
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_EQ(filter->syscalls, Names({"no_such_call"}));
}

TEST(CombineSystemCallFilter, AnUnknownGroupIsAnErrorNamingTheLine) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"@io", "~@nope"}, Tiny());
  ASSERT_FALSE(filter.ok());
  EXPECT_NE(filter.error().message().find("SystemCallFilter=~@nope"), std::string::npos)
      << filter.error().message();
}

TEST(CombineSystemCallFilter, AnErrnoSuffixIsRejectedBecauseWedgeOnlyKills) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({"~@res:EPERM"}, Tiny());
  ASSERT_FALSE(filter.ok());
  EXPECT_NE(filter.error().message().find(":ERRNO"), std::string::npos) << filter.error().message();
}

TEST(CombineSystemCallFilter, NoLinesAreAnEmptyDenyList) {
  Result<SyscallFilter> filter = CombineSystemCallFilter({}, Tiny());
  ASSERT_TRUE(filter.ok());
  EXPECT_FALSE(filter->allow_list);
  EXPECT_TRUE(filter->syscalls.empty());
}

// Seed 002: the docuum unit's SystemCallFilter=@system-service + SystemCallFilter=~@privileged
// @resources, under which Go 1.19's os init setrlimit(RLIMIT_NOFILE) kills the docker CLI.
TEST(SeedUnit002, TheFilterAllowsSystemServiceAndDefaultMinusPrivilegedAndResources) {
  const SyscallGroups& groups = SyscallGroups::Builtin();
  Result<SyscallFilter> filter =
      CombineSystemCallFilter({"@system-service", "~@privileged @resources"}, groups);
  ASSERT_TRUE(filter.ok()) << filter.error().message();
  EXPECT_TRUE(filter->allow_list);

  std::set<std::string> expected = groups.Expand("@default").value();
  expected.merge(groups.Expand("@system-service").value());
  for (const char* removed : {"@privileged", "@resources"}) {
    const std::set<std::string> names = groups.Expand(removed).value();
    for (const std::string& name : names) expected.erase(name);
  }
  EXPECT_EQ(filter->syscalls, expected);

  for (const char* allowed : {"read", "futex", "getrlimit", "prlimit64", "openat", "clone",
                              "epoll_pwait", "rt_sigaction", "mmap", "exit_group"}) {
    EXPECT_TRUE(filter->syscalls.contains(allowed)) << allowed;
  }
  for (const char* killed : {"setrlimit", "sched_setaffinity", "setpriority", "capset", "setfsuid",
                             "chown", "setuid", "mount", "ptrace"}) {
    EXPECT_FALSE(filter->syscalls.contains(killed)) << killed;
  }
}

// --- building the BPF program ----------------------------------------------------------------

TEST(SeccompProfileBuilder, TheSeedUnitBuildsAnAllowListProgramForTheNativeArchitecture) {
  Result<SeccompProfile> profile =
      SeccompProfileBuilder()
          .UseSystemCallFilterLines({"@system-service", "~@privileged @resources"})
          .SetNativeArchitectureOnly(true)
          .TryBuild();
  ASSERT_TRUE(profile.ok()) << profile.error().message();
  EXPECT_TRUE(profile->allow_list);
  EXPECT_TRUE(profile->native_architecture_only);
  EXPECT_TRUE(profile->no_new_privileges);
  EXPECT_FALSE(profile->bpf.empty());
  EXPECT_EQ(profile->bpf.size() % 8, 0u);
  EXPECT_GT(profile->denied_count, 200);
  EXPECT_NE(profile->Describe().find("allow-list of"), std::string::npos) << profile->Describe();
  std::cout << "seed 002 profile: " << profile->Describe() << "\n";
}

TEST(SeccompProfileBuilder, NamesUnknownToLibseccompAreSkippedAndListed) {
  SyscallFilter filter;
  filter.syscalls = {"setrlimit", "no_such_syscall"};
  Result<SeccompProfile> profile = SeccompProfileBuilder().UseSystemCallFilter(filter).TryBuild();
  ASSERT_TRUE(profile.ok()) << profile.error().message();
  EXPECT_FALSE(profile->allow_list);
  EXPECT_EQ(profile->skipped_syscalls, std::vector<std::string>{"no_such_syscall"});
  EXPECT_EQ(profile->denied_count, 1);
}

TEST(SeccompProfileBuilder, AnUnknownGroupInTheLinesIsReportedByTryBuild) {
  Result<SeccompProfile> profile =
      SeccompProfileBuilder().UseSystemCallFilterLines({"@system-service", "~@nope"}).TryBuild();
  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.error().message().find("@nope"), std::string::npos);
}

TEST(SeccompProfileBuilder, TheFirstErrorIsKeptAndLaterCallsDoNotReplaceIt) {
  Result<SeccompProfile> profile = SeccompProfileBuilder()
                                       .UseSystemCallFilterLines({"~@nope"})
                                       .UseSystemCallFilterLines({"~@also-unknown"})
                                       .UseSystemCallFilter(SyscallFilter{})
                                       .TryBuild();
  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.error().message().find("@nope"), std::string::npos)
      << profile.error().message();
}

TEST(SeccompProfileBuilder, ASecondFilterIsAnError) {
  Result<SeccompProfile> profile = SeccompProfileBuilder()
                                       .UseSystemCallFilter(SyscallFilter{})
                                       .UseSystemCallFilter(SyscallFilter{})
                                       .TryBuild();
  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.error().message().find("second SystemCallFilter"), std::string::npos);
}

TEST(SeccompProfileBuilder, WithoutAFilterTheProfileOnlySetsNoNewPrivs) {
  Result<SeccompProfile> profile = SeccompProfileBuilder().SetNoNewPrivileges(true).TryBuild();
  ASSERT_TRUE(profile.ok()) << profile.error().message();
  EXPECT_TRUE(profile->bpf.empty());
  EXPECT_TRUE(profile->no_new_privileges);
  EXPECT_EQ(profile->Describe(), "no syscall filter; no_new_privs");
}

TEST(SeccompProfileBuilder, AnEmptyDenyListWithNativeArchitectureStillBuildsAProgram) {
  SyscallFilter filter;
  filter.native_architecture_only = true;
  Result<SeccompProfile> profile = SeccompProfileBuilder().UseSystemCallFilter(filter).TryBuild();
  ASSERT_TRUE(profile.ok()) << profile.error().message();
  EXPECT_TRUE(profile->native_architecture_only);
  EXPECT_FALSE(profile->bpf.empty());
}

// --- the kernel's audit record ---------------------------------------------------------------

TEST(SeccompAuditRecord, ARecordReadFromDevKmsgNamesPidSignalAndSyscall) {
  const std::string line =
      ReadText(fs::path(WEDGE_TEST_DATA_DIR) / "kmsg" / "docker-setrlimit-killed.kmsg");
  std::optional<SeccompKill> kill = ParseSeccompAuditRecord(line);
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->pid, 10214);
  EXPECT_EQ(kill->signal, SIGSYS);
  EXPECT_EQ(kill->syscall, 160);
  EXPECT_EQ(kill->syscall_name, "setrlimit");
  EXPECT_EQ(kill->arch, "c000003e");
  EXPECT_EQ(kill->code, 0x80000000u);
  EXPECT_EQ(kill->record.back(), '0');  // the trailing newline is not part of the record
}

TEST(SeccompAuditRecord, ADmesgLineParsesTheSameWay) {
  const std::string line =
      ReadText(fs::path(WEDGE_TEST_DATA_DIR) / "kmsg" / "getppid-killed.dmesg");
  std::optional<SeccompKill> kill = ParseSeccompAuditRecord(line);
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->pid, 30347);
  EXPECT_EQ(kill->syscall, 110);
  EXPECT_EQ(kill->syscall_name, "getppid");
}

TEST(SeccompAuditRecord, AnAuditdLogLineParsesTheSameWay) {
  std::optional<SeccompKill> kill = ParseSeccompAuditRecord(
      "type=SECCOMP msg=audit(1677283392.831:2): auid=4294967295 uid=0 gid=0 ses=4294967295 "
      "subj=unconfined pid=77763 comm=\"docker\" exe=\"/usr/bin/docker\" sig=31 arch=c000003e "
      "syscall=160 compat=0 ip=0x5568dbcb5c4e code=0x80000000");
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->pid, 77763);
  EXPECT_EQ(kill->syscall_name, "setrlimit");
}

TEST(SeccompAuditRecord, TheSeedsJournalLineCutShortIsNotARecord) {
  const std::string line =
      ReadText(fs::path(WEDGE_TEST_DATA_DIR) / "kmsg" / "seed-002-journal-truncated.txt");
  EXPECT_FALSE(ParseSeccompAuditRecord(line).has_value());
}

TEST(SeccompAuditRecord, OtherKernelMessagesAreNotRecords) {
  EXPECT_FALSE(
      ParseSeccompAuditRecord("6,344,1316051,-;EXT4-fs (vda): mounted filesystem").has_value());
  EXPECT_FALSE(
      ParseSeccompAuditRecord("audit: type=1400 audit(1.2:3): apparmor=\"DENIED\"").has_value());
}

TEST(SeccompAuditRecord, AnX86SyscallResolvesWithTheI386Table) {
  std::optional<SeccompKill> kill = ParseSeccompAuditRecord(
      "audit: type=1326 audit(1.2:3): auid=0 uid=0 gid=0 ses=1 pid=7 comm=\"a\" exe=\"/a\" sig=31 "
      "arch=40000003 syscall=75 compat=1 ip=0x1 code=0x80000000");
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->syscall_name, "setrlimit");
}

// --- live: the filter in a real child, as root ------------------------------------------------

class LiveSeccomp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (reads /dev/kmsg)";
    Result<SeccompProfile> profile =
        SeccompProfileBuilder()
            .UseSystemCallFilterLines({"@system-service", "~@privileged @resources"})
            .SetNativeArchitectureOnly(true)
            .SetNoNewPrivileges(true)
            .TryBuild();
    ASSERT_TRUE(profile.ok()) << profile.error().message();
    profile_ = std::move(profile).value();
  }

  // Forks a child that installs the seed profile and then runs `body`; returns its wait status.
  template <typename Body>
  int RunConfined(Body body, pid_t* child = nullptr) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (InstallSeccompProfile(profile_) != 0) ::_exit(122);
      body();
      ::_exit(0);
    }
    if (child != nullptr) *child = pid;
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return status;
  }

  SeccompProfile profile_;
};

TEST_F(LiveSeccomp, SetrlimitUnderTheSeedUnitsFilterKillsWithSigsysAndTheKernelLogNamesIt) {
  Result<KernelLogCursor> cursor = KernelLogCursor::OpenAtEnd();
  ASSERT_TRUE(cursor.ok()) << cursor.error().message();
  pid_t pid = 0;
  const int status = RunConfined(
      [] {
        rlimit limit{};
        ::syscall(SYS_getrlimit, RLIMIT_NOFILE, &limit);
        ::syscall(SYS_setrlimit, RLIMIT_NOFILE, &limit);  // Go 1.19's os init does this
      },
      &pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);

  const std::string logged = ReadText("/proc/sys/kernel/seccomp/actions_logged");
  if (logged.find("kill_process") == std::string::npos) {
    GTEST_SKIP() << "kernel.seccomp.actions_logged does not include kill_process: " << logged;
  }
  const auto start = std::chrono::steady_clock::now();
  std::optional<SeccompKill> kill = cursor->FindSeccompKill(pid, 5000);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "FindSeccompKill took " << took.count() << " us\n";
  ASSERT_TRUE(kill.has_value())
      << "no audit record for pid " << pid
      << " in /dev/kmsg within 5 s (kauditd prints through printk_ratelimit(): at most "
         "kernel.printk_ratelimit_burst records per kernel.printk_ratelimit seconds)";
  EXPECT_EQ(kill->signal, SIGSYS);
  EXPECT_EQ(kill->syscall, SYS_setrlimit);
  EXPECT_EQ(kill->syscall_name, "setrlimit");
  EXPECT_EQ(kill->code, 0x80000000u);  // SECCOMP_RET_KILL_PROCESS
  std::cout << kill->record << "\n";
}

TEST_F(LiveSeccomp, EveryKillOfABurstBeyondThePrintkRateLimitIsFound) {
  // printk_ratelimit lets 10 records through per 5 s; the audit multicast group loses none.
  Result<KernelLogCursor> cursor = KernelLogCursor::OpenAtEnd();
  ASSERT_TRUE(cursor.ok()) << cursor.error().message();
  std::vector<pid_t> pids;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = 0;
    const int status = RunConfined(
        [] {
          rlimit limit{};
          ::syscall(SYS_getrlimit, RLIMIT_NOFILE, &limit);
          ::syscall(SYS_setrlimit, RLIMIT_NOFILE, &limit);
        },
        &pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << "wait status " << status;
    pids.push_back(pid);
  }
  int found = 0;
  for (pid_t pid : pids) {
    std::optional<SeccompKill> kill = cursor->FindSeccompKill(pid, 2000);
    if (kill && kill->syscall == SYS_setrlimit) ++found;
  }
  EXPECT_EQ(found, 20);
}

TEST_F(LiveSeccomp, AChildUsingOnlyAllowedSyscallsExitsZero) {
  const int status = RunConfined([] {
    rlimit limit{};
    ::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit);  // @default
    ::syscall(SYS_getpid);
    char byte = 0;
    const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY));
    ::syscall(SYS_read, fd, &byte, 1);
    ::syscall(SYS_close, fd);
  });
  EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(LiveSeccomp, InstallingReportsNoErrorAndSetsNoNewPrivs) {
  const int status = RunConfined([] {
    if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) ::_exit(3);
  });
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

#if defined(__x86_64__)
// getpid through the i386 ABI (int 0x80, nr 20), as a 32-bit program or a stray int 0x80 does.
long GetpidThroughInt80() {
  long result = 20;
  __asm__ volatile("int $0x80" : "+a"(result) : : "memory");
  return result;
}

class LiveForeignArchitecture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (reads /dev/kmsg)";
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(GetpidThroughInt80() > 0 ? 0 : 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      GTEST_SKIP() << "int 0x80 does not work here (IA32 emulation off), wait status " << status;
    }
  }

  static int RunWith(const SyscallFilter& filter, pid_t& pid) {
    Result<SeccompProfile> profile = SeccompProfileBuilder().UseSystemCallFilter(filter).TryBuild();
    EXPECT_TRUE(profile.ok()) << profile.error().message();
    pid = ::fork();
    if (pid == 0) {
      if (InstallSeccompProfile(*profile) != 0) ::_exit(122);
      ::_exit(GetpidThroughInt80() > 0 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }
};

TEST_F(LiveForeignArchitecture, NativeArchitectureOnlyKillsAnI386Syscall) {
  Result<KernelLogCursor> cursor = KernelLogCursor::OpenAtEnd();
  ASSERT_TRUE(cursor.ok()) << cursor.error().message();
  SyscallFilter filter;  // what SystemCallArchitectures=native alone gives the builder
  filter.native_architecture_only = true;
  pid_t pid = 0;
  const int status = RunWith(filter, pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
  std::optional<SeccompKill> kill = cursor->FindSeccompKill(pid, 5000);
  ASSERT_TRUE(kill.has_value()) << "no audit record for pid " << pid;
  EXPECT_EQ(kill->arch, "40000003");  // AUDIT_ARCH_I386
  EXPECT_EQ(kill->syscall_name, "getpid");
}

TEST_F(LiveForeignArchitecture, WithoutNativeArchitectureOnlyTheDenyListAppliesToTheI386AbiToo) {
  pid_t pid = 0;
  SyscallFilter empty;
  const int allowed = RunWith(empty, pid);
  EXPECT_TRUE(WIFEXITED(allowed) && WEXITSTATUS(allowed) == 0) << "wait status " << allowed;

  SyscallFilter deny_getpid;
  deny_getpid.syscalls = {"getpid"};
  const int denied = RunWith(deny_getpid, pid);
  ASSERT_TRUE(WIFSIGNALED(denied)) << "wait status " << denied;
  EXPECT_EQ(WTERMSIG(denied), SIGSYS);
}
#endif

}  // namespace
}  // namespace wedge::inject
