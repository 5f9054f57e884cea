#include "wedge/vm/initramfs.h"

#include <sys/stat.h>

#include <cstdio>
#include <optional>
#include <set>
#include <sstream>

#include "wedge/sys/command.h"
#include "wedge/sys/files.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

// The busybox applets /init uses.
constexpr const char* kApplets[] = {"sh",   "mount",  "mkdir",    "insmod", "cat",        "echo",
                                    "cut",  "stty",   "poweroff", "ls",     "grep",       "sleep",
                                    "unxz", "gunzip", "cp",       "touch",  "switch_root"};

// How /init decompresses a module busybox insmod cannot load as it is: .ko.xz and .ko.gz
// (Debian's 6.12 packages ship .ko.xz). zstd has no busybox applet.
std::optional<std::string> Decompressor(const fs::path& module) {
  if (module.extension() == ".ko") return "";
  if (module.extension() == ".xz") return "unxz";
  if (module.extension() == ".gz") return "gunzip";
  return std::nullopt;
}

std::string Hex8(std::uint64_t value) {
  char text[9];
  std::snprintf(text, sizeof text, "%08llx", static_cast<unsigned long long>(value));
  return text;
}

// A path in the archive: relative, without a leading '/'.
std::string ArchivePath(const fs::path& path) {
  std::string text = path.lexically_normal().string();
  while (!text.empty() && text.front() == '/') text.erase(0, 1);
  return text;
}

std::string ShellQuote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted.push_back(c);
    }
  }
  return quoted + "'";
}

// Adds every parent directory of `path` not yet added.
Status AddParents(CpioWriter& writer, const fs::path& path, std::set<std::string>& directories) {
  fs::path level;
  for (const auto& part : fs::path(ArchivePath(path)).parent_path()) {
    level /= part;
    if (directories.insert(level.string()).second) {
      WEDGE_RETURN_IF_ERROR(writer.AddDirectory(level.string(), 0755));
    }
  }
  return OkStatus();
}

Status AddHostFile(CpioWriter& writer, const fs::path& host, const fs::path& guest,
                   std::set<std::string>& directories) {
  WEDGE_ASSIGN_OR_RETURN(std::string contents, sys::ReadFile(host));
  struct stat st {};
  if (::stat(host.c_str(), &st) != 0) return ErrnoError("stat('" + host.string() + "')");
  WEDGE_RETURN_IF_ERROR(AddParents(writer, guest, directories));
  // Set-id bits mean nothing for root in the guest; they are dropped.
  return writer.AddFile(ArchivePath(guest), contents, st.st_mode & 0755);
}

// wedge's own programs without their debug sections, when binutils' strip is there: a
// RelWithDebInfo build is about 55 MB of DWARF the guest never reads, and unpacking it costs
// the guest about 0.4 s of its boot under TCG. The stripped copy goes beside `scratch` and is
// removed once read.
Result<std::string> ProgramWithoutDebugInfo(const fs::path& program, const fs::path& scratch) {
  const fs::path stripped = scratch.string() + "." + program.filename().string() + ".stripped";
  Result<sys::CommandOutput> strip =
      sys::RunCommand("strip", {"--strip-debug", "-o", stripped.string(), program.string()});
  Result<std::string> contents =
      strip.ok() && strip->exit_code == 0 ? sys::ReadFile(stripped) : sys::ReadFile(program);
  std::error_code ec;
  fs::remove(stripped, ec);
  return contents;
}

}  // namespace

Result<CpioWriter> CpioWriter::Create(const fs::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return ErrnoError("open('" + file.string() + "', O_WRONLY|O_CREAT|O_TRUNC)");
  return CpioWriter(file, std::move(out));
}

CpioWriter::CpioWriter(fs::path file, std::ofstream out)
    : file_(std::move(file)), out_(std::move(out)) {}

Status CpioWriter::AddEntry(std::string_view path, std::uint32_t mode, std::string_view data) {
  // newc: "070701", then 13 fields of 8 hex digits (ino, mode, uid, gid, nlink, mtime,
  // filesize, devmajor, devminor, rdevmajor, rdevminor, namesize with its NUL, check), the
  // name, padding to 4 bytes, the data, padding to 4 bytes.
  const std::uint64_t name_size = path.size() + 1;
  std::string header = "070701";
  for (std::uint64_t field :
       {std::uint64_t{next_inode_++}, std::uint64_t{mode}, std::uint64_t{0}, std::uint64_t{0},
        std::uint64_t{(mode & S_IFMT) == S_IFDIR ? 2u : 1u}, std::uint64_t{0},
        std::uint64_t{data.size()}, std::uint64_t{0}, std::uint64_t{0}, std::uint64_t{0},
        std::uint64_t{0}, name_size, std::uint64_t{0}}) {
    header += Hex8(field);
  }
  auto pad = [this](std::uint64_t length) {
    static constexpr char kZeros[4] = {0, 0, 0, 0};
    out_.write(kZeros, static_cast<std::streamsize>((4 - length % 4) % 4));
    offset_ += (4 - length % 4) % 4;
  };
  out_.write(header.data(), static_cast<std::streamsize>(header.size()));
  out_.write(path.data(), static_cast<std::streamsize>(path.size()));
  out_.put('\0');
  offset_ += header.size() + name_size;
  pad(offset_);
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  offset_ += data.size();
  pad(offset_);
  if (!out_)
    return Error("write('" + file_.string() + "'): failed at byte " + std::to_string(offset_));
  return OkStatus();
}

