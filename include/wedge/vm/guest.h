// Running wedge inside a guest kernel under qemu (TCG: no KVM needed), with a host-side
// deadline: a guest that deadlocks or never boots is killed, never waited for.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"
#include "wedge/vm/initramfs.h"
#include "wedge/vm/kernel.h"

namespace wedge::vm {

// A qemu process wedge started (a sys::ChildProcess): journaled ("process", with its start
// time, so cleanup never kills a recycled pid) before it runs anything, and SIGKILLed and reaped
// when the owner goes out of scope. It also dies with wedge (PR_SET_PDEATHSIG).
class QemuProcess {
 public:
  // Starts `argv` (argv[0] searched in PATH) with stdin from /dev/null and stdout and stderr
  // appended to `output_log`.
  static Result<std::unique_ptr<QemuProcess>> Start(sys::Journal& journal,
                                                    const std::vector<std::string>& argv,
                                                    const std::filesystem::path& output_log);
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;
  ~QemuProcess();

  // Waits on the pidfd until qemu exits, `deadline_ms` (MonotonicMillis) passes, or wedge is
  // interrupted. True when qemu exited (and is reaped).
  bool WaitForExit(std::int64_t deadline_ms);
  // SIGKILL through the pidfd, then reap. Safe to repeat.
  void Kill();
  pid_t pid() const { return child_.pid(); }
  // The wait status once reaped.
  std::optional<int> wait_status() const { return child_.wait_status(); }

 private:
  explicit QemuProcess(sys::ChildProcess child);

  sys::ChildProcess child_;
};

// What the guest's /init printed on the console (kGuestBootedMarker, kGuestExitMarker).
struct GuestConsole {
  std::optional<double> booted_at_s;  // guest uptime when /init started wedge
  std::optional<int> wedge_exit;      // wedge run's exit status in the guest
  std::optional<double> exited_at_s;  // guest uptime when wedge run exited
};
GuestConsole ParseGuestConsole(std::string_view console);

struct GuestOptions {
  std::filesystem::path state_dir;          // the run directory and journal go here
  std::string qemu = "qemu-system-x86_64";  // searched in PATH
  int memory_mib = 1024;
  int cpus = 2;
  std::chrono::milliseconds deadline{180000};  // from qemu's start to its exit
  bool keep_run_directory = false;             // --keep: console log, initramfs, report
  std::ostream* progress = nullptr;
};

enum class GuestOutcome {
  kReported,  // the guest's wedge wrote a report and it came back
  kStuck,     // still running at the deadline: killed
  kFailed,    // exited without a report (boot failure, panic, wedge refused to run)
};
std::string_view GuestOutcomeName(GuestOutcome outcome);  // "reported", "guest-stuck", ...

struct GuestRun {
  GuestOutcome outcome = GuestOutcome::kFailed;
  nlohmann::json report;  // the guest wedge's --json report (null unless kReported)
  GuestConsole console;
  std::int64_t initramfs_ms = 0;  // host: building the initramfs
  std::uint64_t initramfs_bytes = 0;
  std::int64_t wall_ms = 0;               // host: qemu started -> exited or killed
  std::string detail;                     // why stuck or failed, one line
  std::string console_text;               // the whole console: kernel messages, wedge's output
  std::vector<std::string> console_tail;  // the console's last lines
  std::filesystem::path run_directory;    // kept only with keep_run_directory
};

// The argv that boots `kernel` with `initramfs`, the console on the first serial port
// (`console_log`) and the report channel on the second (`report_file`); `disk`, if not empty,
// attached read-only as the first virtio disk.
std::vector<std::string> QemuArguments(const GuestOptions& options, const KernelImage& kernel,
                                       const std::filesystem::path& initramfs,
                                       const std::filesystem::path& console_log,
                                       const std::filesystem::path& report_file,
                                       const std::filesystem::path& disk = {});

// Builds the initramfs for `contents` in a journaled run directory (and the disk image of its
// stack root, once: vm/stack_image.h), boots `kernel` with them and brings back the report.
// Everything it made on the host (the run directory, qemu) is undone before it returns, on every
// path. Errors are for what prevented the boot; what happened in the guest is in the GuestRun.
Result<GuestRun> RunInGuest(const KernelImage& kernel, const GuestContents& contents,
                            const GuestOptions& options);

}  // namespace wedge::vm
