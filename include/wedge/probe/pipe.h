// How full a pipe is, measured on a descriptor of it: wedge's own, or a copy of one another
// process holds (pidfd_getfd), which shares that process's open file description, so measuring
// consumes nothing and changes nothing.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"

namespace wedge::probe {

struct PipeFill {
  int capacity_bytes = 0;  // F_GETPIPE_SZ
  int unread_bytes = 0;    // FIONREAD: written and not yet read (0 when FIONREAD fails)
};
// Measures the pipe open as `fd` in wedge (either end). Fails when `fd` is not a pipe; the error
// reads "F_GETPIPE_SZ on WHAT: ...".
Result<PipeFill> MeasurePipe(int fd, std::string_view what);

// pidfd_getfd(pidfd, fd) (Linux 5.6): a copy of descriptor `fd` of the process `pidfd` refers
// to (`pid`, for the error text). Needs PTRACE_MODE_ATTACH_REALCREDS over it.
Result<UniqueFd> CopyDescriptor(int pidfd, pid_t pid, int fd);

// A pipe a live process holds: the link target of /proc/PID/fd/FD and how full it is.
struct HeldPipe {
  std::string target;  // "pipe:[123]"
  PipeFill fill;
};
// Measures descriptor `fd` of live process `pid` through a pidfd_getfd copy.
Result<HeldPipe> MeasureHeldPipe(pid_t pid, int fd);

}  // namespace wedge::probe
