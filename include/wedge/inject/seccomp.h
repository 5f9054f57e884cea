// Seccomp filters written the way systemd units write them, built with libseccomp.
//
// A scenario pins the filter of the unit a bug was reported under, e.g.
//   SystemCallFilter=@system-service
//   SystemCallFilter=~@privileged @resources
//   SystemCallArchitectures=native
// and wedge applies exactly what systemd would: the group table is systemd's own (data, not
// code: data/systemd-syscall-groups.json), lines combine as systemd combines them, and a
// refused syscall kills the process (SCMP_ACT_KILL_PROCESS, systemd's default action).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/base/unique_fd.h"

namespace wedge::inject {

// systemd's syscall groups: "@resources" -> its members, which may name other groups.
class SyscallGroups {
 public:
  // Loads data/systemd-syscall-groups.json
  // ({"systemd_version": "252", "groups": {"@group": ["name", "@other", ...], ...}}).
  static Result<SyscallGroups> Load(const std::filesystem::path& file);
  // Parses the text of such a JSON document.
  static Result<SyscallGroups> ParseJson(std::string_view text);
  // The built-in copy of that file (compiled in), for use without the source tree.
  static const SyscallGroups& Builtin();
  // Parses `systemd-analyze syscall-filter` output (as printed by systemd 252); the trailing
  // "# Ungrouped/Unlisted System Calls" sections are not groups and are skipped.
  static Result<SyscallGroups> ParseSystemdAnalyze(std::string_view text);

  // Every syscall name of `group`, nested groups expanded; error for an unknown group.
  Result<std::set<std::string>> Expand(std::string_view group) const;
  const std::map<std::string, std::vector<std::string>>& groups() const { return groups_; }
  // The systemd version the table came from ("252"); empty when parsed from systemd-analyze.
  const std::string& systemd_version() const { return systemd_version_; }

 private:
  std::map<std::string, std::vector<std::string>> groups_;
  std::string systemd_version_;
};

// The effective filter of one or more SystemCallFilter= lines.
struct SyscallFilter {
  bool allow_list = false;  // true: only `syscalls` are allowed; false: they are denied
  std::set<std::string> syscalls;
  bool native_architecture_only = false;  // SystemCallArchitectures=native
};

// Combines SystemCallFilter= lines as systemd does: the first line decides the mode (a leading
// "~" makes a deny list, otherwise an allow list to which @default is added); later lines add to
// or remove from that set; an empty line resets. Unknown groups and ":ERRNO" suffixes are errors
// (wedge only kills); unknown syscall names are kept (systemd ignores names the arch lacks).
Result<SyscallFilter> CombineSystemCallFilter(const std::vector<std::string>& lines,
                                              const SyscallGroups& groups);

// A built filter, ready to be installed in a child between fork and exec.
struct SeccompProfile {
  std::vector<unsigned char> bpf;  // struct sock_filter[] as bytes, from seccomp_export_bpf
  bool no_new_privileges = true;
  bool allow_list = false;
  bool native_architecture_only = false;
  std::vector<std::string> skipped_syscalls;  // names libseccomp does not know
  int denied_count = 0;  // native syscalls that kill (deny list) or are allowed (allow list)
  // One line for the report, e.g. "allow-list of 276 syscalls, any other kills; native
  // architecture only; 285 BPF instructions; no_new_privs; ...".
  std::string Describe() const;
};

// A seccomp profile under construction (modelled on sandbox2's PolicyBuilder): each method says
// what it does to which syscalls, the first error is kept and reported by TryBuild().
class SeccompProfileBuilder {
 public:
  // Applies a combined SystemCallFilter: in allow-list mode everything else kills the process;
  // in deny-list mode the listed syscalls kill it. A second filter is an error.
  SeccompProfileBuilder& UseSystemCallFilter(const SyscallFilter& filter);
  // Combines SystemCallFilter= `lines` (see CombineSystemCallFilter) and applies the result.
  SeccompProfileBuilder& UseSystemCallFilterLines(
      const std::vector<std::string>& lines,
      const SyscallGroups& groups = SyscallGroups::Builtin());
  // SystemCallArchitectures=native: any syscall made through another ABI (x86, x32 on x86_64)
  // kills the process. Without it the filter applies to every ABI of this machine alike.
  SeccompProfileBuilder& SetNativeArchitectureOnly(bool value);
  // Sets no_new_privs before loading (systemd sets it for any SystemCallFilter).
  SeccompProfileBuilder& SetNoNewPrivileges(bool value);
  // Builds the BPF program. Syscall names unknown to libseccomp on this architecture are
  // skipped and listed in `skipped_syscalls`.
  Result<SeccompProfile> TryBuild();

 private:
  void SetError(Error error);

  std::optional<Error> first_error_;
  SyscallFilter filter_;
  bool have_filter_ = false;
  std::optional<bool> native_architecture_only_;
  bool no_new_privileges_ = true;
};

// Installs `profile` in the calling thread; async-signal-safe (prctl and seccomp(2) only), so it
// can run in a child after fork. Returns 0 or an errno value.
int InstallSeccompProfile(const SeccompProfile& profile);

// The syscall a seccomp filter refused, as the kernel's audit record says
// ("audit: type=1326 ... pid=PID comm=... sig=31 arch=c000003e syscall=160 ..."), read from
// /dev/kmsg. wedge remembers the kmsg position before starting the process. kauditd prints the
// record through printk_ratelimit() when no audit daemon listens: more than
// kernel.printk_ratelimit_burst (10) records within kernel.printk_ratelimit (5 s) are dropped.
struct SeccompKill {
  int pid = 0;     // thread group id in the initial pid namespace
  int signal = 0;  // 31 (SIGSYS) for a kill, 0 for SECCOMP_RET_LOG
  long syscall = -1;
  std::string syscall_name;  // via libseccomp's resolver
  std::string arch;          // "c000003e"
  std::uint32_t code = 0;    // the filter's verdict: 0x80000000 is SECCOMP_RET_KILL_PROCESS
  std::string record;        // the raw line
};
// Parses one kmsg/dmesg/journal line; nullopt if it is not a (complete) seccomp audit record.
std::optional<SeccompKill> ParseSeccompAuditRecord(std::string_view line);

// Reads /dev/kmsg records written after it was opened (non-blocking).
//
// Records are read from two sources. The audit netlink multicast group (AUDIT_NLGRP_READLOG,
// read-only, needs CAP_AUDIT_READ) gets every record; /dev/kmsg gets them only through
// printk_ratelimit (10 per 5 s), so quick successive kills lose records there. kmsg is the
// fallback where the multicast group cannot be joined.
class KernelLogCursor {
 public:
  // Joins the audit multicast group and opens /dev/kmsg positioned after the newest record.
  static Result<KernelLogCursor> OpenAtEnd();
  // The message text (after "PRIO,SEQ,TIMESTAMP,FLAGS;", first line) of every new record so far.
  std::vector<std::string> ReadNew();
  // The seccomp kill record (signal != 0) for `pid` (in the initial pid namespace), waiting up
  // to `timeout_ms` for it: the kernel's audit thread prints it shortly after the death. Kill
  // records of other pids read meanwhile are kept for later calls.
  std::optional<SeccompKill> FindSeccompKill(int pid, int timeout_ms);

 private:
  explicit KernelLogCursor(int fd) : fd_(fd) {}
  std::vector<std::string> ReadAudit();
  UniqueFd fd_;
  UniqueFd audit_fd_;  // invalid when the multicast group could not be joined
  std::vector<SeccompKill> pending_;
};

}  // namespace wedge::inject
