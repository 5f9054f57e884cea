#include <unistd.h>

#include <chrono>

#include "runner/command_watch.h"
#include "wedge/kinds/fuse_daemon.h"
#include "wedge/kinds/spawn.h"
#include "wedge/probe/task.h"
#include "wedge/runner/run_context.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::kinds {
namespace {

constexpr std::chrono::seconds kDockerRunTimeout{60};
constexpr std::int64_t kReadyTimeoutMs = 10000;

// The line the fixture wrote to stdout once ready ("ready 51"), from the container's log; an
// error once the container stopped without it or the bound passed.
Result<std::string> WaitUntilReady(stack::DockerStack& stack, const std::string& container) {
  const std::int64_t deadline = sys::MonotonicMillis() + kReadyTimeoutMs;
  for (;;) {
    WEDGE_ASSIGN_OR_RETURN(auto logs, stack.Docker({"logs", container}, std::chrono::seconds(30)));
    std::istringstream lines(logs.second);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("ready", 0) == 0) return line;
    }
    WEDGE_ASSIGN_OR_RETURN(auto running,
                           stack.Docker({"inspect", "--format", "{{.State.Running}}", container},
                                        std::chrono::seconds(30)));
    if (sys::TrimTrailing(running.second) != "true") {
      return Error("container " + container +
                   " stopped before its fixture was ready: " + sys::TrimTrailing(logs.second));
    }
    if (sys::MonotonicMillis() > deadline) {
      return Error("the fixture in container " + container + " was not ready within " +
                   std::to_string(kReadyTimeoutMs) + " ms: " + sys::TrimTrailing(logs.second));
    }
    if (sys::Interrupted()) return Error("interrupted");
  }
}

Status RunInContainer(const scenario::SpawnStep& step, const scenario::ContainerSpawn& container,
                      const scenario::Fixture& fixture, runner::RunContext& context) {
  if (context.docker_stack == nullptr) {
    return Error(step.name + " runs in a container and needs the private docker stack");
  }
  stack::DockerStack& stack = *context.docker_stack;
  const ContainerRun run =
      std::visit([&](const auto& kind) { return InContainer(kind, context); }, fixture.kind);
  WEDGE_ASSIGN_OR_RETURN(std::string image, stack.EnsureFixtureImage(run.binary));
  // --init: docker-init is the container's pid 1, the daemon its child, as in the field.
  std::vector<std::string> args = {"run",  "-d",     "--init",      "--network",
                                   "none", "--name", container.name};
  args.insert(args.end(), run.run_options.begin(), run.run_options.end());
  args.push_back(image);
  args.insert(args.end(), run.argv.begin(), run.argv.end());
  WEDGE_ASSIGN_OR_RETURN(auto started, stack.Docker(args, kDockerRunTimeout));
  if (started.first != 0) {
    return Error("docker run of " + step.name + " in container " + container.name +
                 " failed: " + sys::TrimTrailing(started.second));
  }
  WEDGE_ASSIGN_OR_RETURN(std::string ready, WaitUntilReady(stack, container.name));
  if (!context.containers) context.containers = std::make_unique<runner::Containers>(stack);
  WEDGE_ASSIGN_OR_RETURN(runner::ContainerProcesses processes,
                         context.containers->Find(container.name));
  const std::vector<pid_t> children = probe::ReadChildren(processes.init);
  if (children.size() != 1) {
    return Error("docker-init of container " + container.name + " (pid " +
                 std::to_string(processes.init) + ") has " + std::to_string(children.size()) +
                 " children; expected only " + step.name);
  }
  context.labels[processes.init] = container.init_label;
  context.pids_by_label[container.init_label] = processes.init;
  context.labels[children.front()] = step.name;
  context.pids_by_label[step.name] = children.front();
  context.spawned_containers.push_back(container.name);
  context.Say("started " + step.name + " (" + fixture.name + ") in container " + container.name +
              " (" + image + ") as pid " + std::to_string(children.front()) + " under " +
              container.init_label + " (pid " + std::to_string(processes.init) + "), shim pid " +
              std::to_string(processes.shim) + ": " + ready);
  return OkStatus();
}

}  // namespace

Status Run(const scenario::SpawnStep& step, runner::RunContext& context) {
  const scenario::Fixture* fixture = context.scenario.FindFixture(step.fixture);
  if (fixture == nullptr) return Error("no fixture named " + step.fixture);
  if (step.container) return RunInContainer(step, *step.container, *fixture, context);
  const std::vector<std::string> argv =
      std::visit([&](const auto& kind) { return Argv(kind, context); }, fixture->kind);
  WEDGE_ASSIGN_OR_RETURN(sys::SpawnedProcess spawned,
                         context.sandbox->Spawn(step.name, argv, 10000));
  context.labels[spawned.pid] = spawned.label;
  context.pids_by_label[spawned.label] = spawned.pid;
  context.Say("started " + step.name + " (" + fixture->name + ") as pid " +
              std::to_string(spawned.pid) + ": " + spawned.ready_line);
  return OkStatus();
}

}  // namespace wedge::kinds
