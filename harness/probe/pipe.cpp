#include "wedge/probe/pipe.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace wedge::probe {

Result<PipeFill> MeasurePipe(int fd, std::string_view what) {
  PipeFill fill;
  // F_GETPIPE_SZ fails (EBADF) on anything but a pipe, which is what tells a pipe apart here.
  const int capacity = ::fcntl(fd, F_GETPIPE_SZ);
  if (capacity < 0) return ErrnoError("F_GETPIPE_SZ on " + std::string(what));
  fill.capacity_bytes = capacity;
  int unread = 0;
  if (::ioctl(fd, FIONREAD, &unread) == 0) fill.unread_bytes = unread;
  return fill;
}

Result<UniqueFd> CopyDescriptor(int pidfd, pid_t pid, int fd) {
  // https://man7.org/linux/man-pages/man2/pidfd_getfd.2.html
  UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
  if (!copy.valid()) {
    return ErrnoError("pidfd_getfd(" + std::to_string(pid) + ", " + std::to_string(fd) + ")");
  }
  return copy;
}

Result<HeldPipe> MeasureHeldPipe(pid_t pid, int fd) {
  HeldPipe pipe;
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  std::error_code ec;
  pipe.target = std::filesystem::read_symlink(link, ec).string();
  if (ec) return Error("readlink " + link + ": " + ec.message());
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoError("pidfd_open(" + std::to_string(pid) + ")");
  WEDGE_ASSIGN_OR_RETURN(UniqueFd copy, CopyDescriptor(pidfd.get(), pid, fd));
  WEDGE_ASSIGN_OR_RETURN(
      pipe.fill, MeasurePipe(copy.get(), "fd " + std::to_string(fd) + " of pid " +
                                             std::to_string(pid) + " (" + pipe.target + ")"));
  return pipe;
}

}  // namespace wedge::probe
