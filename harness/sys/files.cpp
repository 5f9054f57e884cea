#include "wedge/sys/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "wedge/base/unique_fd.h"

namespace wedge::sys {

Result<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "')");
  std::string contents;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read('" + path.string() + "')");
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  return contents;
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

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path temp = path;
  temp += ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError("open('" + temp.string() + "', O_CREAT)");
    size_t written = 0;
    while (written < contents.size()) {
      ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        Error error = ErrnoError("write('" + temp.string() + "')");
        ::unlink(temp.c_str());
        return error;
      }
      written += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return ErrnoError("fsync('" + temp.string() + "')");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Error error = ErrnoError("rename('" + temp.string() + "', '" + path.string() + "')");
    ::unlink(temp.c_str());
    return error;
  }
  return OkStatus();
}

std::string TrimTrailing(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

}  // namespace wedge::sys
