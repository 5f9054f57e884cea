#include "wedge/sys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "wedge/base/unique_fd.h"

namespace wedge::sys {

Status MakePrivateDirectory(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error("create_directories('" + path.string() + "'): " + ec.message());
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError("lstat('" + path.string() + "')");
  if (!S_ISDIR(st.st_mode)) {
    return Error("refusing '" + path.string() +
                 "': not a directory (symbolic links are not followed)");
  }
  if (st.st_uid != ::geteuid()) {
    return Error("refusing '" + path.string() + "': owned by uid " + std::to_string(st.st_uid) +
                 ", not by wedge's uid " + std::to_string(::geteuid()));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(path.c_str(), 0700) != 0) {
    return ErrnoError("chmod('" + path.string() + "', 0700)");
  }
  return OkStatus();
}

Status CheckSharedDirectory(const std::filesystem::path& directory) {
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0)
    return ErrnoError("lstat('" + directory.string() + "')");
  if (!S_ISDIR(st.st_mode)) return Error(directory.string() + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Error(directory.string() + " is owned by uid " + std::to_string(st.st_uid) +
                 ", not by wedge's uid " + std::to_string(::geteuid()));
  }
  if ((st.st_mode & 022) != 0) {
    return Error(directory.string() + " is writable by others than its owner");
  }
  return OkStatus();
}

Status MakeSharedDirectory(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error("create_directories('" + path.string() + "'): " + ec.message());
  return CheckSharedDirectory(path);
}

Result<std::string> ReadDescriptor(int fd, std::string_view name) {
  std::string contents;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read('" + std::string(name) + "')");
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  return contents;
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "')");
  return ReadDescriptor(fd.get(), path.string());
}

Status WriteExisting(const std::filesystem::path& path, std::string_view contents) {
  // O_TRUNC as a shell's `echo >` does: /proc and /sys ignore it, regular files need it.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "', O_WRONLY)");
  ssize_t n = ::write(fd.get(), contents.data(), contents.size());
  if (n < 0) return ErrnoError("write('" + path.string() + "', '" + std::string(contents) + "')");
  if (static_cast<size_t>(n) != contents.size()) {
    return Error("write('" + path.string() + "'): short write");
  }
  return OkStatus();
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode) {
  std::filesystem::path directory = path.parent_path();
  if (directory.empty()) directory = ".";
  std::string temp = (directory / ("." + path.filename().string() + ".XXXXXX")).string();
  UniqueFd fd(::mkstemp(temp.data()));
  if (!fd.valid()) return ErrnoError("mkstemp('" + temp + "')");
  // Unlinked on every path that does not rename it into place.
  struct TemporaryName {
    const std::string& path;
    bool renamed = false;
    ~TemporaryName() {
      if (!renamed) ::unlink(path.c_str());
    }
  } temporary{temp};
  // The child of a fork in another thread must not keep the temporary file open.
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  // mkstemp creates the file 0600; fchmod, unlike open's mode, is not filtered by the umask.
  if (::fchmod(fd.get(), mode) != 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    return ErrnoError("fchmod('" + temp + "', " + octal + ")");
  }
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write('" + temp + "')");
    }
    written += static_cast<size_t>(n);
  }
  // Without fsync before rename, a crash can leave an empty file under the final name.
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync('" + temp + "')");
  if (::close(fd.Release()) != 0) return ErrnoError("close('" + temp + "')");
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError("rename('" + temp + "', '" + path.string() + "')");
  }
  temporary.renamed = true;
  // Makes the rename itself durable; the file is already complete if this fails.
  UniqueFd directory_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory_fd.valid()) ::fsync(directory_fd.get());
  return OkStatus();
}

std::string TrimTrailing(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

namespace {

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

Status CheckPrivateDirectory(const std::filesystem::path& directory) {
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0)
    return ErrnoError("lstat('" + directory.string() + "')");
  if (!S_ISDIR(st.st_mode)) {
    return Error(directory.string() + " is not a directory (symbolic links are not followed)");
  }
  if (st.st_uid != ::geteuid()) {
    return Error(directory.string() + " is owned by uid " + std::to_string(st.st_uid) +
                 ", not by wedge's uid " + std::to_string(::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return Error(directory.string() + " has mode " + OctalMode(st.st_mode) + ", not 0700");
  }
  return OkStatus();
}

Status CheckPrivateFile(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("fstat");
  if (!S_ISREG(st.st_mode)) return Error("not a regular file");
  if (st.st_uid != ::geteuid()) {
    return Error("owned by uid " + std::to_string(st.st_uid) + ", not by wedge's uid " +
                 std::to_string(::geteuid()));
  }
  if ((st.st_mode & 07777) != 0600) return Error("mode " + OctalMode(st.st_mode) + ", not 0600");
  if (st.st_nlink > 1) return Error(std::to_string(st.st_nlink) + " hard links, not 1");
  return OkStatus();
}

}  // namespace wedge::sys
