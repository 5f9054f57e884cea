// What a scenario test asserts after every run: the host is as it was before.
#pragma once

#include <gtest/gtest.h>

#include "wedge/runner/runner.h"
#include "wedge/sys/journal.h"

namespace wedge::testing {

inline runner::HostState HostNow() {
  return runner::CaptureHostState(sys::DefaultStateDirectory());
}

inline void ExpectHostUnchanged(const runner::HostState& before) {
  std::vector<std::string> leftovers = runner::DescribeLeftovers(before, HostNow());
  EXPECT_TRUE(leftovers.empty()) << "left behind: " << ::testing::PrintToString(leftovers);
}

}  // namespace wedge::testing
