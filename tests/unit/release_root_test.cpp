// The release stacks' pieces that need no archive: the host's apt sources, apt-cache's output,
// the cache's names, the binaries' paths and versions, and what a Go binary says of its Go.
#include "wedge/stack/release_root.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "wedge/base/debian_releases.h"
#include "wedge/stack/go_version.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;

TEST(MirrorFromSources, TakesTheFirstDebianSourceOfADeb822File) {
  // As the machine's /etc/apt/sources.list.d/debian.sources is written.
  const std::string sources =
      "Types: deb\n"
      "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
      "URIs: http://deb.debian.org/debian\n"
      "Suites: bookworm bookworm-updates\n"
      "Components: main\n"
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
      "\n"
      "Types: deb\n"
      "URIs: http://deb.debian.org/debian-security\n"
      "Suites: bookworm-security\n"
      "Components: main\n";
  EXPECT_EQ(MirrorFromSources(sources), "http://deb.debian.org/debian");
  // The security archive alone is no mirror of the releases.
  EXPECT_EQ(MirrorFromSources(sources.substr(sources.find("\n\n") + 2)), std::nullopt);
  EXPECT_EQ(MirrorFromSources("Types: deb-src\nURIs: http://a/debian\nSuites: sid\n"),
            std::nullopt);
}

TEST(MirrorFromSources, ReadsOneLineSourcesWithOptions) {
  EXPECT_EQ(MirrorFromSources("# a comment\n"
                              "deb http://security.debian.org/debian-security bookworm-security "
                              "main\n"
                              "deb [arch=amd64 signed-by=/k.gpg] http://mirror.local/debian "
                              "bookworm main\n"),
            "http://mirror.local/debian");
  EXPECT_EQ(MirrorFromSources("deb-src http://a/debian bookworm main\n"), std::nullopt);
  EXPECT_EQ(MirrorFromSources(""), std::nullopt);
}

TEST(ParseCandidateVersions, GivesEachPackagesFirstVersion) {
  const std::string shown =
      "Package: containerd\nVersion: 1.4.13~ds1-1~deb11u4\nArchitecture: amd64\n\n"
      "Package: docker.io\nSource: docker.io (20.10.5+dfsg1-1)\n"
      "Version: 20.10.5+dfsg1-1+deb11u2\n\n"
      "Package: runc\nVersion: 1.0.0~rc93+ds1-5+deb11u5\n";
  const std::map<std::string, std::string> expected = {{"containerd", "1.4.13~ds1-1~deb11u4"},
                                                       {"docker.io", "20.10.5+dfsg1-1+deb11u2"},
                                                       {"runc", "1.0.0~rc93+ds1-5+deb11u5"}};
  EXPECT_EQ(ParseCandidateVersions(shown), expected);
  EXPECT_TRUE(ParseCandidateVersions("N: Unable to locate package docker.io\n").empty());
}

TEST(StackPackages, TheCliIsItsOwnPackageFromTrixieOn) {
  EXPECT_EQ(StackPackages("bullseye"),
            (std::vector<std::string>{"containerd", "docker.io", "runc"}));
  EXPECT_EQ(StackPackages("bookworm"), StackPackages("bullseye"));
  EXPECT_EQ(StackPackages("trixie"),
            (std::vector<std::string>{"containerd", "docker-cli", "docker.io", "runc"}));
  EXPECT_EQ(StackPackages("sid"), StackPackages("trixie"));
  EXPECT_TRUE(IsDebianRelease("sid"));
  EXPECT_FALSE(IsDebianRelease("buster"));
  EXPECT_FALSE(IsDebianRelease("host"));
}

TEST(RootName, IsTheReleaseAndAHashOfExactlyItsVersions) {
  std::map<std::string, std::string> packages = {{"docker.io", "20.10.5+dfsg1-1+deb11u2"},
                                                 {"runc", "1.0.0~rc93+ds1-5+deb11u5"}};
  const std::string name = RootName("bullseye", packages);
  EXPECT_TRUE(std::regex_match(name, std::regex("bullseye-[0-9a-f]{12}"))) << name;
  EXPECT_EQ(RootName("bullseye", packages), name);
  packages["runc"] = "1.0.0~rc93+ds1-5+deb11u6";
  EXPECT_NE(RootName("bullseye", packages), name) << "a new upload is a new root";
}

TEST(ReleaseBinaries, RunInTheRootAndAreFoundOnTheHostUnderIt) {
  ReleaseRoot root;
  root.release = "trixie";
  root.root = "/var/cache/wedge/stacks/trixie-0123456789ab";
  const Binaries binaries = root.StackBinaries();
  EXPECT_EQ(binaries.release, "trixie");
  EXPECT_EQ(binaries.Path("runc"), "/usr/sbin/runc");  // as the daemons see it
  EXPECT_EQ(binaries.HostPath("runc"), "/var/cache/wedge/stacks/trixie-0123456789ab/usr/sbin/runc");
  EXPECT_EQ(Binaries::Defaults().HostPath("runc"), "/usr/sbin/runc");
  Binaries mixed = binaries;
  const Status refused = mixed.Override("runc=/usr/sbin/runc");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("the trixie stack runs in its release root"),
            std::string::npos)
      << refused.error().message();
}

