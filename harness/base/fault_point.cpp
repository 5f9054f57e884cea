// The one file that sees WEDGE_FAULT_POINTS (defined for its target alone, wedge::fault_point,
// by the CMake option of the same name): toggling the option rebuilds nothing else.
#include "wedge/base/fault_point.h"

#include <signal.h>

#include <cstdlib>
#include <iostream>

namespace wedge {

#ifdef WEDGE_FAULT_POINTS

void FaultPoint(std::string_view name) {
  const char* stop_at = std::getenv("WEDGE_FAULT_STOP_AT");
  if (stop_at == nullptr || name != stop_at) return;
  // Flushed before the stop: the test reads the line to know where wedge is.
  std::cout << "fault point: stopped before " << name << std::endl;
  ::raise(SIGSTOP);
}

bool FaultPointsCompiledIn() { return true; }

#else

void FaultPoint(std::string_view) {}

bool FaultPointsCompiledIn() { return false; }

#endif

}  // namespace wedge
