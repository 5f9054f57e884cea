// Processes wedge starts or must stop: pidfds and process identity.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"

namespace wedge::sys {

// The start time (clock ticks after boot) of `pid`, which with the pid identifies a process
// across pid reuse; nullopt when it does not exist.
std::optional<std::uint64_t> ProcessStartTime(pid_t pid);
// True while `pid` exists and is still the process that started at `start_time`.
bool IsSameProcess(pid_t pid, std::uint64_t start_time);

// A pidfd: a handle on one process that cannot be confused by pid reuse.
class Pidfd {
 public:
  Pidfd() = default;
  Pidfd(pid_t pid, UniqueFd fd) : pid_(pid), fd_(std::move(fd)) {}
  // pidfd_open(pid).
  static Result<Pidfd> Open(pid_t pid);

  pid_t pid() const { return pid_; }
  int get() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  // pidfd_send_signal. ESRCH (already gone) is not an error.
  Status SendSignal(int signo) const;
  // True once the process has exited (it may still be a zombie waiting to be reaped).
  bool HasExited() const;
  // Waits until the process has exited (true) or `bound` has passed (false); the pidfd becomes
  // readable at its exit, so this wakes at once.
  bool WaitForExit(std::chrono::milliseconds bound) const;

 private:
  pid_t pid_ = 0;
  UniqueFd fd_;
};

// The pids in a cgroup.procs or tasks file text.
std::vector<pid_t> ParsePidList(std::string_view text);

// Sleeps for `duration` unless a termination signal arrives first (see InterruptFlag).
void SleepFor(std::chrono::milliseconds duration);
// CLOCK_MONOTONIC in milliseconds.
std::int64_t MonotonicMillis();

// SIGINT/SIGTERM handling for a run: the handler only records the signal; long waits poll
// `Interrupted()` and stop, so every RAII owner unwinds and undoes its change.
void InstallInterruptHandlers();
// The signal that asked wedge to stop, or 0.
int Interrupted();
// Blocks until one of those signals arrives (at once if one already has); returns it.
int WaitForInterrupt();
// Forgets the signal, once what it asked for is done: `wedge run --hold` is released by one, and
// the run then ends as a run that was not interrupted does.
void ClearInterrupt();

}  // namespace wedge::sys
