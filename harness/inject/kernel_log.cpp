#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "wedge/inject/seccomp.h"

namespace wedge::inject {
namespace {

// x32 syscalls carry __X32_SYSCALL_BIT in their number under AUDIT_ARCH_X86_64.
constexpr long kX32SyscallBit = 0x40000000;

template <typename T>
bool ParseNumber(std::string_view text, T& out, int base = 10) {
  if (base == 16 && (text.starts_with("0x") || text.starts_with("0X"))) text.remove_prefix(2);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string ResolveSyscallName(std::uint32_t arch, long nr) {
  if (arch == SCMP_ARCH_X86_64 && (nr & kX32SyscallBit) != 0) arch = SCMP_ARCH_X32;
  char* name = seccomp_syscall_resolve_num_arch(arch, static_cast<int>(nr));
  if (name == nullptr && arch == SCMP_ARCH_X32) {
    name = seccomp_syscall_resolve_num_arch(arch, static_cast<int>(nr & ~kX32SyscallBit));
  }
  if (name == nullptr) return {};
  std::string result(name);
  std::free(name);
  return result;
}

}  // namespace

// Format from audit_seccomp() (kernel/auditsc.c) as kauditd prints it to the kernel log when no
// audit daemon listens (kauditd_printk_skb() in kernel/audit.c), e.g. on Linux 6.18:
//   audit: type=1326 audit(1795390455.347:2): auid=4294967295 uid=0 gid=0 ses=4294967295
//   pid=30347 comm="t" exe="/tmp/sx/t" sig=31 arch=c000003e syscall=110 compat=0 ip=0x...
//   code=0x80000000
// auditd's audit.log writes the same fields as "type=SECCOMP msg=audit(...): ...". Untrusted
// strings (comm, exe) are quoted or hex-encoded, never containing spaces.
// https://github.com/torvalds/linux/blob/master/kernel/auditsc.c
std::optional<SeccompKill> ParseSeccompAuditRecord(std::string_view line) {
  std::size_t type = line.find("type=1326 ");
  if (type == std::string_view::npos) type = line.find("type=SECCOMP ");
  if (type == std::string_view::npos) return std::nullopt;
  const std::size_t fields_start = line.find("): ", type);
  if (fields_start == std::string_view::npos) return std::nullopt;

  SeccompKill kill;
  bool have_pid = false, have_signal = false, have_arch = false, have_syscall = false;
  std::uint32_t arch_token = 0;
  std::string_view fields = line.substr(fields_start + 3);
  while (!fields.empty()) {
    const std::size_t space = fields.find(' ');
    const std::string_view token = fields.substr(0, space);
    fields = space == std::string_view::npos ? std::string_view() : fields.substr(space + 1);
    const std::size_t equals = token.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view key = token.substr(0, equals);
    const std::string_view value = token.substr(equals + 1);
    if (key == "pid") {
      have_pid = ParseNumber(value, kill.pid);
    } else if (key == "sig") {
      have_signal = ParseNumber(value, kill.signal);
    } else if (key == "arch") {
      have_arch = ParseNumber(value, arch_token, 16);
      kill.arch = std::string(value);
    } else if (key == "syscall") {
      have_syscall = ParseNumber(value, kill.syscall);
    } else if (key == "code") {
      ParseNumber(value, kill.code, 16);
    }
  }
  // A line cut short (journalctl truncates at the terminal width) is not a record.
  if (!have_pid || !have_signal || !have_arch || !have_syscall) return std::nullopt;
  kill.syscall_name = ResolveSyscallName(arch_token, kill.syscall);
  std::string_view record = line;
  while (!record.empty() && (record.back() == '\n' || record.back() == '\r')) {
    record.remove_suffix(1);
  }
  kill.record = std::string(record);
  return kill;
}

Result<KernelLogCursor> KernelLogCursor::OpenAtEnd() {
  const int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open('/dev/kmsg', O_RDONLY|O_NONBLOCK)");
  KernelLogCursor cursor(fd);
  // SEEK_END positions the reader after the newest record (Documentation/ABI/testing/dev-kmsg).
  if (::lseek(fd, 0, SEEK_END) < 0) return ErrnoError("lseek('/dev/kmsg', 0, SEEK_END)");
  // kauditd multicasts every record to AUDIT_NLGRP_READLOG before (and independently of) the
  // rate-limited printk fallback: kernel/audit.c, kauditd_send_multicast_skb().
  cursor.audit_fd_.Reset(
      ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT));
  if (cursor.audit_fd_.valid()) {
    sockaddr_nl address{};
    address.nl_family = AF_NETLINK;
    address.nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1);
    if (::bind(cursor.audit_fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) !=
        0) {
      cursor.audit_fd_.Reset();
    }
  }
  return cursor;
}

