// What wedge starts is root's alone: no other local user, not even a member of the host's
// "docker" group, may connect to the private stack's sockets or read its logs and configs. And
// the stack's socket paths do not depend on the scenario's name, so every valid name runs.
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "scenario_test_support.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(WEDGE_BINARY).parent_path();
const fs::path kScenarioDir = fs::path(WEDGE_SOURCE_DIR) / "scenarios";

// What one user may do to the stack: bit i of the result is set when target i was reachable
// (a socket that accepted a connection, a file that opened for reading).
struct Target {
  fs::path path;
  bool socket = false;
};

// Tries every target as `uid` with `gid` and `groups`, in a child that has dropped root.
int ReachableAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
                const std::vector<Target>& targets) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      ::_exit(255);
    }
    int reached = 0;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const Target& target = targets[i];
      if (target.socket) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", target.path.c_str());
        if (fd >= 0 &&
            ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
          reached |= 1 << i;
        }
        if (fd >= 0) ::close(fd);
      } else {
        const int fd = ::open(target.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          reached |= 1 << i;
          ::close(fd);
        }
      }
    }
    ::_exit(reached);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

std::string Describe(const std::vector<Target>& targets, int reached) {
  std::string text;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (reached & (1 << i)) text += " " + targets[i].path.string();
  }
  return text.empty() ? "(none)" : text;
}

// A throwaway system user in the host's "docker" group, removed when the test ends.
class ThrowawayDockerUser {
 public:
  ThrowawayDockerUser() : name_("wedge-t" + std::to_string(::getpid())) {
    Result<sys::CommandOutput> added =
        sys::RunCommand("useradd", {"--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                    "--groups", "docker", name_});
    created_ = added.ok() && added->exit_code == 0;
    if (!created_) error_ = added.ok() ? added->output : added.error().message();
  }
  ~ThrowawayDockerUser() {
    if (created_) (void)sys::RunCommand("userdel", {name_});
  }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }
  const std::string& error() const { return error_; }

 private:
  std::string name_;
  bool created_ = false;
  std::string error_;
};

std::vector<gid_t> GroupsOf(const passwd& user) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  ::getgrouplist(user.pw_name, user.pw_gid, groups.data(), &count);
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  return groups;
}

