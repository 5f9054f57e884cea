#include "flap_step.h"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wedge/base/fault_point.h"
#include "wedge/stack/syscall_probe.h"
#include "wedge/sys/process.h"

namespace wedge::runner {
namespace {

using std::chrono::milliseconds;

std::size_t CountEntries(const std::filesystem::path& directory) {
  std::error_code ec;
  std::size_t count = 0;
  for (auto it = std::filesystem::directory_iterator(directory, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++count;
  }
  return count;
}

stack::DockerStack::Outage OutageOf(scenario::FlapSpec::How how) {
  switch (how) {
    case scenario::FlapSpec::How::kSigkill:
      return stack::DockerStack::Outage::kSigkill;
    case scenario::FlapSpec::How::kSigstop:
      return stack::DockerStack::Outage::kSigstop;
    case scenario::FlapSpec::How::kUnlinkSocket:
      return stack::DockerStack::Outage::kUnlinkSocket;
    case scenario::FlapSpec::How::kRestart:
      return stack::DockerStack::Outage::kRestart;
  }
  return stack::DockerStack::Outage::kSigkill;
}

std::string RunningContainers(stack::DockerStack& stack) {
  auto listed = stack.Docker({"ps", "--format", "{{.Names}}"}, milliseconds(10000));
  if (!listed.ok() || listed->first != 0) return "(docker ps failed)";
  std::string names = listed->second;
  std::replace(names.begin(), names.end(), '\n', ' ');
  while (!names.empty() && names.back() == ' ') names.pop_back();
  return names.empty() ? "(none)" : names;
}

// The prescribed outage or uptime: a duration the scenario pins, not a wait for a state.
Status Hold(int duration_ms) {
  sys::SleepFor(milliseconds(duration_ms));
  if (sys::Interrupted()) return Error("interrupted during the flap");
  return OkStatus();
}

}  // namespace

Result<FlapOutcome> RunFlapStep(const scenario::FlapStep& step, stack::DockerStack& stack,
                                const std::filesystem::path& run_dir, std::int64_t min_after_ms,
                                const std::function<void(const std::string&)>& say) {
  const scenario::FlapSpec& flap = step.flap;
  FlapOutcome outcome;
  const pid_t dockerd = stack.dockerd_pid();
  const std::filesystem::path proc = "/proc/" + std::to_string(dockerd);
  const std::size_t fds_before = CountEntries(proc / "fd");
  const std::size_t threads_before = CountEntries(proc / "task");
  const std::string containers_before = RunningContainers(stack);

  // GET /containers/json is served from dockerd's memory and answers even while containerd is
  // away; GET /containers/ID/top asks containerd for the container's processes, so it measures
  // when dockerd can really use containerd again.
  const std::string host = stack.docker_host();
  const std::filesystem::path docker_socket = host.substr(host.find("://") + 3);
  std::string container_id;
  if (auto listed = stack::HttpGetUnix(docker_socket, "/containers/json", milliseconds(5000));
      listed.ok() && listed->first == 200) {
    nlohmann::json containers = nlohmann::json::parse(listed->second, nullptr, false);
    if (containers.is_array() && !containers.empty() && containers[0].contains("Id")) {
      container_id = containers[0]["Id"].get<std::string>();
    }
  }

  WEDGE_ASSIGN_OR_RETURN(
      std::unique_ptr<stack::SyscallProbe> probe,
      stack::SyscallProbe::Attach(stack.journal(), dockerd, stack.containerd_socket(),
                                  stack.directory() / "dockerd.log", run_dir / "probe"));
  say("syscall probe attached to dockerd (pid " + std::to_string(dockerd) + ")");

  std::int64_t serving_at = 0;
  for (int cycle = 1; cycle <= flap.cycles; ++cycle) {
    WEDGE_RETURN_IF_ERROR(stack.TakeContainerdAway(OutageOf(flap.how), milliseconds(10000)));
    probe->BeginWindow("outage");
    say("cycle " + std::to_string(cycle) + "/" + std::to_string(flap.cycles) +
        ": containerd gone; holding the outage for " + std::to_string(flap.down_ms) + " ms");
    // A kill here leaves containerd away under a traced dockerd.
    if (cycle == 1) FaultPoint("flap-outage");
    WEDGE_RETURN_IF_ERROR(Hold(flap.down_ms));
    WEDGE_RETURN_IF_ERROR(stack.BringContainerdBack(milliseconds(20000)));
    serving_at = sys::MonotonicMillis();
    if (cycle < flap.cycles) {
      probe->BeginWindow("between");
      say("containerd serving again; up for " + std::to_string(flap.up_ms) + " ms");
      WEDGE_RETURN_IF_ERROR(Hold(flap.up_ms));
    }
  }
  probe->BeginWindow("after");
  say("containerd serving again; waiting for dockerd to answer");

  // Recovery: the first successful answers after containerd serves again, polled every 5 ms.
  auto first_success = [&](const std::string& path) -> std::optional<std::int64_t> {
    while (sys::MonotonicMillis() - serving_at < flap.recovery_timeout_ms && !sys::Interrupted()) {
      auto answer = stack::HttpGetUnix(docker_socket, path, milliseconds(2000));
      if (answer.ok() && answer->first == 200) return sys::MonotonicMillis() - serving_at;
      ::usleep(5000);
    }
    return std::nullopt;
  };
  std::optional<std::int64_t> recovered_ms = first_success("/containers/json");
  std::optional<std::int64_t> containerd_backed_ms;
  if (!container_id.empty())
    containerd_backed_ms = first_success("/containers/" + container_id + "/top");
  // The "after" window lasts until recovery was measured, and min_after_ms when a signature
  // reads its rates (whole seconds).
  const std::int64_t after_end =
      serving_at + std::max<std::int64_t>(
                       {min_after_ms, recovered_ms.value_or(0), containerd_backed_ms.value_or(0)});
  if (std::int64_t left = after_end - sys::MonotonicMillis(); left > 0) {
    sys::SleepFor(milliseconds(left));
  }
  probe->EndWindow();
  WEDGE_ASSIGN_OR_RETURN(outcome.series, probe->Finish());

  auto later = [&](const std::optional<std::int64_t>& ms) {
    return ms ? std::to_string(*ms) + " ms later"
              : "not within " + std::to_string(flap.recovery_timeout_ms) + " ms";
  };
  outcome.recovered_text =
      later(recovered_ms) + "; a containerd-backed call (docker top) " +
      (container_id.empty() ? "not tried: no container" : later(containerd_backed_ms));
  const std::size_t fds_after = CountEntries(proc / "fd");
  const std::size_t threads_after = CountEntries(proc / "task");
  using Figure = report::RunResult::Figure;
  outcome.figures.push_back(
      Figure{"outage_prescribed", std::to_string(flap.cycles * flap.down_ms), "ms"});
  outcome.figures.push_back(Figure{"docker_ps_after_serving",
                                   recovered_ms ? std::to_string(*recovered_ms) : "timeout", "ms"});
  if (!container_id.empty()) {
    outcome.figures.push_back(
        Figure{"docker_top_after_serving",
               containerd_backed_ms ? std::to_string(*containerd_backed_ms) : "timeout", "ms"});
  }
  outcome.figures.push_back(
      Figure{"dockerd_fds", std::to_string(fds_before) + " -> " + std::to_string(fds_after), ""});
  outcome.figures.push_back(
      Figure{"dockerd_threads",
             std::to_string(threads_before) + " -> " + std::to_string(threads_after), ""});
  outcome.figures.push_back(Figure{"containers_listed_before", containers_before, ""});
  outcome.figures.push_back(Figure{"containers_listed_after", RunningContainers(stack), ""});
  for (const auto& series : outcome.series) {
    std::ostringstream values;
    for (size_t i = 0; i < series.per_second.size(); ++i) {
      values << (i ? " " : "") << series.per_second[i];
    }
    if (series.metric == "connect" || series.metric == "futex_threads" ||
        series.metric == "threads") {
      say(series.metric + " per second, " + series.window + ": " + values.str());
    }
  }
  return outcome;
}

}  // namespace wedge::runner
