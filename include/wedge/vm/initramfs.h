// The guest's root filesystem: an initramfs (cpio "newc", uncompressed) holding wedge, its
// fixtures, their shared libraries, busybox, the modules the scenarios need, the scenario files
// and an /init that runs them and sends the report back.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/vm/kernel.h"

namespace wedge::vm {

// Writes a cpio archive in the "newc" format the kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst). Entries owned by root.
class CpioWriter {
 public:
  // Creates (or truncates) `file`.
  static Result<CpioWriter> Create(const std::filesystem::path& file);

  // A directory at `path` (relative, no leading '/'), mode e.g. 0755.
  Status AddDirectory(std::string_view path, mode_t mode);
  // A regular file with `contents`.
  Status AddFile(std::string_view path, std::string_view contents, mode_t mode);
  // A symbolic link at `path` pointing to `target`.
  Status AddSymlink(std::string_view path, std::string_view target);
  // Writes the trailer and closes the file.
  Status Finish();

 private:
  CpioWriter(std::filesystem::path file, std::ofstream out);
  Status AddEntry(std::string_view path, std::uint32_t mode, std::string_view data);

  std::filesystem::path file_;
  std::ofstream out_;
  std::uint32_t next_inode_ = 1;
  std::uint64_t offset_ = 0;
};

// The shared libraries and the ELF interpreter `ldd` prints for a program, as absolute paths.
std::vector<std::filesystem::path> ParseLddOutput(std::string_view text);

// Where the guest keeps things.
inline constexpr std::string_view kGuestWedgeDirectory = "/wedge";         // wedge + fixtures
inline constexpr std::string_view kGuestScenarioDirectory = "/scenarios";  // scenario files
inline constexpr std::string_view kGuestReportPort = "/dev/ttyS1";         // report channel
inline constexpr std::string_view kGuestBootedMarker = "wedge-guest: booted";
inline constexpr std::string_view kGuestExitMarker = "wedge-guest: wedge exited";

// What goes into a guest.
struct GuestContents {
  std::filesystem::path wedge_directory;        // the host's wedge, wedge-init, wedge-fuse
  std::filesystem::path busybox;                // a static busybox: the guest's shell and tools
  std::vector<std::filesystem::path> programs;  // more host programs, at the same paths
  // Programs that reach the guest otherwise (on its disk) whose shared libraries, as the host's
  // ldd finds them, go into the initramfs: a release's docker CLI, run with the guest's libc.
  std::vector<std::filesystem::path> library_users;
  std::vector<std::filesystem::path> scenario_files;
  std::filesystem::path modules_dir;         // the kernel's lib/modules/RELEASE (may be empty)
  std::vector<KernelModule> modules;         // to load, in order
  std::vector<std::string> wedge_arguments;  // after `wedge run SCENARIOS...`
  // More files, at these guest paths with these contents (the /etc a host stack's daemons
  // read, a release root's manifest).
  std::map<std::filesystem::path, std::string> files;
  // Exported before wedge runs.
  std::map<std::string, std::string> environment;
  // A release root (its host path), which the guest mounts at the same path from a read-only
  // disk, its /dev/vda: `disk_image` (vm/stack_image.h; RunInGuest builds it). Empty: no disk.
  std::filesystem::path stack_root;
  std::filesystem::path disk_image;
  // Whether /init first moves everything onto a tmpfs and switch_roots there (for pivot_root,
  // which refuses a namespace whose root is the initramfs).
  bool switch_root = false;
};

// The /init script: mounts proc, sysfs, devtmpfs, cgroup2 (every controller enabled for
// children), tmpfs /run and /tmp; loads the modules; mounts the disk, if any; runs `wedge run` on
// the scenarios with the arguments and the environment; writes the JSON report raw to the report
// port; prints the exit markers; powers off.
std::string GuestInitScript(const GuestContents& contents);

// Writes the initramfs for `contents` to `file`. Fails, naming the file, when a program, a
// library or a module cannot be read (compressed modules are refused: busybox insmod loads
// plain .ko files only).
Status BuildInitramfs(const GuestContents& contents, const std::filesystem::path& file);

}  // namespace wedge::vm
