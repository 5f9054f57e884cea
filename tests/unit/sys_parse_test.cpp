#include <gtest/gtest.h>

#include "wedge/sys/fuse.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"

namespace wedge::sys {
namespace {

TEST(FuseConnections, AreTheMinorOfFuseMountsInMountinfo) {
  constexpr const char* kMountinfo =
      "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
      "612 598 0:40 / /run/wedge/runs/r/mnt rw,nosuid,nodev,relatime - fuse.wedge wedge-fuse "
      "rw,user_id=0,group_id=0,default_permissions,allow_other\n"
      "613 598 0:52 / /mnt/plain rw,relatime - fuse sshfs rw,user_id=0,group_id=0\n"
      "614 598 0:53 / /sys/fs/fuse/connections rw,relatime - fusectl fusectl rw\n"
      "615 598 8:1 / /media/usb rw,relatime - fuseblk /dev/sdb1 rw\n";
  EXPECT_EQ(ParseFuseConnections(kMountinfo), (std::set<unsigned>{40, 52}));
}

TEST(PidList, ParsesCgroupProcsText) {
  EXPECT_EQ(ParsePidList("12\n345\n6\n"), (std::vector<pid_t>{12, 345, 6}));
  EXPECT_TRUE(ParsePidList("").empty());
}

TEST(ProcessIdentity, StartTimeTellsAReusedPidApart) {
  std::optional<std::uint64_t> self = ProcessStartTime(::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_TRUE(IsSameProcess(::getpid(), *self));
  EXPECT_FALSE(IsSameProcess(::getpid(), *self + 1));
}

}  // namespace
}  // namespace wedge::sys

namespace wedge::sys {
namespace {

TEST(MountInfo, DecodesEscapedMountPointsAndSkipsOptionalFields) {
  auto mounts = ParseMountInfo(
      "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:2 - ext3 /dev/r rw\n"
      "garbage\n"
      "40 1 0:41 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].mount_point, "/mnt with space");
  EXPECT_EQ(mounts[0].device, "98:0");
  EXPECT_EQ(mounts[0].fstype, "ext3");
  EXPECT_EQ(mounts[1].fstype, "cgroup");
}

}  // namespace
}  // namespace wedge::sys