// A release root with nothing but an executable runc and the dpkg database that installed it.
class ComponentRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("wedge-component-root-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "usr/sbin");
    fs::create_directories(root_ / "var/lib/dpkg/info");
    std::ofstream(root_ / "usr/sbin/runc") << "#!/bin/sh\necho runc version 1.0.0~rc93+ds1\n";
    fs::permissions(root_ / "usr/sbin/runc", fs::perms::owner_all);
    std::ofstream(root_ / "var/lib/dpkg/info/runc.list") << "/.\n/usr\n/usr/sbin\n/usr/sbin/runc\n";
    std::ofstream(root_ / "var/lib/dpkg/status")
        << "Package: runc\nStatus: install ok installed\nVersion: 1.0.0~rc93+ds1-5+deb11u5\n\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(ComponentRoot, InAReleaseRootItIsBoundOverTheRootsOwnBinary) {
  ReleaseRoot trixie;
  trixie.release = "trixie";
  trixie.root = "/var/cache/wedge/stacks/trixie-0123456789ab";
  Binaries binaries = trixie.StackBinaries();
  const Status used = binaries.UseComponent("runc", "bullseye", root_);
  ASSERT_TRUE(used.ok()) << used.error().message();
  EXPECT_EQ(binaries.Path("runc"), "/usr/sbin/runc");  // as the daemons see it: bound there
  EXPECT_EQ(binaries.HostPath("runc"), root_ / "usr/sbin/runc");
  EXPECT_EQ(binaries.HostPath("dockerd"),
            "/var/cache/wedge/stacks/trixie-0123456789ab/usr/sbin/dockerd");
  EXPECT_EQ(binaries.ReleaseOf("runc"), "bullseye");
  EXPECT_EQ(binaries.ReleaseOf("dockerd"), "trixie");
  EXPECT_EQ(binaries.Label(), "trixie+runc=bullseye");
  // Its package comes from its own root's dpkg database, not the stack's.
  EXPECT_EQ(binaries.PackageVersions()["runc"], "runc 1.0.0~rc93+ds1-5+deb11u5");
}

TEST_F(ComponentRoot, OnTheHostsStackItRunsWhereItIs) {
  Binaries binaries = Binaries::Defaults();
  EXPECT_EQ(binaries.Label(), "");
  ASSERT_TRUE(binaries.UseComponent("runc", "bullseye", root_).ok());
  EXPECT_EQ(binaries.Path("runc"), root_ / "usr/sbin/runc");
  EXPECT_EQ(binaries.HostPath("runc"), root_ / "usr/sbin/runc");
  EXPECT_EQ(binaries.Path("dockerd"), "/usr/sbin/dockerd");
  EXPECT_EQ(binaries.Label(), "host+runc=bullseye");
  EXPECT_EQ(binaries.ReleaseOf("dockerd"), "");
  // It is asked for its version as the daemons run it, on the host.
  EXPECT_EQ(binaries.Versions()["runc"], "runc version 1.0.0~rc93+ds1");
  EXPECT_TRUE(binaries.CheckComponentsRun().ok());
}

TEST_F(ComponentRoot, ABinaryTheReleaseLacksOrAnUnknownNameIsRefused) {
  Binaries binaries = Binaries::Defaults();
  const Status missing = binaries.UseComponent("dockerd", "bullseye", root_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("--with dockerd=bullseye: the bullseye stack has no "
                                           "dockerd (no executable /usr/sbin/dockerd"),
            std::string::npos)
      << missing.error().message();
  const Status unknown = binaries.UseComponent("tini", "bullseye", root_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("unknown binary"), std::string::npos);
  EXPECT_TRUE(binaries.components.empty());
  EXPECT_EQ(binaries.Label(), "");
}

TEST_F(ComponentRoot, OneThatDoesNotRunIsRefusedWithItsOwnComplaint) {
  std::ofstream(root_ / "usr/sbin/runc", std::ios::trunc)
      << "#!/bin/sh\necho 'runc: version GLIBC_2.99 not found' >&2\nexit 1\n";
  Binaries binaries = Binaries::Defaults();
  ASSERT_TRUE(binaries.UseComponent("runc", "sid", root_).ok());
  const Status runs = binaries.CheckComponentsRun();
  ASSERT_FALSE(runs.ok());
  EXPECT_EQ(runs.error().message(),
            "--with runc=sid: sid's runc does not run on this host: runc: version GLIBC_2.99 not "
            "found");
}

TEST(BinariesOverride, ABareWordThatIsNoFileNorReleaseSaysWhatItCouldBe) {
  Binaries binaries = Binaries::Defaults();
  const Status refused = binaries.Override("runc=buster");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "--with runc=buster: neither a release (bullseye, bookworm, trixie, sid) nor a file");
}

TEST(GoVersionOf, ReadsTheGoThatBuiltDebiansDocker) {
  if (!fs::exists("/usr/bin/docker")) GTEST_SKIP() << "docker.io is not installed";
  Result<std::string> version = GoVersionOf("/usr/bin/docker");
  ASSERT_TRUE(version.ok()) << version.error().message();
  EXPECT_TRUE(std::regex_match(*version, std::regex(R"(go1\.\d+(\.\d+)?)"))) << *version;
}

TEST(GoVersionOf, SaysWhyForWhatGoDidNotBuild) {
  Result<std::string> native = GoVersionOf("/proc/self/exe");
  ASSERT_FALSE(native.ok());
  EXPECT_NE(native.error().message().find("no .go.buildinfo section"), std::string::npos)
      << native.error().message();
  const fs::path text = fs::temp_directory_path() / "wedge-go-version-test.txt";
  std::ofstream(text) << "#!/bin/sh\necho not an ELF file, and long enough for a header\n";
  Result<std::string> script = GoVersionOf(text);
  fs::remove(text);
  ASSERT_FALSE(script.ok());
  EXPECT_NE(script.error().message().find("not an ELF file"), std::string::npos)
      << script.error().message();
  EXPECT_FALSE(GoVersionOf("/nonexistent/docker").ok());
}

}  // namespace
}  // namespace wedge::stack
