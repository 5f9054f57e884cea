// `wedge run --hold`: after the verdict, the reproduced state stays live for a person to read
// (the kernel stacks, the task states, the fds), and the run waits, with everything it set up
// still journaled, until it is asked to release it: a SIGINT, SIGTERM or SIGHUP, which is what
// `wedge cleanup` and the next `wedge run` send it. It then recovers and tears down as any run
// does, and its report says it was held.
//
// While it waits, the run says so in STATE_DIR/held.json: its pid and start time (so that a
// later wedge signals that process and no other), its scenario and the live pids. The marker is
// root's alone (0600 in the private state directory) and is read back with the same care as a
// journal. A held wedge that is killed leaves a stale marker and its journal: the release
// removes the one, the journal replay undoes the other.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/report/report.h"

namespace wedge::runner {

// The run that holds its state, as its marker names it.
struct HeldRun {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // of `pid`, clock ticks after boot (sys::ProcessStartTime)
  std::string scenario;
  pid_t match_pid = 0;  // the pid `wedge match` names the scenario from
  bool operator==(const HeldRun&) const = default;
};

// STATE_DIR/held.json.
std::filesystem::path HeldMarkerPath(const std::filesystem::path& state_dir);
// Writes the marker (0600, atomically).
Status WriteHeldMarker(const std::filesystem::path& state_dir, const HeldRun& held);
// Removes the marker if it names `pid`.
void RemoveHeldMarker(const std::filesystem::path& state_dir, pid_t pid);
// The marker, or nullopt when there is none. An error for a marker wedge did not write: not a
// regular file of wedge's uid with mode 0600 and one link, in a private state directory, or not
// the JSON it writes.
Result<std::optional<HeldRun>> ReadHeldMarker(const std::filesystem::path& state_dir);

// What a person reads while a run holds: one line per role of the decisive signature with its
// task, state and /proc paths, the `wedge match` command, the private stack's docker (when
// `docker_host` is not empty), and how to release it.
std::vector<std::string> DescribeHold(const report::RunResult& result, pid_t match_pid,
                                      const std::string& docker_host);

// How long `wedge cleanup` and the next `wedge run` wait for a held run to recover and tear
// down once asked: a fresh stack's stop takes seconds, the whole well under a minute.
inline constexpr std::chrono::milliseconds kHeldRunReleaseBound{120000};

// Asks the held run, if there is one, to release its state, and waits (at most `bound`) for it
// to end; `say` gets one line for what it does. OK when no run holds (a stale marker is
// removed). An error when the marker cannot be trusted or the held run did not end in time.
Status ReleaseHeldRun(const std::filesystem::path& state_dir, std::chrono::milliseconds bound,
                      const std::function<void(const std::string&)>& say);

}  // namespace wedge::runner
