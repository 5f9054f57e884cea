// What wedge's subcommands share: where scenarios and fixtures are, loading and trusting
// scenario files, and taking the run lock.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wedge/scenario/scenario.h"
#include "wedge/sys/journal.h"

namespace wedge::cli {

// Prints a usage error found after parsing (UsageError) to stderr; returns kUsage.
int Usage(std::string_view command, std::string_view problem);

// ./scenarios when there is one, else the scenarios directory of wedge's source tree.
std::filesystem::path DefaultScenarioDirectory();
// Where wedge-init and wedge-fuse are: beside the wedge executable.
std::filesystem::path FixturesDirectory();

// Loads every scenario in `paths` (files or directories), printing each error to stderr;
// nullopt when a path does not exist or any file fails to load.
std::optional<std::vector<scenario::Scenario>> LoadAll(const std::vector<std::string>& paths);

// Why `file` may not be trusted to run commands as root, or nullopt when it may.
std::optional<std::string> UntrustedReason(const std::filesystem::path& file);

// Loads the one scenario `verify` or `bisect` names and checks that it may run here: trusted
// and every requirement met. Returns the scenario, or the exit status.
std::variant<scenario::Scenario, int> LoadRunnableScenario(std::string_view command,
                                                           const std::string& file);

// Installs the SIGINT/SIGTERM handlers, takes the run lock (saying so if another run holds
// it) and undoes whatever a killed run left behind. Returns the lock, or the exit status.
std::variant<sys::RunLock, int> BeginRun(const std::filesystem::path& state_dir);

}  // namespace wedge::cli