// Each datagram holds netlink messages whose payload is the record's text without the
// "type=N" prefix printk adds; it is added back so one parser reads both sources.
std::vector<std::string> KernelLogCursor::ReadAudit() {
  std::vector<std::string> messages;
  if (!audit_fd_.valid()) return messages;
  alignas(nlmsghdr) char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(audit_fd_.get(), buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    int left = static_cast<int>(n);
    // NLMSG_OK(header, left), spelled out with the signedness made explicit (the macro compares
    // the u32 nlmsg_len with the int length, which clang's -Wsign-compare refuses).
    auto fits = [&](const nlmsghdr* header) {
      return left >= static_cast<int>(sizeof(nlmsghdr)) && header->nlmsg_len >= sizeof(nlmsghdr) &&
             header->nlmsg_len <= static_cast<unsigned int>(left);
    };
    for (auto* header = reinterpret_cast<nlmsghdr*>(buffer); fits(header);
         header = NLMSG_NEXT(header, left)) {
      const char* data = static_cast<const char*>(NLMSG_DATA(header));
      std::size_t length = header->nlmsg_len - NLMSG_HDRLEN;
      std::string_view text(data, ::strnlen(data, length));
      messages.push_back("audit: type=" + std::to_string(header->nlmsg_type) + " " +
                         std::string(text));
    }
  }
  return messages;
}

// Each read() returns one record "PRIO,SEQ,TIMESTAMP,FLAGS;MESSAGE\n", optionally followed by
// " KEY=VALUE" continuation lines; EPIPE means older records were overwritten before we read
// them, and the next read() continues with the oldest record still there.
// https://www.kernel.org/doc/Documentation/ABI/testing/dev-kmsg
std::vector<std::string> KernelLogCursor::ReadNew() {
  std::vector<std::string> messages;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR || errno == EPIPE) continue;
      break;  // EAGAIN: nothing more for now
    }
    if (n == 0) break;
    std::string_view record(buffer, static_cast<std::size_t>(n));
    const std::size_t semicolon = record.find(';');
    if (semicolon == std::string_view::npos) continue;
    std::string_view message = record.substr(semicolon + 1);
    message = message.substr(0, message.find('\n'));
    messages.emplace_back(message);
  }
  return messages;
}

std::optional<SeccompKill> KernelLogCursor::FindSeccompKill(int pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::vector<std::string> messages = ReadAudit();
    for (std::string& message : ReadNew()) messages.push_back(std::move(message));
    for (const std::string& message : messages) {
      std::optional<SeccompKill> kill = ParseSeccompAuditRecord(message);
      if (kill && kill->signal != 0 &&
          std::none_of(pending_.begin(), pending_.end(), [&](const SeccompKill& seen) {
            return seen.pid == kill->pid && seen.syscall == kill->syscall;
          })) {
        pending_.push_back(std::move(*kill));
      }
    }
    const auto found = std::find_if(pending_.begin(), pending_.end(),
                                    [pid](const SeccompKill& k) { return k.pid == pid; });
    if (found != pending_.end()) {
      SeccompKill kill = std::move(*found);
      pending_.erase(found);
      return kill;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    // kauditd prints the record after the task died; wake on the next record or within 1 ms.
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {audit_fd_.get(), POLLIN, 0}};
    ::poll(fds, audit_fd_.valid() ? 2 : 1, 1);
  }
}

}  // namespace wedge::inject
