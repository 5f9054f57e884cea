// Tests of the probe's pipe measurements on a real pipe of the test process itself: capacity
// (F_GETPIPE_SZ), unread bytes (FIONREAD) and the first unread bytes (tee(2)), all through
// pidfd_getfd copies and a reader reopened through /proc, with nothing consumed.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

// A pipe of this process, both ends open until destroyed.
class OwnPipe {
 public:
  OwnPipe() {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0) {
      read_fd_ = ends[0];
      write_fd_ = ends[1];
    }
  }
  ~OwnPipe() {
    if (read_fd_ >= 0) close(read_fd_);
    if (write_fd_ >= 0) close(write_fd_);
  }
  OwnPipe(const OwnPipe&) = delete;
  OwnPipe& operator=(const OwnPipe&) = delete;

  bool ok() const { return read_fd_ >= 0; }
  int read_fd() const { return read_fd_; }
  int write_fd() const { return write_fd_; }
  bool Write(const std::string& bytes) const {
    return write(write_fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // Everything unread, consumed.
  std::string ReadAll() const {
    std::string all;
    char buffer[4096];
    for (ssize_t got; (got = read(read_fd_, buffer, sizeof buffer)) > 0;) all.append(buffer, got);
    return all;
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// pidfd_getfd is Linux 5.6+; without it the probe measures nothing, which is not what is tested.
bool HasPidfdGetfd() {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (pidfd < 0) return errno != ENOSYS;
  const int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, 0, 0));
  const bool missing = copy < 0 && errno == ENOSYS;
  if (copy >= 0) close(copy);
  close(pidfd);
  return !missing;
}

const FileDescriptor* FindFd(const ProcessSnapshot& process, int number) {
  for (const FileDescriptor& fd : process.fds) {
    if (fd.fd == number) return &fd;
  }
  return nullptr;
}

// 100 distinct bytes, NUL and newline included: the head is bytes, not text.
std::string HundredBytes() {
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes += static_cast<char>(i * 7 % 256);
  return bytes;
}

TEST(PeekPipes, MeasuresCapacityUnreadBytesAndHeadOfBothEndsWithoutConsuming) {
  if (!HasPidfdGetfd()) GTEST_SKIP() << "pidfd_open/pidfd_getfd need Linux 5.6";
  OwnPipe pipe;
  ASSERT_TRUE(pipe.ok());
  const std::string written = HundredBytes();
  ASSERT_TRUE(pipe.Write(written));
  const int capacity = fcntl(pipe.read_fd(), F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);

  Result<ProcessSnapshot> self = ReadProcess(getpid(), /*peek_pipes=*/true);
  ASSERT_TRUE(self.ok()) << self.error().message();
  for (int end : {pipe.read_fd(), pipe.write_fd()}) {
    const FileDescriptor* fd = FindFd(*self, end);
    ASSERT_NE(fd, nullptr) << end;
    ASSERT_TRUE(fd->pipe_inode.has_value()) << fd->target;
    EXPECT_EQ(fd->pipe_capacity_bytes, capacity) << end;
    EXPECT_EQ(fd->pipe_unread_bytes, 100) << end;
    // The write end too: the head is read through a reader reopened from /proc/PID/fd.
    ASSERT_TRUE(fd->pipe_head.has_value()) << end;
    EXPECT_EQ(*fd->pipe_head, written) << end;
  }
  EXPECT_EQ(FindFd(*self, pipe.read_fd())->pipe_inode, FindFd(*self, pipe.write_fd())->pipe_inode);

  // Nothing was consumed: the same 100 bytes are still there, in order.
  int unread = -1;
  ASSERT_EQ(ioctl(pipe.read_fd(), FIONREAD, &unread), 0);
  EXPECT_EQ(unread, 100);
  EXPECT_EQ(pipe.ReadAll(), written);
}

TEST(PeekPipes, ReportsTheCapacityAPipeWasResizedTo) {
  if (!HasPidfdGetfd()) GTEST_SKIP() << "pidfd_open/pidfd_getfd need Linux 5.6";
  OwnPipe pipe;
  ASSERT_TRUE(pipe.ok());
  // One page, as fs.pipe-user-pages-soft or the injected F_SETPIPE_SZ leave it.
  const int page = static_cast<int>(sysconf(_SC_PAGESIZE));
  ASSERT_EQ(fcntl(pipe.write_fd(), F_SETPIPE_SZ, page), page);
  ASSERT_TRUE(pipe.Write("x"));
  Result<ProcessSnapshot> self = ReadProcess(getpid(), /*peek_pipes=*/true);
  ASSERT_TRUE(self.ok()) << self.error().message();
  const FileDescriptor* fd = FindFd(*self, pipe.write_fd());
  ASSERT_NE(fd, nullptr);
  EXPECT_EQ(fd->pipe_capacity_bytes, page);
  EXPECT_EQ(fd->pipe_unread_bytes, 1);
  EXPECT_EQ(fd->pipe_head, "x");
}

TEST(PeekPipes, CutsTheHeadAtkPipeHeadBytes) {
  if (!HasPidfdGetfd()) GTEST_SKIP() << "pidfd_open/pidfd_getfd need Linux 5.6";
  OwnPipe pipe;
  ASSERT_TRUE(pipe.ok());
  std::string written;
  for (int i = 0; i < 3 * kPipeHeadBytes + 17; ++i) written += static_cast<char>('a' + i % 26);
  // Two writes: the head may span pipe buffers.
  ASSERT_TRUE(pipe.Write(written.substr(0, 100)));
  ASSERT_TRUE(pipe.Write(written.substr(100)));

  Result<ProcessSnapshot> self = ReadProcess(getpid(), /*peek_pipes=*/true);
  ASSERT_TRUE(self.ok()) << self.error().message();
  const FileDescriptor* fd = FindFd(*self, pipe.read_fd());
  ASSERT_NE(fd, nullptr);
  EXPECT_EQ(fd->pipe_unread_bytes, static_cast<int>(written.size()));
  ASSERT_TRUE(fd->pipe_head.has_value());
  EXPECT_EQ(fd->pipe_head->size(), static_cast<std::size_t>(kPipeHeadBytes));
  EXPECT_EQ(*fd->pipe_head, written.substr(0, kPipeHeadBytes));
  EXPECT_EQ(pipe.ReadAll(), written);
}

TEST(PeekPipes, LeavesTheHeadUnsetForAnEmptyPipeAndMeasuresNothingUnasked) {
  if (!HasPidfdGetfd()) GTEST_SKIP() << "pidfd_open/pidfd_getfd need Linux 5.6";
  OwnPipe pipe;
  ASSERT_TRUE(pipe.ok());
  Result<ProcessSnapshot> self = ReadProcess(getpid(), /*peek_pipes=*/true);
  ASSERT_TRUE(self.ok()) << self.error().message();
  const FileDescriptor* empty = FindFd(*self, pipe.read_fd());
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->pipe_unread_bytes, 0);
  EXPECT_EQ(empty->pipe_capacity_bytes, fcntl(pipe.read_fd(), F_GETPIPE_SZ));
  EXPECT_FALSE(empty->pipe_head.has_value());

  ASSERT_TRUE(pipe.Write("abc"));
  Result<ProcessSnapshot> unpeeked = ReadProcess(getpid(), /*peek_pipes=*/false);
  ASSERT_TRUE(unpeeked.ok()) << unpeeked.error().message();
  const FileDescriptor* fd = FindFd(*unpeeked, pipe.read_fd());
  ASSERT_NE(fd, nullptr);
  EXPECT_TRUE(fd->pipe_inode.has_value());
  EXPECT_FALSE(fd->pipe_unread_bytes.has_value());
  EXPECT_FALSE(fd->pipe_capacity_bytes.has_value());
  EXPECT_FALSE(fd->pipe_head.has_value());
  EXPECT_EQ(pipe.ReadAll(), "abc");
}

}  // namespace
}  // namespace wedge::probe
