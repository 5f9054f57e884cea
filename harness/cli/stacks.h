// The docker stacks a command runs on (`--stack host|RELEASE`, `--with NAME=RELEASE`, `wedge
// bisect --stacks`): each stack's binaries, with release roots taken from the cache or built.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/runner/runner.h"
#include "wedge/stack/docker_stack.h"

namespace wedge::cli {

// A `--with NAME=RELEASE`: binary NAME from another release's root.
struct ComponentChoice {
  std::string name;
  std::string release;
};

// The --with assignments that name a release rather than a file, in order; the others are left
// in `paths`. A binary named twice is a usage error of `command` (nullopt, after saying so).
std::optional<std::vector<ComponentChoice>> SplitComponents(std::string_view command,
                                                            const std::vector<std::string>& with,
                                                            std::vector<std::string>& paths);

// The binaries of each of `stacks`, in order: options.binaries for "host", a release root's
// (taken from the cache, or built, under a journal of its own) for a release; each with
// `components` from other releases' roots. Exit 3 when a root cannot be had (the archive
// unreachable with nothing cached, a package missing, a failed build); a usage error of
// `command` (exit 2) when a component is missing from its release or does not run in a stack.
std::variant<std::vector<stack::Binaries>, int> StackBinaries(
    std::string_view command, const std::vector<std::string>& stacks,
    const std::vector<ComponentChoice>& components, const runner::RunOptions& options);

}  // namespace wedge::cli
