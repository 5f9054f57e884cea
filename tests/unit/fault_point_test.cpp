// Fault points in this build: with WEDGE_FAULT_POINTS (./ci/test's build) a child stops at the
// point WEDGE_FAULT_STOP_AT names, announcing it; without (the default) it ignores the variable.
// tests/fault_points_off/ checks the second case in every build.
#include "wedge/base/fault_point.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "fault_point_child.h"

namespace wedge {
namespace {

using testing::FaultPointChild;
using testing::RunAtFaultPoint;

TEST(FaultPoint, StopsAtTheNamedPointOnlyInABuildWithFaultPoints) {
  bool continued = false;
  const FaultPointChild child = RunAtFaultPoint(
      "trigger",
      [] {
        FaultPoint("setup");  // not the named point: returns in any build
        FaultPoint("trigger");
      },
      [&] {
        continued = true;
        return SIGCONT;
      });
  if (FaultPointsCompiledIn()) {
    EXPECT_TRUE(child.stopped);
    EXPECT_TRUE(continued);
    EXPECT_TRUE(child.exited) << "a continued child goes on past its fault point";
    EXPECT_EQ(child.output, "fault point: stopped before trigger\n");
  } else {
    EXPECT_FALSE(child.stopped);
    EXPECT_TRUE(child.exited);
    EXPECT_EQ(child.output, "");
  }
}

TEST(FaultPoint, WithoutTheVariableNoPointStops) {
  const FaultPointChild child = RunAtFaultPoint(
      "", [] { FaultPoint("setup"); }, [] { return SIGKILL; });
  EXPECT_FALSE(child.stopped);
  EXPECT_TRUE(child.exited);
  EXPECT_EQ(child.output, "");
}

}  // namespace
}  // namespace wedge
