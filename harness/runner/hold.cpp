#include "wedge/runner/hold.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "wedge/base/unique_fd.h"
#include "wedge/probe/task.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::runner {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path HeldMarkerPath(const fs::path& state_dir) { return state_dir / "held.json"; }

Status WriteHeldMarker(const fs::path& state_dir, const HeldRun& held) {
  const json marker = {{"pid", held.pid},
                       {"start_time", held.start_time},
                       {"scenario", held.scenario},
                       {"match_pid", held.match_pid}};
  return sys::WriteFileAtomically(HeldMarkerPath(state_dir), marker.dump() + "\n", 0600);
}

void RemoveHeldMarker(const fs::path& state_dir, pid_t pid) {
  Result<std::optional<HeldRun>> held = ReadHeldMarker(state_dir);
  if (held.ok() && held->has_value() && (*held)->pid == pid) {
    ::unlink(HeldMarkerPath(state_dir).c_str());
  }
}

Result<std::optional<HeldRun>> ReadHeldMarker(const fs::path& state_dir) {
  const fs::path path = HeldMarkerPath(state_dir);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<HeldRun>();
    return ErrnoError("open('" + path.string() + "')");
  }
  WEDGE_RETURN_IF_ERROR(sys::CheckPrivateDirectory(state_dir));
  if (Status trusted = sys::CheckPrivateFile(fd.get()); !trusted.ok()) {
    return trusted.error().WithContext(path.string());
  }
  WEDGE_ASSIGN_OR_RETURN(std::string text, sys::ReadDescriptor(fd.get(), path.string()));
  const json marker = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto integer = [&marker](const char* key) {
    return marker.is_object() && marker.contains(key) && marker[key].is_number_unsigned();
  };
  if (!integer("pid") || !integer("start_time") || !integer("match_pid") ||
      !marker.contains("scenario") || !marker["scenario"].is_string()) {
    return Error(
        path.string() +
        ": not a held-run marker ({\"pid\", \"start_time\", \"scenario\", \"match_pid\"})");
  }
  HeldRun held;
  held.pid = marker["pid"].get<pid_t>();
  held.start_time = marker["start_time"].get<std::uint64_t>();
  held.scenario = marker["scenario"].get<std::string>();
  held.match_pid = marker["match_pid"].get<pid_t>();
  if (held.pid <= 1) return Error(path.string() + ": pid " + std::to_string(held.pid));
  return std::optional<HeldRun>(std::move(held));
}

std::vector<std::string> DescribeHold(const report::RunResult& result, pid_t match_pid,
                                      const std::string& docker_host) {
  std::vector<std::string> lines;
  lines.push_back("held: the " + std::string(scenario::VerdictName(result.verdict)) +
                  " state stays live for inspection");
  const signature::MatchResult& match = report::VerdictMatch(result);
  for (const auto& [role, task] : match.bound) {
    const std::string proc =
        "/proc/" + std::to_string(task.pid) + "/task/" + std::to_string(task.tid);
    std::string line = "  " + role + ": " + task.process + " pid " + std::to_string(task.pid);
    if (task.tid != task.pid) line += " tid " + std::to_string(task.tid);
    line += " (" + task.comm + ", " + std::string(1, task.state) + "), read " + proc +
            "/{stack,status,wchan,syscall}";
    lines.push_back(line);
  }
  if (match_pid > 0) {
    lines.push_back("  name it: wedge match " + std::to_string(match_pid));
  }
  if (!docker_host.empty())
    lines.push_back("  its private docker: docker -H " + docker_host + " ps");
  lines.push_back("  release it: wedge cleanup (or Ctrl-C, SIGTERM or SIGHUP to this wedge, pid " +
                  std::to_string(::getpid()) + ")");
  return lines;
}

Status ReleaseHeldRun(const fs::path& state_dir, std::chrono::milliseconds bound,
                      const std::function<void(const std::string&)>& say) {
  WEDGE_ASSIGN_OR_RETURN(std::optional<HeldRun> held, ReadHeldMarker(state_dir));
  if (!held) return OkStatus();
  const std::string who =
      "the run holding " + held->scenario + " (wedge pid " + std::to_string(held->pid) + ")";
  // The pidfd is taken before the identity is checked, so the process signalled is the one
  // checked: a pid reused after the check cannot be.
  Result<sys::Pidfd> pidfd = sys::Pidfd::Open(held->pid);
  Result<std::string> comm = probe::ReadComm(held->pid);
  if (!pidfd.ok() || !sys::IsSameProcess(held->pid, held->start_time) || !comm.ok() ||
      *comm != "wedge") {
    ::unlink(HeldMarkerPath(state_dir).c_str());
    say("removed the marker of " + who + ", which is gone");
    return OkStatus();
  }
  say("releasing " + who);
  const std::int64_t start = sys::MonotonicMillis();
  WEDGE_RETURN_IF_ERROR(pidfd->SendSignal(SIGTERM));
  if (!pidfd->WaitForExit(bound)) {
    return Error(who + " did not finish releasing within " + std::to_string(bound.count()) +
                 " ms of SIGTERM");
  }
  say("released " + who + ": it recovered and tore down in " +
      std::to_string(sys::MonotonicMillis() - start) + " ms");
  return OkStatus();
}

}  // namespace wedge::runner
