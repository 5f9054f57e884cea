// A wedge built without WEDGE_FAULT_POINTS (the default, ./ci/suite's build, an installed wedge)
// ignores WEDGE_FAULT_STOP_AT: this binary compiles the fault-point module a second time without
// the option, whatever the build's, and checks that a point the variable names returns.
#include <gtest/gtest.h>
#include <signal.h>

#include "unit/fault_point_child.h"
#include "wedge/base/fault_point.h"

namespace wedge {
namespace {

using testing::FaultPointChild;
using testing::RunAtFaultPoint;

TEST(FaultPointsOff, TheModuleBuiltWithoutTheOptionHasNone) {
  EXPECT_FALSE(FaultPointsCompiledIn());
}

TEST(FaultPointsOff, APointTheVariableNamesReturnsWithoutStopping) {
  bool stopped_callback = false;
  const FaultPointChild child = RunAtFaultPoint(
      "x", [] { FaultPoint("x"); },
      [&] {
        stopped_callback = true;
        return SIGKILL;
      });
  EXPECT_FALSE(child.stopped);
  EXPECT_FALSE(stopped_callback);
  EXPECT_TRUE(child.exited) << "FaultPoint(\"x\") must return with WEDGE_FAULT_STOP_AT=x";
  EXPECT_EQ(child.output, "");
}

}  // namespace
}  // namespace wedge
