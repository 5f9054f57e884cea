#include "wedge/vm/guest.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "wedge/base/fault_point.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/files.h"
#include "wedge/vm/stack_image.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

constexpr size_t kConsoleTailLines = 15;

std::optional<double> NumberAfter(std::string_view line, std::string_view marker) {
  if (line.rfind(marker, 0) != 0) return std::nullopt;
  std::string rest(line.substr(marker.size()));
  char* end = nullptr;
  double value = std::strtod(rest.c_str(), &end);
  if (end == rest.c_str()) return std::nullopt;
  return value;
}

std::vector<std::string> LastLines(std::string_view text, size_t count) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<long>(count));
  return lines;
}

std::string NewGuestRunId(const KernelImage& kernel) {
  static std::atomic<int> counter{0};
  std::string release = kernel.release.empty() ? "kernel" : kernel.release;
  std::replace_if(
      release.begin(), release.end(),
      [](char c) { return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'); },
      '-');
  return "guest-" + release + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

Result<std::unique_ptr<QemuProcess>> QemuProcess::Start(sys::Journal& journal,
                                                        const std::vector<std::string>& argv,
                                                        const fs::path& output_log) {
  if (argv.empty()) return Error("QemuProcess::Start: empty argv");
  UniqueFd log(::open(output_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) return ErrnoError("open('" + output_log.string() + "')");
  sys::ChildSpec spec;
  spec.role = "qemu";
  spec.argv = argv;
  spec.stdin_stream = sys::ChildStream::Null();
  spec.stdout_stream = sys::ChildStream::Descriptor(log.get());
  spec.stderr_stream = sys::ChildStream::Descriptor(log.get());
  // qemu never outlives wedge, even a SIGKILLed wedge that cleanup has not run after yet.
  spec.parent_death_signal = SIGKILL;
  // A process group of its own: a terminal's Ctrl-C reaches wedge, which stops qemu in order,
  // and not qemu directly.
  spec.new_process_group = true;
  WEDGE_ASSIGN_OR_RETURN(sys::ChildProcess child, sys::ChildProcess::Start(journal, spec));
  return std::unique_ptr<QemuProcess>(new QemuProcess(std::move(child)));
}

QemuProcess::QemuProcess(sys::ChildProcess child) : child_(std::move(child)) {}

QemuProcess::~QemuProcess() { Kill(); }

bool QemuProcess::WaitForExit(std::int64_t deadline_ms) {
  return child_.WaitUntil(deadline_ms).has_value();
}

void QemuProcess::Kill() { child_.Kill(); }

GuestConsole ParseGuestConsole(std::string_view console) {
  GuestConsole parsed;
  std::istringstream in{std::string(console)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // The kernel may print on the same port: markers are found where they start.
    size_t at = line.find("wedge-guest: ");
    if (at == std::string::npos) continue;
    std::string_view marked = std::string_view(line).substr(at);
    if (auto booted = NumberAfter(marked, std::string(kGuestBootedMarker) + " ")) {
      parsed.booted_at_s = booted;
    }
    if (marked.rfind(kGuestExitMarker, 0) == 0) {
      std::istringstream words{std::string(marked.substr(kGuestExitMarker.size()))};
      int status = 0;
      std::string at_word;
      double uptime = 0;
      if (words >> status) parsed.wedge_exit = status;
      if (words >> at_word >> uptime && at_word == "at") parsed.exited_at_s = uptime;
    }
  }
  return parsed;
}

std::string_view GuestOutcomeName(GuestOutcome outcome) {
  switch (outcome) {
    case GuestOutcome::kReported:
      return "reported";
    case GuestOutcome::kStuck:
      return "guest-stuck";
    case GuestOutcome::kFailed:
      return "guest-failed";
  }
  return "?";
}

std::vector<std::string> QemuArguments(const GuestOptions& options, const KernelImage& kernel,
                                       const fs::path& initramfs, const fs::path& console_log,
                                       const fs::path& report_file, const fs::path& disk) {
  // TCG, not KVM: a KVM guest hung at boot on the machines wedge runs on (FINDINGS.md).
  // -nodefaults: no VGA, network or disks; -no-reboot: the guest's panic (panic=-1 reboots at
  // once) and its poweroff both end qemu.
  std::vector<std::string> argv = {options.qemu,
                                   "-accel",
                                   "tcg",
                                   "-m",
                                   std::to_string(options.memory_mib),
                                   "-smp",
                                   std::to_string(options.cpus),
                                   "-nodefaults",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-kernel",
                                   kernel.vmlinuz.string(),
                                   "-initrd",
                                   initramfs.string(),
                                   "-append",
                                   "console=ttyS0 panic=-1 quiet",
                                   "-serial",
                                   "file:" + console_log.string(),
                                   "-serial",
                                   "file:" + report_file.string()};
  if (!disk.empty()) {
    argv.insert(argv.end(),
                {"-drive", "file=" + disk.string() + ",if=virtio,format=raw,readonly=on"});
  }
  return argv;
}

Result<GuestRun> RunInGuest(const KernelImage& kernel, const GuestContents& contents,
                            const GuestOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.progress != nullptr)
      *options.progress << "[" << kernel.label << "] " << line << std::endl;
  };
  const std::string run_id = NewGuestRunId(kernel);
  WEDGE_ASSIGN_OR_RETURN(std::unique_ptr<sys::Journal> journal,
                         sys::Journal::Create(options.state_dir, run_id));
  const fs::path run_dir = options.state_dir / "runs" / run_id;
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t run_dir_seq, journal->Record(sys::DirectoryChange{run_dir}));
  // The run directory goes on every path (or stays, journaled as kept, with --keep).
  sys::JournalEntryOwner run_dir_owner(*journal, run_dir_seq, options.keep_run_directory);
  std::error_code ec;
  WEDGE_RETURN_IF_ERROR(sys::MakePrivateDirectory(run_dir));

  const fs::path initramfs = run_dir / "initramfs.cpio";
  const fs::path console_log = run_dir / "console.log";
  const fs::path report_file = run_dir / "report.json";
  GuestRun run;
  const std::int64_t building = sys::MonotonicMillis();
  GuestContents with_disk = contents;
  if (!contents.stack_root.empty()) {
    WEDGE_ASSIGN_OR_RETURN(with_disk.disk_image,
                           EnsureStackImage(contents.stack_root, *journal, options.progress));
  }
  WEDGE_RETURN_IF_ERROR(BuildInitramfs(with_disk, initramfs));
  run.initramfs_ms = sys::MonotonicMillis() - building;
  run.initramfs_bytes = fs::file_size(initramfs, ec);
  say("booting " + kernel.vmlinuz.string() + " under qemu (TCG), deadline " +
      std::to_string(options.deadline.count() / 1000) + " s");

  const std::int64_t started = sys::MonotonicMillis();
  {
    WEDGE_ASSIGN_OR_RETURN(std::unique_ptr<QemuProcess> qemu,
                           QemuProcess::Start(*journal,
                                              QemuArguments(options, kernel, initramfs, console_log,
                                                            report_file, with_disk.disk_image),
                                              run_dir / "qemu.log"));
    // qemu runs and is journaled: a kill here leaves a live guest for cleanup.
    FaultPoint("guest");
    if (!qemu->WaitForExit(started + options.deadline.count())) {
      qemu->Kill();
      if (sys::Interrupted() != 0) {
        run.detail = "wedge was interrupted; qemu (pid " + std::to_string(qemu->pid()) + ") killed";
      } else {
        run.outcome = GuestOutcome::kStuck;
        run.detail = "no poweroff within " + std::to_string(options.deadline.count()) +
                     " ms; qemu (pid " + std::to_string(qemu->pid()) + ") killed";
      }
    } else if (int status = qemu->wait_status().value_or(0);
               !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Result<std::string> qemu_log = sys::ReadFile(run_dir / "qemu.log");
      std::vector<std::string> last = LastLines(qemu_log.ok() ? *qemu_log : "", 1);
      run.detail =
          "qemu exited with status " +
          std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
          (last.empty() ? "" : ": " + last.front());
    }
  }
  run.wall_ms = sys::MonotonicMillis() - started;
  Result<std::string> console = sys::ReadFile(console_log);
  run.console = ParseGuestConsole(console.ok() ? *console : "");
  run.console_tail = LastLines(console.ok() ? *console : "", kConsoleTailLines);
  if (console.ok()) run.console_text = std::move(*console);
  if (run.detail.empty()) {
    Result<std::string> report_text = sys::ReadFile(report_file);
    nlohmann::json report =
        report_text.ok() ? nlohmann::json::parse(*report_text, nullptr, false) : nlohmann::json();
    if (report.is_object() && report.contains("results")) {
      run.outcome = GuestOutcome::kReported;
      run.report = std::move(report);
    } else if (!run.console.booted_at_s) {
      run.detail = "the guest never reached /init (see the console below)";
    } else if (run.console.wedge_exit) {
      run.detail = "wedge in the guest exited " + std::to_string(*run.console.wedge_exit) +
                   " without a report";
    } else {
      run.detail = "the guest powered off without a report";
    }
  }
  if (options.keep_run_directory) {
    run.run_directory = run_dir;
    say("kept " + run_dir.string() + " (initramfs.cpio, console.log, report.json, qemu.log)");
  }
  say(std::string(GuestOutcomeName(run.outcome)) + " after " + std::to_string(run.wall_ms) + " ms" +
      (run.detail.empty() ? "" : ": " + run.detail));
  return run;
}

}  // namespace wedge::vm
