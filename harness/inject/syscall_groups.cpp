#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wedge/inject/seccomp.h"

namespace wedge::inject {

// data/systemd-syscall-groups.json, compiled in (see the inject component in CMakeLists.txt).
extern const char kSystemdSyscallGroupsJson[];

namespace {

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// systemd-analyze highlights group names with ANSI colours when it thinks it may.
std::string StripAnsiEscapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      i += 2;
      while (i < text.size() &&
             (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == ';')) {
        ++i;
      }
      continue;  // skips the final letter ('m') too
    }
    out += text[i];
  }
  return out;
}

Status ExpandInto(const std::map<std::string, std::vector<std::string>>& groups,
                  std::string_view group, std::vector<std::string>& stack,
                  std::set<std::string>& out) {
  const auto it = groups.find(std::string(group));
  if (it == groups.end()) {
    std::string message = "unknown syscall group '" + std::string(group) + "'";
    if (!stack.empty()) message += " (in '" + stack.back() + "')";
    return Error(message);
  }
  for (const std::string& entry : stack) {
    if (entry == group) return Error("syscall group '" + std::string(group) + "' includes itself");
  }
  stack.push_back(it->first);
  for (const std::string& member : it->second) {
    if (member.starts_with('@')) {
      WEDGE_RETURN_IF_ERROR(ExpandInto(groups, member, stack, out));
    } else {
      out.insert(member);
    }
  }
  stack.pop_back();
  return OkStatus();
}

}  // namespace

Result<SyscallGroups> SyscallGroups::ParseJson(std::string_view text) {
  SyscallGroups result;
  try {
    const nlohmann::json document = nlohmann::json::parse(text);
    result.systemd_version_ = document.at("systemd_version").get<std::string>();
    const nlohmann::json& groups = document.at("groups");
    if (!groups.is_object() || groups.empty())
      return Error("\"groups\" must be a non-empty object");
    for (const auto& [name, members] : groups.items()) {
      if (!name.starts_with('@')) return Error("group name '" + name + "' does not start with @");
      result.groups_[name] = members.get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Error(std::string("syscall group table: ") + e.what());
  }
  return result;
}

Result<SyscallGroups> SyscallGroups::Load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Error("cannot open '" + file.string() + "'");
  std::stringstream text;
  text << in.rdbuf();
  Result<SyscallGroups> groups = ParseJson(text.str());
  if (!groups.ok()) return groups.error().WithContext(file.string());
  return groups;
}

const SyscallGroups& SyscallGroups::Builtin() {
  static const SyscallGroups* const builtin = [] {
    Result<SyscallGroups> parsed = ParseJson(kSystemdSyscallGroupsJson);
    if (!parsed.ok()) {
      // The table is part of the binary: a broken one is a build defect, not a runtime error.
      std::fprintf(stderr, "wedge: built-in syscall group table: %s\n",
                   parsed.error().message().c_str());
      std::abort();
    }
    return new SyscallGroups(std::move(parsed).value());
  }();
  return *builtin;
}

// Format of `systemd-analyze syscall-filter` (src/analyze/analyze-syscall-filter.c): a group
// name at column 0, "    # description", one member per indented line, a blank line; then
// "# Ungrouped System Calls ..." / "# Unlisted System Calls ..." sections of "#   name" lines.
Result<SyscallGroups> SyscallGroups::ParseSystemdAnalyze(std::string_view text) {
  SyscallGroups result;
  std::vector<std::string>* current = nullptr;
  std::istringstream lines(StripAnsiEscapes(text));
  std::string raw;
  int number = 0;
  while (std::getline(lines, raw)) {
    ++number;
    const std::string_view line = Trim(raw);
    if (line.empty()) {
      current = nullptr;
    } else if (raw.starts_with('@')) {
      auto [it, inserted] = result.groups_.try_emplace(std::string(line));
      if (!inserted) return Error("line " + std::to_string(number) + ": group printed twice");
      current = &it->second;
    } else if (raw.starts_with('#')) {
      current = nullptr;
    } else if (raw.starts_with(' ') || raw.starts_with('\t')) {
      if (line.starts_with('#')) continue;
      if (current == nullptr) {
        return Error("line " + std::to_string(number) + ": '" + std::string(line) +
                     "' outside a group");
      }
      current->emplace_back(line);
    } else {
      return Error("line " + std::to_string(number) + ": unexpected '" + std::string(line) + "'");
    }
  }
  if (result.groups_.empty()) return Error("no syscall groups in the systemd-analyze output");
  return result;
}

Result<std::set<std::string>> SyscallGroups::Expand(std::string_view group) const {
  std::set<std::string> out;
  std::vector<std::string> stack;
  WEDGE_RETURN_IF_ERROR(ExpandInto(groups_, group, stack, out));
  return out;
}

// systemd semantics, from config_parse_syscall_filter() (src/core/load-fragment.c) and
// seccomp_parse_syscall_filter() (src/shared/seccomp-util.c), systemd v252:
// https://github.com/systemd/systemd/blob/v252/src/core/load-fragment.c
// https://github.com/systemd/systemd/blob/v252/src/shared/seccomp-util.c
// The first assignment creates the set; without "~" it is an allow list seeded with @default.
// A name is added when (not inverted) == allow-list mode, otherwise removed; "" resets.
// systemd keys its set by syscall number; wedge keeps names, which is the same here: no two names
// of systemd 252's table share a real x86_64 number in libseccomp 2.5.4.
Result<SyscallFilter> CombineSystemCallFilter(const std::vector<std::string>& lines,
                                              const SyscallGroups& groups) {
  SyscallFilter filter;
  bool started = false;
  for (const std::string& raw : lines) {
    std::string_view line = Trim(raw);
    const std::string context = "SystemCallFilter=" + std::string(line);
    if (line.empty()) {
      filter = SyscallFilter{};
      started = false;
      continue;
    }
    const bool invert = line.starts_with('~');
    if (invert) line.remove_prefix(1);
    if (!started) {
      started = true;
      filter.allow_list = !invert;
      if (filter.allow_list) {
        Result<std::set<std::string>> defaults = groups.Expand("@default");
        if (!defaults.ok()) return defaults.error().WithContext(context);
        filter.syscalls = std::move(defaults).value();
      }
    }
    const bool add = invert != filter.allow_list;
    std::istringstream words{std::string(line)};
    std::string word;
    while (words >> word) {
      if (word.find(':') != std::string::npos) {
        return Error(context + ": '" + word +
                     "': an errno action (\":ERRNO\") is not supported, wedge's filters only kill");
      }
      std::set<std::string> names;
      if (word.starts_with('@')) {
        Result<std::set<std::string>> expanded = groups.Expand(word);
        if (!expanded.ok()) return expanded.error().WithContext(context);
        names = std::move(expanded).value();
      } else {
        names.insert(word);
      }
      for (const std::string& name : names) {
        if (add) {
          filter.syscalls.insert(name);
        } else {
          filter.syscalls.erase(name);
        }
      }
    }
  }
  return filter;
}

}  // namespace wedge::inject
