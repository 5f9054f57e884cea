// The host's own docker is never contacted. Decoys listen on the standard sockets a host
// containerd and dockerd use; the docker scenarios run; no decoy may see a single connection.
//
// The decoys are listening sockets, not daemons: a listener records every connection attempt
// (a daemon would only log the requests it understood), and it leaves nothing on the host.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "scenario_test_support.h"
#include "wedge/base/unique_fd.h"

namespace wedge {
namespace {

namespace fs = std::filesystem;
using testing::RunWedge;
using testing::WedgeRun;

// A unix socket listening at `path`, counting the connections it accepts.
class DecoySocket {
 public:
  explicit DecoySocket(fs::path path) : path_(std::move(path)) {
    std::error_code ec;
    for (fs::path dir = path_.parent_path(); !fs::exists(dir); dir = dir.parent_path()) {
      created_.insert(created_.begin(), dir);
    }
    fs::create_directories(path_.parent_path(), ec);
    fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path_.c_str());
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
             ::listen(fd_.get(), 64) == 0;
  }
  ~DecoySocket() {
    fd_.Reset();
    std::error_code ec;
    fs::remove(path_, ec);
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) fs::remove(*it, ec);
  }
  bool bound() const { return bound_; }
  const fs::path& path() const { return path_; }
  // Connections made to the decoy so far.
  int Accepted() {
    for (;;) {
      int client = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) break;
      ::close(client);
      ++accepted_;
    }
    return accepted_;
  }

 private:
  fs::path path_;
  std::vector<fs::path> created_;
  UniqueFd fd_;
  bool bound_ = false;
  int accepted_ = 0;
};

TEST(Isolation, TheDockerScenariosNeverContactTheHostsDockerOrContainerd) {
  if (::geteuid() != 0) GTEST_SKIP() << "scenario tests run as root";
  const std::vector<fs::path> standard = {
      "/run/containerd/containerd.sock", "/run/containerd/containerd.sock.ttrpc",
      "/run/docker.sock", "/run/docker/containerd/containerd.sock"};
  for (const auto& path : standard) {
    if (fs::exists(path)) GTEST_SKIP() << path << " exists: a real docker owns it; not touched";
  }
  const testing::HostSnapshot before = testing::HostNow();
  {
    std::vector<std::unique_ptr<DecoySocket>> decoys;
    for (const auto& path : standard) {
      decoys.push_back(std::make_unique<DecoySocket>(path));
      ASSERT_TRUE(decoys.back()->bound()) << "could not listen on " << path;
    }
    const fs::path scenarios = fs::path(WEDGE_SOURCE_DIR) / "scenarios";
    WedgeRun run = RunWedge({"run", (scenarios / "seccomp-resources-sigsys.json").string(),
                             (scenarios / "containerd-socket-flap.json").string()});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    for (const auto& decoy : decoys) {
      EXPECT_EQ(decoy->Accepted(), 0) << decoy->path() << " was contacted";
    }
  }
  testing::ExpectHostUnchanged(before);
}

}  // namespace
}  // namespace wedge