Status CpioWriter::AddDirectory(std::string_view path, mode_t mode) {
  return AddEntry(path, S_IFDIR | (mode & 07777), "");
}

Status CpioWriter::AddFile(std::string_view path, std::string_view contents, mode_t mode) {
  return AddEntry(path, S_IFREG | (mode & 07777), contents);
}

Status CpioWriter::AddSymlink(std::string_view path, std::string_view target) {
  return AddEntry(path, S_IFLNK | 0777, target);
}

Status CpioWriter::Finish() {
  WEDGE_RETURN_IF_ERROR(AddEntry("TRAILER!!!", 0, ""));
  out_.close();
  if (!out_) return Error("close('" + file_.string() + "') failed");
  return OkStatus();
}

std::vector<fs::path> ParseLddOutput(std::string_view text) {
  // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "\t/lib64/ld-linux-x86-64.so.2
  // (0x...)", and "\tlinux-vdso.so.1 (0x...)", which the kernel provides.
  std::vector<fs::path> paths;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) fields.push_back(word);
    std::string path;
    if (fields.size() >= 3 && fields[1] == "=>") {
      path = fields[2];
    } else if (!fields.empty()) {
      path = fields[0];
    }
    if (!path.empty() && path.front() == '/') paths.emplace_back(path);
  }
  return paths;
}

std::string GuestInitScript(const GuestContents& contents) {
  const std::string wedge_dir(kGuestWedgeDirectory);
  std::ostringstream script;
  script << "#!/bin/sh\n"
         << "# wedge's guest: runs the scenarios, sends the report to the host, powers off.\n"
         << "export PATH=/bin:/usr/bin:/sbin:/usr/sbin\n";
  if (contents.switch_root) {
    // Everything onto a tmpfs, then switch_root there (which empties the initramfs): runc's
    // pivot_root refuses a mount namespace whose root is the initramfs.
    script << "if [ ! -e /.wedge-tmpfs-root ]; then\n"
           << "  mkdir /newroot && mount -t tmpfs -o mode=0755 tmpfs /newroot\n"
           << "  for entry in /*; do\n"
           << "    case $entry in /newroot|/proc|/sys|/dev) ;; *) cp -a $entry /newroot/ ;; esac\n"
           << "  done\n"
           << "  mkdir -p /newroot/proc /newroot/sys /newroot/dev && touch "
              "/newroot/.wedge-tmpfs-root\n"
           << "  exec switch_root /newroot /init\n"
           << "fi\n";
  }
  script << "mount -t proc proc /proc\n"
         << "mount -t sysfs sysfs /sys\n"
         << "mount -t devtmpfs devtmpfs /dev\n"
         // What udev or an init system makes on a host: before 5.14 or so, execveat(fd, "",
         // AT_EMPTY_PATH), how runc re-executes itself, fails with ENOENT without it.
         << "ln -s /proc/self/fd /dev/fd\n"
         << "mount -t tmpfs tmpfs /run\n"
         << "mount -t tmpfs tmpfs /tmp\n"
         << "mount -t cgroup2 cgroup2 /sys/fs/cgroup\n"
         // wedge's sandbox cgroups sit two levels down and need the pids controller there; a
         // private stack's containers get what runc asks of the others.
         << "for c in $(cat /sys/fs/cgroup/cgroup.controllers); do\n"
         << "  echo +$c > /sys/fs/cgroup/cgroup.subtree_control\n"
         << "done\n";
  for (const auto& module : contents.modules) {
    const std::string path = ShellQuote("/modules/" + module.path.string());
    const std::string decompressor = Decompressor(module.path).value_or("");
    if (decompressor.empty()) {
      script << "insmod " << path;
    } else {
      const std::string plain = ShellQuote("/tmp/" + module.name + ".ko");
      script << decompressor << " -c " << path << " > " << plain << " && insmod " << plain;
    }
    script << " || echo 'wedge-guest: insmod " << module.name << " failed'\n";
  }
  if (!contents.disk_image.empty()) {
    const std::string mount_point = ShellQuote(contents.stack_root.string());
    script << "mkdir -p " << mount_point << " && mount -t ext4 -o ro /dev/vda " << mount_point
           << " || echo 'wedge-guest: mounting /dev/vda at " << contents.stack_root.string()
           << " failed'\n";
  }
  for (const auto& [name, value] : contents.environment) {
    script << "export " << name << "=" << ShellQuote(value) << "\n";
  }
  script << "echo \"" << kGuestBootedMarker << " $(cut -d' ' -f1 /proc/uptime)\"\n"
         << wedge_dir << "/wedge run";
  for (const auto& file : contents.scenario_files) {
    script << " "
           << ShellQuote(std::string(kGuestScenarioDirectory) + "/" + file.filename().string());
  }
  for (const auto& argument : contents.wedge_arguments) script << " " << ShellQuote(argument);
  script << " --json /tmp/report.json\n"
         << "status=$?\n"
         << "echo \"" << kGuestExitMarker << " $status at $(cut -d' ' -f1 /proc/uptime)\"\n"
         << "stty -F " << kGuestReportPort << " raw -echo\n"
         << "[ -f /tmp/report.json ] && cat /tmp/report.json > " << kGuestReportPort << "\n"
         << "poweroff -f\n";
  return script.str();
}

