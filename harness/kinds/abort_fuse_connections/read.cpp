#include "wedge/kinds/abort_fuse_connections.h"

namespace wedge::kinds {

scenario::AbortFuseConnections ReadAbortFuseConnections(const scenario::reader::Node& /*element*/,
                                                        scenario::ReadContext& /*context*/) {
  return scenario::AbortFuseConnections{};
}

}  // namespace wedge::kinds
