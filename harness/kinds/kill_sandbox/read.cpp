#include "wedge/kinds/kill_sandbox.h"

namespace wedge::kinds {

scenario::KillSandbox ReadKillSandbox(const scenario::reader::Node& /*element*/,
                                      scenario::ReadContext& /*context*/) {
  return scenario::KillSandbox{};
}

}  // namespace wedge::kinds
