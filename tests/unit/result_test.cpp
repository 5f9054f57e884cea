#include "wedge/base/result.h"

#include <gtest/gtest.h>

namespace wedge {
namespace {

TEST(ErrnoError, RepeatsTheCallAndNamesTheErrno) {
  Error error = ErrnoError("open('/nonexistent')", ENOENT);
  EXPECT_EQ(error.message(), "open('/nonexistent'): ENOENT (No such file or directory)");
}

TEST(Error, WithContextPrependsTheContext) {
  EXPECT_EQ(Error("boom").WithContext("reading /proc/1/stack").message(),
            "reading /proc/1/stack: boom");
}

Result<int> Half(int value) {
  if (value % 2 != 0) return Error("odd: " + std::to_string(value));
  return value / 2;
}

Result<int> Quarter(int value) {
  WEDGE_ASSIGN_OR_RETURN(int half, Half(value));
  WEDGE_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(Result, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> failed = Quarter(6);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "odd: 3");
}

}  // namespace
}  // namespace wedge
