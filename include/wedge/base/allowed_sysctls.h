// The host-wide sysctls wedge may change: what a scenario may set (the loader's allowlist), what
// the host check watches, and all a replayed journal may write back.
#pragma once

#include <string>
#include <vector>

namespace wedge {

// As "fs.pipe-user-pages-soft". docs/scenario-format.md says why each one is here.
const std::vector<std::string>& AllowedSysctls();

}  // namespace wedge