TEST(PrivateStackAccess, NeitherADockerGroupMemberNorNobodyReachesItsSocketsOrLogs) {
  if (::geteuid() != 0) GTEST_SKIP() << "the private docker stack runs as root";
  if (::getgrnam("docker") == nullptr) GTEST_SKIP() << "this host has no docker group";
  const fs::path state_dir = sys::DefaultStateDirectory();
  Result<sys::RunLock> lock = sys::RunLock::Acquire(state_dir, [](const std::string&) {});
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  const testing::HostSnapshot before = testing::HostNow();
  const std::string run_id = "access-test-" + std::to_string(::getpid());
  const fs::path run_dir = state_dir / "runs" / run_id;
  {
    Result<std::unique_ptr<sys::Journal>> journal = sys::Journal::Create(state_dir, run_id);
    ASSERT_TRUE(journal.ok()) << journal.error().message();
    ASSERT_TRUE((*journal)->Record(sys::DirectoryChange{run_dir}).ok());
    ASSERT_TRUE(sys::MakePrivateDirectory(run_dir).ok());
    stack::StackOptions options;
    options.binaries = stack::Binaries::Defaults();
    options.run_directory = run_dir;
    options.fixtures_dir = kFixtures;
    Result<std::unique_ptr<stack::DockerStack>> started =
        stack::DockerStack::Start(**journal, options);
    ASSERT_TRUE(started.ok()) << started.error().message();
    const fs::path stack_dir = (*started)->directory();

    const std::vector<Target> targets = {
        {stack_dir / "docker.sock", true},
        {stack_dir / "containerd.sock", true},
        {stack_dir / "dockerd.log", false},
        {stack_dir / "containerd.log", false},
        {stack_dir / "daemon.json", false},
        {stack_dir / "containerd.toml", false},
        {state_dir / "journal" / (run_id + ".jsonl"), false},
    };
    // The probe itself works: root reaches every one of them.
    const int all = (1 << targets.size()) - 1;
    EXPECT_EQ(ReachableAs(0, 0, {0}, targets), all)
        << "root could not reach:" << Describe(targets, all & ~ReachableAs(0, 0, {0}, targets));
    // The sockets' group is root's whatever groups the host has.
    for (const char* socket : {"docker.sock", "containerd.sock"}) {
      struct stat st {};
      ASSERT_EQ(::stat((stack_dir / socket).c_str(), &st), 0) << socket;
      EXPECT_EQ(st.st_gid, 0u) << socket << " belongs to gid " << st.st_gid;
      EXPECT_EQ(st.st_mode & 0007, 0u) << socket << " is open to others";
    }
    for (const fs::path& directory : {state_dir, state_dir / "runs", run_dir, stack_dir}) {
      struct stat st {};
      ASSERT_EQ(::stat(directory.c_str(), &st), 0) << directory;
      EXPECT_EQ(st.st_mode & 07777, 0700u) << directory;
    }

    ThrowawayDockerUser docker_user;
    ASSERT_TRUE(docker_user.created()) << "useradd: " << docker_user.error();
    const passwd* member = ::getpwnam(docker_user.name().c_str());
    ASSERT_NE(member, nullptr);
    const std::vector<gid_t> member_groups = GroupsOf(*member);
    ASSERT_NE(std::find(member_groups.begin(), member_groups.end(), ::getgrnam("docker")->gr_gid),
              member_groups.end());
    const int member_reached = ReachableAs(member->pw_uid, member->pw_gid, member_groups, targets);
    EXPECT_EQ(member_reached, 0) << "a docker group member reached:"
                                 << Describe(targets, member_reached);

    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    const int nobody_reached = ReachableAs(nobody->pw_uid, nobody->pw_gid, {}, targets);
    EXPECT_EQ(nobody_reached, 0) << "nobody reached:" << Describe(targets, nobody_reached);

    EXPECT_TRUE((*started)->Stop().ok());
  }
  testing::ExpectHostUnchanged(before, std::chrono::seconds(2));
}

// Every shipped scenario under a 64-character name (the loader's longest): the stack's socket
// paths come from a short run id, so a long name breaks nothing.
TEST(ScenarioNames, EveryScenarioKindRunsUnderASixtyFourCharacterName) {
  if (::geteuid() != 0) GTEST_SKIP() << "scenarios run as root";
  char pattern[] = "/tmp/wedge-long-names-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const fs::path directory = pattern;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kScenarioDir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    nlohmann::json scenario = nlohmann::json::parse(in);
    std::string name = scenario["name"].get<std::string>();
    name += "-" + std::string(64, 'x');
    name.resize(64);
    scenario["name"] = name;
    names.push_back(name);
    std::ofstream out(directory / entry.path().filename());
    out << scenario.dump(2) << "\n";
  }
  ASSERT_GE(names.size(), 9u);
  const testing::HostSnapshot before = testing::HostNow();
  const fs::path report = directory / "report.json";
  testing::WedgeRun run = testing::RunWedge({"run", directory.string(), "--json", report.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  nlohmann::json results = testing::ReadJson(report)["results"];
  ASSERT_EQ(results.size(), names.size()) << run.output;
  for (const auto& result : results) {
    EXPECT_EQ(result["scenario"].get<std::string>().size(), 64u);
    EXPECT_EQ(result["verdict"], result["expected"])
        << result["scenario"] << ": " << result["reason"];
  }
  testing::ExpectHostUnchanged(before, std::chrono::seconds(2));
  fs::remove_all(directory);
}

}  // namespace
}  // namespace wedge
