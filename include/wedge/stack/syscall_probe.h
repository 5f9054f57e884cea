// SyscallProbe: what dockerd does, second by second, while containerd flaps.
//
// It counts dockerd's connect() calls to the containerd socket (and their errors), its socket()
// and close() calls, its threads and the threads parked in futex waits, and its log lines about
// containerd, in named windows of the run ("outage", "after"). The per-second series are what a
// flapping scenario's rate signatures are matched against.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/signature/signature.h"
#include "wedge/sys/journal.h"

namespace wedge::stack {

// A named window of the run, [begin_us, end_us) in CLOCK_REALTIME microseconds.
struct ProbeWindow {
  std::string name;
  std::int64_t begin_us = 0;
  std::int64_t end_us = 0;  // 0 while open
};

// The "connect", "connect_errors", "socket" and "close" series of an `strace -f -ttt` trace
// over the whole seconds of each window name (windows of one name concatenated; a window up to
// 20 ms short of a whole second still counts it). Pure.
std::vector<signature::ObservedSeries> CountTraceSeries(
    std::string_view trace, const std::filesystem::path& containerd_socket,
    const std::vector<ProbeWindow>& windows);

class SyscallProbe {
 public:
  // Starts watching `dockerd` (all its threads, including ones it creates later; not the
  // processes it forks) with strace, and returns once strace traces every thread. `work_dir`
  // holds the probe's raw output, kept for the evidence bundle. `containerd_socket` is the path
  // whose connect() calls count; `dockerd_log` the log whose lines are counted. strace dies with
  // the thread that called Attach, which must outlive the probe. strace is journaled in
  // `journal` until it is reaped.
  static Result<std::unique_ptr<SyscallProbe>> Attach(
      sys::Journal& journal, pid_t dockerd, const std::filesystem::path& containerd_socket,
      const std::filesystem::path& dockerd_log, const std::filesystem::path& work_dir);
  SyscallProbe(const SyscallProbe&) = delete;
  SyscallProbe& operator=(const SyscallProbe&) = delete;
  // Detaches if still attached.
  ~SyscallProbe();

  // Starts window `name` now (ending the current one, if any).
  void BeginWindow(const std::string& name);
  // Ends the current window now.
  void EndWindow();

  // Detaches and returns the series of every metric in every window name (seconds as in
  // CountTraceSeries): "connect", "connect_errors", "socket", "close" (counts per second),
  // "threads", "futex_threads" (means of samples taken every 100 ms), "containerd_log_lines"
  // (count per second). Calling it again returns the same series.
  Result<std::vector<signature::ObservedSeries>> Finish();

  // Raw evidence: the strace command, the windows and their series, the first and last lines of
  // the trace, sampled thread states and the log lines counted.
  std::string EvidenceText() const;

 private:
  struct State;
  explicit SyscallProbe(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace wedge::stack
