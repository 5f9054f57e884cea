#include "wedge/base/allowed_sysctls.h"

namespace wedge {

const std::vector<std::string>& AllowedSysctls() {
  static const std::vector<std::string> kAllowed = {
      "fs.pipe-user-pages-soft",
      "fs.pipe-user-pages-hard",
      "fs.pipe-max-size",
  };
  return kAllowed;
}

}  // namespace wedge
