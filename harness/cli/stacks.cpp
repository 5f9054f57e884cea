#include "stacks.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include "cli_support.h"
#include "wedge/base/debian_releases.h"
#include "wedge/cli/command_line.h"
#include "wedge/runner/run_context.h"
#include "wedge/stack/release_root.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::cli {

std::optional<std::vector<ComponentChoice>> SplitComponents(std::string_view command,
                                                            const std::vector<std::string>& with,
                                                            std::vector<std::string>& paths) {
  std::vector<ComponentChoice> components;
  std::vector<std::string> named;
  for (const std::string& assignment : with) {
    const size_t equals = assignment.find('=');
    const std::string name = assignment.substr(0, equals);
    if (std::find(named.begin(), named.end(), name) != named.end()) {
      Usage(command, "--with " + assignment + ": " + name + " is chosen by an earlier --with");
      return std::nullopt;
    }
    named.push_back(name);
    const std::string value = equals == std::string::npos ? "" : assignment.substr(equals + 1);
    if (IsDebianRelease(value)) {
      components.push_back({name, value});
    } else {
      paths.push_back(assignment);
    }
  }
  return components;
}

std::variant<std::vector<stack::Binaries>, int> StackBinaries(
    std::string_view command, const std::vector<std::string>& stacks,
    const std::vector<ComponentChoice>& components, const runner::RunOptions& options) {
  std::unique_ptr<sys::Journal> journal;
  std::map<std::string, stack::ReleaseRoot> roots;
  // Each release's root once, in the order first named.
  std::vector<std::string> releases;
  for (const std::string& release : stacks) {
    if (release != "host") releases.push_back(release);
  }
  for (const auto& component : components) releases.push_back(component.release);
  for (const std::string& release : releases) {
    if (roots.contains(release)) continue;
    if (!journal) {
      auto created = sys::Journal::Create(options.state_dir, runner::NewRunId("stacks"));
      if (!created.ok()) {
        std::cerr << "wedge: " << created.error().message() << "\n";
        return kInternalError;
      }
      journal = std::move(*created);
    }
    Result<stack::ReleaseRoot> root =
        stack::EnsureReleaseRoot(release, *journal, sys::DefaultStackCacheDirectory(), &std::cout);
    if (!root.ok()) {
      std::cerr << "wedge: the " << release << " stack: " << root.error().message() << "\n";
      return sys::Interrupted() ? 128 + sys::Interrupted() : kRequirementMissing;
    }
    std::cout << "stack " << release << ": " << root->root.string() << " (";
    bool first = true;
    for (const auto& [package, version] : root->packages) {
      std::cout << (first ? "" : ", ") << package << " " << version;
      first = false;
    }
    std::cout << ")\n";
    roots.emplace(release, std::move(*root));
  }
  std::vector<stack::Binaries> binaries;
  for (const std::string& release : stacks) {
    stack::Binaries chosen =
        release == "host" ? options.binaries : roots.at(release).StackBinaries();
    for (const auto& component : components) {
      if (component.release == release) continue;  // the stack's own binary
      if (auto used = chosen.UseComponent(component.name, component.release,
                                          roots.at(component.release).root);
          !used.ok()) {
        return Usage(command, used.error().message());
      }
    }
    if (auto runs = chosen.CheckComponentsRun(); !runs.ok()) {
      return Usage(command, runs.error().message());
    }
    binaries.push_back(std::move(chosen));
  }
  return binaries;
}

}  // namespace wedge::cli
