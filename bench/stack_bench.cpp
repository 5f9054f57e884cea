// Stack overhead: wedge's private stack (DockerStack::Start, everything it does until GET /_ping
// answers) against starting the same containerd and dockerd by hand, in the same run,
// alternating, so both see the same machine. "By hand" is what a person would type: a private
// mount and pid namespace (unshare), containerd with a config of its own, dockerd with the same
// flags, and a tight poll of the two sockets. Prints `name: value unit` lines for bench/run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// wedge: journal, run directory, sandbox, cgroups, configs, both daemons, until /_ping is OK.
double StartWithWedge(int round) {
  const fs::path state_dir = wedge::sys::DefaultStateDirectory();
  const std::string run_id =
      "bench-stack-" + std::to_string(::getpid()) + "-" + std::to_string(round);
  const auto start = Clock::now();
  auto journal = wedge::sys::Journal::Create(state_dir, run_id);
  if (!journal.ok()) {
    std::fprintf(stderr, "journal: %s\n", journal.error().message().c_str());
    std::exit(1);
  }
  const fs::path run_dir = state_dir / "runs" / run_id;
  (void)(*journal)->Record(wedge::sys::DirectoryChange{run_dir});
  fs::create_directories(run_dir);
  wedge::stack::StackOptions options;
  options.binaries = wedge::stack::Binaries::Defaults();
  options.run_directory = run_dir;
  options.fixtures_dir = fs::canonical("/proc/self/exe").parent_path();
  auto stack = wedge::stack::DockerStack::Start(**journal, options);
  const double elapsed = MillisSince(start);
  if (!stack.ok()) {
    std::fprintf(stderr, "wedge stack: %s\n", stack.error().message().c_str());
    (void)(*journal)->UndoAll();
    std::exit(1);
  }
  (void)(*stack)->Stop();
  stack->reset();
  (void)(*journal)->UndoAll();
  return elapsed;
}

bool Pings(const fs::path& socket) {
  auto answer = wedge::stack::HttpGetUnix(socket, "/_ping", std::chrono::milliseconds(1000));
  return answer.ok() && answer->first == 200;
}

// By hand: `unshare --pid --fork --mount --propagation private --mount-proc sh -c 'containerd
// --config C & until socket; do :; done; exec dockerd FLAGS'`, polled every millisecond.
double StartByHand(int round) {
  const fs::path dir =
      fs::temp_directory_path() /
      ("wedge-bench-by-hand-" + std::to_string(::getpid()) + "-" + std::to_string(round));
  fs::create_directories(dir / "containerd");
  fs::create_directories(dir / "docker");
  {
    std::ofstream toml(dir / "containerd.toml");
    toml << "version = 2\nroot = \"" << (dir / "containerd/root").string() << "\"\nstate = \""
         << (dir / "containerd/state").string()
         << "\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \""
         << (dir / "containerd.sock").string() << "\"\n";
    std::ofstream daemon_json(dir / "daemon.json");
    daemon_json << "{\"deprecated-key-path\": \"" << (dir / "docker/key.json").string() << "\"}\n";
  }
  const std::string script =
      "containerd --config " + (dir / "containerd.toml").string() + " >" +
      (dir / "containerd.log").string() + " 2>&1 & until [ -S " +
      (dir / "containerd.sock").string() +
      " ]; do :; done; exec dockerd --containerd=" + (dir / "containerd.sock").string() +
      " --host=unix://" + (dir / "docker.sock").string() +
      " --data-root=" + (dir / "docker/data").string() +
      " --exec-root=" + (dir / "docker/exec").string() +
      " --pidfile=" + (dir / "docker.pid").string() +
      " --config-file=" + (dir / "daemon.json").string() +
      " --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false"
      " --userland-proxy=false --exec-opt=native.cgroupdriver=cgroupfs >" +
      (dir / "dockerd.log").string() + " 2>&1";
  const auto start = Clock::now();
  const pid_t child = ::fork();
  if (child == 0) {
    // --kill-child: the namespace's init gets SIGKILL when unshare dies, and with it every
    // process of the namespace.
    ::execlp("unshare", "unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount",
             "--propagation", "private", "--mount-proc", "sh", "-c", script.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  while (!Pings(dir / "docker.sock")) {
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      std::fprintf(stderr, "by hand: the daemons exited; see %s\n", dir.c_str());
      std::exit(1);
    }
    ::usleep(1000);
  }
  const double elapsed = MillisSince(start);
  // The namespace's init (unshare's only child, dockerd after sh's exec), pinned before unshare
  // goes: once it has exited, zap_pid_ns_processes has reaped every process of the namespace.
  const std::vector<pid_t> inits = wedge::probe::ReadChildren(child);
  std::optional<wedge::sys::Pidfd> init;
  if (inits.size() == 1) {
    if (auto pidfd = wedge::sys::Pidfd::Open(inits.front()); pidfd.ok()) init = std::move(*pidfd);
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  for (int i = 0; init && !init->HasExited(); ++i) {
    if (i == 5000) {
      std::fprintf(stderr, "by hand: the daemons outlived unshare by 5 s (pid %d)\n", init->pid());
      std::exit(1);
    }
    ::usleep(1000);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return elapsed;
}

void PrintStats(const std::string& name, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::printf("%s_min: %.1f ms\n", name.c_str(), values.front());
  std::printf("%s_median: %.1f ms\n", name.c_str(), values[values.size() / 2]);
  std::printf("%s_max: %.1f ms\n", name.c_str(), values.back());
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "stack_bench needs root\n");
    return 2;
  }
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  std::vector<double> wedge_ms;
  std::vector<double> by_hand_ms;
  // One of each first, unmeasured: page cache and binaries warm for both.
  (void)StartByHand(0);
  (void)StartWithWedge(0);
  const bool each_round = std::getenv("WEDGE_BENCH_EACH_ROUND") != nullptr;
  for (int round = 1; round <= rounds; ++round) {
    by_hand_ms.push_back(StartByHand(round));
    wedge_ms.push_back(StartWithWedge(round));
    if (each_round) {
      std::fprintf(stderr, "round %d: by hand %.1f ms, wedge %.1f ms\n", round, by_hand_ms.back(),
                   wedge_ms.back());
    }
  }
  PrintStats("stack_startup_wedge", wedge_ms);
  PrintStats("stack_startup_by_hand", by_hand_ms);
  std::sort(wedge_ms.begin(), wedge_ms.end());
  std::sort(by_hand_ms.begin(), by_hand_ms.end());
  std::printf("stack_startup_ratio_median: %.2f x\n",
              wedge_ms[wedge_ms.size() / 2] / by_hand_ms[by_hand_ms.size() / 2]);
  return 0;
}
