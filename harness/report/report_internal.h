// Helpers shared by the console, JSON and JUnit writers. Not part of the public API.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/report/report.h"
#include "wedge/signature/signature.h"

namespace wedge::report::internal {

// A report is meant to be read by CI and other users: its files are written 0644.
inline constexpr mode_t kReportFileMode = 0644;

// "stuck-thread.stack: expected A; observed B".
std::string FormatMismatch(const signature::Mismatch& mismatch);

// What went wrong in a run, one line each: the verdicts, the mismatches of both signatures
// (when the verdict is not the expected one), the error and the host leftovers.
std::vector<std::string> DiffLines(const RunResult& result);

// "held for 12.345 s, released by SIGTERM; wedge match 1234 named it": one line for a held run.
std::string HeldLine(const RunResult::Held& held);

// 1234 -> "1.234".
std::string FormatSeconds(std::int64_t milliseconds);

// 0x100 -> "0000000000000100", as /proc/PID/status prints signal masks.
std::string Hex16(std::uint64_t value);

std::string Join(const std::vector<std::string>& parts, std::string_view separator);

}  // namespace wedge::report::internal
