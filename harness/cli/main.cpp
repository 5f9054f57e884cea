// wedge: reproduce container-stack deadlocks deterministically and prove when a patch removes
// them. See README.md and docs/scenario-format.md.
#include <exception>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include "commands.h"
#include "wedge/cli/command_line.h"

int main(int argc, char** argv) {
  try {
    const auto parsed =
        wedge::cli::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
    if (const auto* exit = std::get_if<wedge::cli::ParseExit>(&parsed)) {
      (exit->status == wedge::cli::kAllAsExpected ? std::cout : std::cerr) << exit->text;
      return exit->status;
    }
    return std::visit([](const auto& command) { return wedge::cli::Execute(command); },
                      std::get<wedge::cli::Command>(parsed));
  } catch (const std::exception& e) {
    std::cerr << "wedge: internal error: " << e.what() << "\n";
    return wedge::cli::kInternalError;
  }
}
