// The release stacks' pieces that need no archive: the host's apt sources, apt-cache's output,
// the cache's names, the binaries' paths and versions, and what a Go binary says of its Go.
#include "wedge/stack/release_root.h"

#include <gtest/gtest.h>

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