Status BuildInitramfs(const GuestContents& contents, const fs::path& file) {
  WEDGE_ASSIGN_OR_RETURN(CpioWriter writer, CpioWriter::Create(file));
  std::set<std::string> directories;
  for (const char* directory : {"bin", "proc", "sys", "dev", "run", "tmp", "scenarios"}) {
    directories.insert(directory);
    WEDGE_RETURN_IF_ERROR(writer.AddDirectory(directory, 0755));
  }
  for (const char* applet : kApplets) {
    WEDGE_RETURN_IF_ERROR(writer.AddSymlink(std::string("bin/") + applet, "busybox"));
  }
  // wedge and its fixtures (without debug info), other programs as they are, and each
  // program's shared libraries at the paths ldd resolves them to.
  struct Program {
    fs::path host;
    fs::path guest;
    bool wedges_own;
  };
  std::vector<Program> programs;
  for (const char* name : {"wedge", "wedge-init", "wedge-fuse"}) {
    programs.push_back(
        {contents.wedge_directory / name, fs::path(kGuestWedgeDirectory) / name, true});
  }
  programs.push_back({contents.busybox, "bin/busybox", false});
  for (const auto& program : contents.programs) programs.push_back({program, program, false});
  std::set<fs::path> libraries;
  // The shared libraries of host program `path`, as ldd resolves them; a static program
  // (busybox-static) needs none.
  auto add_libraries_of = [&libraries](const fs::path& path) -> Status {
    WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput ldd, sys::RunCommand("ldd", {path.string()}));
    if (ldd.exit_code != 0 && ldd.output.find("not a dynamic executable") != std::string::npos) {
      return OkStatus();
    }
    if (ldd.exit_code != 0) return Error("ldd " + path.string() + " failed: " + ldd.output);
    for (const auto& library : ParseLddOutput(ldd.output)) libraries.insert(library);
    return OkStatus();
  };
  for (const auto& program : programs) {
    if (program.wedges_own) {
      WEDGE_ASSIGN_OR_RETURN(std::string bytes, ProgramWithoutDebugInfo(program.host, file));
      WEDGE_RETURN_IF_ERROR(AddParents(writer, program.guest, directories));
      WEDGE_RETURN_IF_ERROR(writer.AddFile(ArchivePath(program.guest), bytes, 0755));
    } else {
      WEDGE_RETURN_IF_ERROR(AddHostFile(writer, program.host, program.guest, directories));
    }
    WEDGE_RETURN_IF_ERROR(add_libraries_of(program.host));
  }
  for (const auto& user : contents.library_users) WEDGE_RETURN_IF_ERROR(add_libraries_of(user));
  for (const auto& library : libraries) {
    WEDGE_RETURN_IF_ERROR(AddHostFile(writer, library, library, directories));
  }
  for (const auto& scenario : contents.scenario_files) {
    WEDGE_RETURN_IF_ERROR(AddHostFile(
        writer, scenario, fs::path(kGuestScenarioDirectory) / scenario.filename(), directories));
  }
  for (const auto& module : contents.modules) {
    if (!Decompressor(module.path)) {
      return Error("module " + (contents.modules_dir / module.path).string() +
                   " is compressed in a format the guest's busybox cannot decompress (it has "
                   "unxz and gunzip)");
    }
    WEDGE_RETURN_IF_ERROR(AddHostFile(writer, contents.modules_dir / module.path,
                                      fs::path("modules") / module.path, directories));
  }
  for (const auto& [path, text] : contents.files) {
    WEDGE_RETURN_IF_ERROR(AddParents(writer, path, directories));
    WEDGE_RETURN_IF_ERROR(writer.AddFile(ArchivePath(path), text, 0644));
  }
  WEDGE_RETURN_IF_ERROR(writer.AddFile("init", GuestInitScript(contents), 0755));
  return writer.Finish();
}

}  // namespace wedge::vm
