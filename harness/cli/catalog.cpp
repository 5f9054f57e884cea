// `wedge list` and `wedge validate`: what scenarios there are, and whether their files load.
#include <iostream>

#include "cli_support.h"
#include "commands.h"
#include "wedge/runner/runner.h"

namespace wedge::cli {

int Execute(const ListCommand& command) {
  auto scenarios = LoadAll({command.directory.value_or(DefaultScenarioDirectory().string())});
  if (!scenarios) return kUsage;
  for (const auto& scenario : *scenarios) {
    std::vector<std::string> unmet = runner::UnmetRequirements(scenario);
    std::cout << scenario.name << "  expect " << scenario::VerdictName(scenario.expected) << "  "
              << (unmet.empty() ? "runnable" : "cannot run here: " + unmet.front()) << "\n    "
              << scenario.summary << "\n";
  }
  return kAllAsExpected;
}

int Execute(const ValidateCommand& command) {
  int status = kAllAsExpected;
  for (const auto& file : command.files) {
    auto loaded = scenario::LoadScenarioFile(file);
    if (auto* error = std::get_if<scenario::LoadError>(&loaded)) {
      std::cerr << error->ToString() << "\n";
      status = kUsage;
    } else {
      std::cout << file << ": ok (" << std::get<scenario::Scenario>(loaded).name << ")\n";
    }
  }
  return status;
}

}  // namespace wedge::cli
