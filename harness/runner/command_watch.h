// A run-command step with a watch (scenario::CommandWatch): the command runs in the background
// while wedge watches the processes the private stack starts for it, until they stall or the
// command returns. Also what wedge reads about a container for observed preconditions.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/probe/task.h"
#include "wedge/report/report.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/journal.h"

namespace wedge::runner {

// A running container's processes, as host pids.
struct ContainerProcesses {
  std::string name;
  std::string id;                     // the full container ID
  pid_t shim = 0;                     // its containerd-shim-runc-v2 (found by "-id ID")
  pid_t init = 0;                     // the container's init process (the shim's child)
  std::filesystem::path pids_cgroup;  // the init's pids cgroup directory
};
// Finds container `name` of `stack`: its ID from `docker inspect`, the shim among the host's
// processes by its "-id ID" argument, the init as the shim's only child, the pids cgroup from
// the init's /proc/PID/cgroup.
Result<ContainerProcesses> FindContainer(stack::DockerStack& stack, const std::string& name);

// The containers a run's steps name, each found once (FindContainer) and then remembered: the
// observed preconditions and the watch of one step ask for the same container.
class Containers {
 public:
  explicit Containers(stack::DockerStack& stack) : stack_(stack) {}
  Result<ContainerProcesses> Find(const std::string& name);

 private:
  stack::DockerStack& stack_;
  std::map<std::string, ContainerProcesses> found_;
};

// The "max" count of a pids cgroup's pids.events: how many forks and clones it refused.
Result<std::uint64_t> ReadPidsEventsMax(const std::filesystem::path& pids_cgroup);

// CapEff of `pid` and whether it is in the initial user namespace, for evidence:
// "CapEff 000001fffeffffff (CAP_SYS_ADMIN, not CAP_SYS_RESOURCE), initial user namespace".
std::string DescribePipeCreatorPrivilege(pid_t pid);

class CommandWatch {
 public:
  using Say = std::function<void(const std::string&)>;
  // Finds the watched container, attaches the syscall hold (when the watch asks for one) to its
  // shim, and starts the command in the background.
  static Result<std::unique_ptr<CommandWatch>> Start(const scenario::RunCommandStep& step,
                                                     const scenario::CommandWatch& spec,
                                                     const std::filesystem::path& binary,
                                                     const std::map<std::string, std::string>& env,
                                                     sys::Journal& journal,
                                                     const ContainerProcesses& container,
                                                     const std::filesystem::path& run_dir, Say say);
  CommandWatch(const CommandWatch&) = delete;
  CommandWatch& operator=(const CommandWatch&) = delete;
  // Drains the watched processes' pipes if they still block, detaches the hold and waits for
  // the command (bounded by its timeout).
  ~CommandWatch();

  struct Outcome {
    bool stalled = false;
    bool interrupted = false;
    std::int64_t after_ms = 0;     // from the command's start to the stall or its return
    probe::TreeSnapshot snapshot;  // at the stall: the watched processes and their parents
    std::map<pid_t, std::string> labels;
  };
  // Returns when every task of the watched processes has slept unchanged for settle_ms while
  // the command still runs (stalled), or when the command returned first.
  Outcome WaitForStallOrReturn();

  // Recovery: detaches the hold, then reads and discards the stderr pipes of the watched
  // processes and their parents until they have exited (at most `timeout`). Lines say what was
  // drained and how long it took.
  std::vector<std::string> DrainPipes(std::chrono::milliseconds timeout);

  // Whether the command has returned by now (without waiting).
  bool Returned() const;

  // Waits for the command to end and returns how it ended; `running_at_capture` is set when
  // the watch captured a stall first.
  signature::ObservedCommand Finish();

  // What was injected (the hold, each pipe shrunk), for the report.
  const std::vector<std::string>& injections() const;

 private:
  struct State;
  explicit CommandWatch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace wedge::runner
