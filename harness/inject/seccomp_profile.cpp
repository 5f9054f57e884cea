#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "wedge/inject/seccomp.h"

namespace wedge::inject {
namespace {

using FilterContext = std::unique_ptr<void, decltype(&seccomp_release)>;

// The other ABIs this machine's kernel runs, as systemd's seccomp_local_archs[] lists them:
// https://github.com/systemd/systemd/blob/v252/src/shared/seccomp-util.c
std::vector<std::uint32_t> SecondaryArchitectures() {
  switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
      return {SCMP_ARCH_X86, SCMP_ARCH_X32};
    case SCMP_ARCH_AARCH64:
      return {SCMP_ARCH_ARM};
    default:
      return {};
  }
}

Error SeccompError(const std::string& call, int rc) { return ErrnoError(call, -rc); }

}  // namespace

std::string SeccompProfile::Describe() const {
  std::string text;
  if (bpf.empty()) {
    text = "no syscall filter";
  } else if (allow_list) {
    text = "allow-list of " + std::to_string(denied_count) + " syscalls, any other kills";
  } else {
    text = "deny-list: " + std::to_string(denied_count) + " syscalls kill";
  }
  if (!bpf.empty()) {
    text += native_architecture_only ? "; native architecture only" : "; every local architecture";
    text += "; " + std::to_string(bpf.size() / sizeof(sock_filter)) + " BPF instructions";
  }
  if (no_new_privileges) text += "; no_new_privs";
  if (!skipped_syscalls.empty()) {
    text +=
        "; " + std::to_string(skipped_syscalls.size()) + " names unknown to libseccomp skipped (";
    for (std::size_t i = 0; i < skipped_syscalls.size(); ++i) {
      text += (i == 0 ? "" : " ") + skipped_syscalls[i];
    }
    text += ")";
  }
  return text;
}

void SeccompProfileBuilder::SetError(Error error) {
  if (!first_error_) first_error_ = std::move(error);
}

SeccompProfileBuilder& SeccompProfileBuilder::UseSystemCallFilter(const SyscallFilter& filter) {
  if (have_filter_) {
    SetError(Error("seccomp profile: a second SystemCallFilter; combine the lines into one"));
    return *this;
  }
  filter_ = filter;
  have_filter_ = true;
  return *this;
}

SeccompProfileBuilder& SeccompProfileBuilder::UseSystemCallFilterLines(
    const std::vector<std::string>& lines, const SyscallGroups& groups) {
  Result<SyscallFilter> filter = CombineSystemCallFilter(lines, groups);
  if (!filter.ok()) {
    SetError(filter.error().WithContext("seccomp profile"));
    return *this;
  }
  return UseSystemCallFilter(*filter);
}

SeccompProfileBuilder& SeccompProfileBuilder::SetNativeArchitectureOnly(bool value) {
  native_architecture_only_ = value;
  return *this;
}

SeccompProfileBuilder& SeccompProfileBuilder::SetNoNewPrivileges(bool value) {
  no_new_privileges_ = value;
  return *this;
}

Result<SeccompProfile> SeccompProfileBuilder::TryBuild() {
  if (first_error_) return *first_error_;
  SeccompProfile profile;
  profile.no_new_privileges = no_new_privileges_;
  if (!have_filter_) return profile;  // no_new_privs alone

  profile.allow_list = filter_.allow_list;
  profile.native_architecture_only =
      native_architecture_only_.value_or(filter_.native_architecture_only);
  // Without SystemCallErrorNumber= systemd kills the whole process (scmp_act_kill_process() in
  // https://github.com/systemd/systemd/blob/v252/src/shared/seccomp-util.c).
  const std::uint32_t default_action = profile.allow_list ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ALLOW;
  const std::uint32_t listed_action = profile.allow_list ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS;

  FilterContext ctx(seccomp_init(default_action), &seccomp_release);
  if (!ctx)
    return Error("seccomp_init(): failed (does the kernel support SECCOMP_RET_KILL_PROCESS?)");
  int rc = 0;
  if (profile.native_architecture_only) {
    // SystemCallArchitectures=native: a syscall through another ABI (int 0x80, x32) kills.
    rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc < 0) return SeccompError("seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH, KILL_PROCESS)", rc);
  } else {
    // systemd installs the same filter for each local ABI and lets unknown ABIs pass
    // (seccomp_init_for_arch() sets SCMP_FLTATR_ACT_BADARCH to SCMP_ACT_ALLOW).
    for (std::uint32_t arch : SecondaryArchitectures()) {
      rc = seccomp_arch_add(ctx.get(), arch);
      if (rc < 0 && rc != -EEXIST) {
        return SeccompError("seccomp_arch_add(" + std::to_string(arch) + ")", rc);
      }
    }
    rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
    if (rc < 0) return SeccompError("seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH, ALLOW)", rc);
  }

  std::set<int> native_numbers;
  for (const std::string& name : filter_.syscalls) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      profile.skipped_syscalls.push_back(name);
      continue;
    }
    rc = seccomp_rule_add(ctx.get(), listed_action, nr, 0);
    // -EDOM: the syscall does not exist on one of the filter's ABIs; systemd ignores that too.
    if (rc < 0 && rc != -EDOM) {
      return SeccompError("seccomp_rule_add(" + name + " = " + std::to_string(nr) + ")", rc);
    }
    if (nr >= 0) native_numbers.insert(nr);
  }
  profile.denied_count = static_cast<int>(native_numbers.size());

  UniqueFd memfd(::memfd_create("wedge-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd.valid()) return ErrnoError("memfd_create('wedge-seccomp-bpf')");
  rc = seccomp_export_bpf(ctx.get(), memfd.get());
  if (rc < 0) return SeccompError("seccomp_export_bpf()", rc);
  struct stat st {};
  if (::fstat(memfd.get(), &st) != 0) return ErrnoError("fstat(memfd)");
  profile.bpf.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < profile.bpf.size()) {
    const ssize_t n = ::pread(memfd.get(), profile.bpf.data() + done, profile.bpf.size() - done,
                              static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("pread(memfd)", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  const std::size_t instructions = profile.bpf.size() / sizeof(sock_filter);
  if (profile.bpf.size() % sizeof(sock_filter) != 0 || instructions == 0 ||
      instructions > BPF_MAXINSNS) {
    return Error("seccomp_export_bpf(): " + std::to_string(profile.bpf.size()) +
                 " bytes is not a loadable BPF program");
  }
  return profile;
}

int InstallSeccompProfile(const SeccompProfile& profile) {
  // Without no_new_privs (or CAP_SYS_ADMIN) the kernel refuses SECCOMP_SET_MODE_FILTER:
  // https://www.kernel.org/doc/html/latest/userspace-api/seccomp_filter.html
  if (profile.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (profile.bpf.empty()) return 0;
  if (profile.bpf.size() % sizeof(sock_filter) != 0) return EINVAL;
  sock_fprog program{};
  program.len = static_cast<unsigned short>(profile.bpf.size() / sizeof(sock_filter));
  // The kernel copies the program; it only reads through this pointer.
  program.filter = reinterpret_cast<sock_filter*>(const_cast<unsigned char*>(profile.bpf.data()));
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) return errno;
  return 0;
}

}  // namespace wedge::inject
