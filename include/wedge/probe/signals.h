// Signal numbers, names and the hex masks /proc prints for pending, blocked and ignored sets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wedge::probe {

// "SIGKILL" for 9; real-time signals as "SIGRTMIN+N"; unknown numbers as "SIG<n>".
std::string SignalName(int signo);
// 9 for "SIGKILL" or "KILL"; nullopt for names wedge does not know.
std::optional<int> SignalNumber(std::string_view name);

// A set of signals as /proc/PID/status prints it: bit (signo - 1) of a 64-bit mask.
class SignalSet {
 public:
  SignalSet() = default;
  explicit SignalSet(std::uint64_t mask) : mask_(mask) {}

  std::uint64_t mask() const { return mask_; }
  bool Contains(int signo) const;
  bool empty() const { return mask_ == 0; }
  // Names of the members, lowest signal number first.
  std::vector<std::string> Names() const;

  bool operator==(const SignalSet&) const = default;

 private:
  std::uint64_t mask_ = 0;
};

}  // namespace wedge::probe
