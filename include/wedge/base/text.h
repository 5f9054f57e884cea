// Small text helpers shared by the parsers of tools' output (apt, dpkg, sources lists).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wedge {

// `text` without leading and trailing spaces, tabs and carriage returns.
std::string Trim(std::string_view text);
// The whitespace-separated words of `text`.
std::vector<std::string> Words(std::string_view text);

}  // namespace wedge
