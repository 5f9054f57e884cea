#include "wedge/probe/signals.h"

#include <array>
#include <cctype>
#include <charconv>
#include <string>

namespace wedge::probe {
namespace {

// The kernel's numbering on x86_64 and arm64 (asm-generic/signal.h, arch/x86/include/uapi/asm/
// signal.h). /proc masks are kernel masks, so real-time signals are counted from the kernel's
// SIGRTMIN (32), not from glibc's SIGRTMIN() (34, after the two signals NPTL reserves).
constexpr int kKernelSigRtMin = 32;
constexpr int kKernelSigRtMax = 64;

constexpr std::array<std::string_view, 32> kStandardNames = {
    "",          "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",   "SIGTRAP", "SIGABRT", "SIGBUS",
    "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",  "SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",  "SIGTTIN", "SIGTTOU", "SIGURG",
    "SIGXCPU",   "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS",
};

struct Alias {
  std::string_view name;
  int signo;
};
constexpr std::array<Alias, 3> kAliases = {{{"SIGIOT", 6}, {"SIGPOLL", 29}, {"SIGCLD", 17}}};

std::optional<int> ParseDecimal(std::string_view text) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string SignalName(int signo) {
  if (signo >= 1 && signo < kKernelSigRtMin) return std::string(kStandardNames[signo]);
  if (signo == kKernelSigRtMin) return "SIGRTMIN";
  if (signo > kKernelSigRtMin && signo <= kKernelSigRtMax) {
    return "SIGRTMIN+" + std::to_string(signo - kKernelSigRtMin);
  }
  return "SIG" + std::to_string(signo);
}

std::optional<int> SignalNumber(std::string_view name) {
  std::string upper;
  upper.reserve(name.size() + 3);
  for (char c : name)
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (upper.rfind("SIG", 0) != 0) upper.insert(0, "SIG");
  const std::string_view text = upper;

  for (int signo = 1; signo < kKernelSigRtMin; ++signo) {
    if (kStandardNames[signo] == text) return signo;
  }
  for (const Alias& alias : kAliases) {
    if (alias.name == text) return alias.signo;
  }
  if (text == "SIGRTMIN") return kKernelSigRtMin;
  if (text == "SIGRTMAX") return kKernelSigRtMax;
  if (text.starts_with("SIGRTMIN+")) {
    std::optional<int> n = ParseDecimal(text.substr(9));
    if (n && *n >= 0 && kKernelSigRtMin + *n <= kKernelSigRtMax) return kKernelSigRtMin + *n;
    return std::nullopt;
  }
  if (text.starts_with("SIGRTMAX-")) {
    std::optional<int> n = ParseDecimal(text.substr(9));
    if (n && *n >= 0 && kKernelSigRtMax - *n >= kKernelSigRtMin) return kKernelSigRtMax - *n;
    return std::nullopt;
  }
  return std::nullopt;
}

bool SignalSet::Contains(int signo) const {
  if (signo < 1 || signo > 64) return false;
  return (mask_ >> (signo - 1)) & 1U;
}

std::vector<std::string> SignalSet::Names() const {
  std::vector<std::string> names;
  for (int signo = 1; signo <= 64; ++signo) {
    if (Contains(signo)) names.push_back(SignalName(signo));
  }
  return names;
}

}  // namespace wedge::probe
