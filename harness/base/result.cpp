#include "wedge/base/result.h"

#include <cstring>

namespace wedge {

Error Error::WithContext(std::string_view context) const {
  return Error(std::string(context) + ": " + message_);
}

std::string ErrnoName(int errno_value) {
  // strerrorname_np is glibc 2.32+, which every supported Debian has.
  const char* name = strerrorname_np(errno_value);
  return name != nullptr ? name : std::to_string(errno_value);
}

Error ErrnoError(std::string_view call, int errno_value) {
  return Error(std::string(call) + ": " + ErrnoName(errno_value) + " (" +
               std::strerror(errno_value) + ")");
}

}  // namespace wedge
