#include "cli_support.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "wedge/cli/command_line.h"
#include "wedge/runner/hold.h"
#include "wedge/runner/runner.h"
#include "wedge/sys/process.h"

namespace wedge::cli {

namespace fs = std::filesystem;

int Usage(std::string_view command, std::string_view problem) {
  std::cerr << UsageError(command, problem);
  return kUsage;
}

fs::path DefaultScenarioDirectory() {
  if (fs::is_directory("scenarios")) return "scenarios";
  return WEDGE_SCENARIO_DIR;
}

fs::path FixturesDirectory() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : self.parent_path();
}

std::optional<std::vector<scenario::Scenario>> LoadAll(const std::vector<std::string>& paths) {
  std::vector<fs::path> files;
  for (const auto& path : paths) {
    if (!fs::exists(path)) {
      std::cerr << "wedge: " << path << ": no such file or directory\n";
      return std::nullopt;
    }
    for (auto& file : scenario::ExpandScenarioPaths(path)) files.push_back(file);
  }
  std::vector<scenario::Scenario> scenarios;
  bool ok = true;
  for (const auto& file : files) {
    auto loaded = scenario::LoadScenarioFile(file);
    if (auto* error = std::get_if<scenario::LoadError>(&loaded)) {
      std::cerr << error->ToString() << "\n";
      ok = false;
    } else {
      scenarios.push_back(std::get<scenario::Scenario>(std::move(loaded)));
    }
  }
  if (!ok) return std::nullopt;
  return scenarios;
}

// Scenario files make wedge run commands as root, so, as sudo does with its policy files, a
// file that someone other than root (or the user running wedge) could have written is refused:
// the file must be a regular file owned by root or by us and writable by nobody else, and its
// directory must not be writable by others unless it is sticky (like /tmp).
std::optional<std::string> UntrustedReason(const fs::path& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    return "cannot be examined (" + std::string(std::strerror(errno)) + ")";
  }
  if (!S_ISREG(st.st_mode)) return "is not a regular file (symbolic links are not followed)";
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", not by root or by you";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return "is writable by its group or by others";
  fs::path directory = fs::absolute(file).parent_path();
  struct stat dir {};
  if (::stat(directory.c_str(), &dir) != 0) return "is in a directory that cannot be examined";
  if ((dir.st_mode & S_IWOTH) != 0 && (dir.st_mode & S_ISVTX) == 0) {
    return "is in " + directory.string() + ", which others can write to";
  }
  if (dir.st_uid != 0 && dir.st_uid != ::geteuid() && (dir.st_mode & S_IWUSR) != 0) {
    return "is in " + directory.string() + ", which uid " + std::to_string(dir.st_uid) +
           " can write to";
  }
  return std::nullopt;
}

std::variant<scenario::Scenario, int> LoadRunnableScenario(std::string_view command,
                                                           const std::string& file) {
  auto scenarios = LoadAll({file});
  if (!scenarios) return kUsage;
  if (scenarios->size() != 1) return Usage(command, file + " names more than one scenario");
  scenario::Scenario scenario = std::move(scenarios->front());
  if (auto reason = UntrustedReason(scenario.file)) {
    std::cerr << "wedge: refusing " << scenario.file.string() << ": it " << *reason << "\n";
    return kUsage;
  }
  for (const auto& unmet : runner::UnmetRequirements(scenario)) {
    std::cerr << "wedge: " << scenario.name << " cannot run on this host: " << unmet << "\n";
    return kRequirementMissing;
  }
  return scenario;
}

std::variant<sys::RunLock, int> BeginRun(const fs::path& state_dir) {
  sys::InstallInterruptHandlers();
  // A run that holds its state (--hold) holds the lock too: it is released, as `wedge cleanup`
  // releases it, so that this run starts on the host as it was.
  if (Status released = runner::ReleaseHeldRun(
          state_dir, runner::kHeldRunReleaseBound,
          [](const std::string& line) { std::cout << "wedge: " << line << "\n"; });
      !released.ok()) {
    std::cerr << "wedge: " << released.error().message() << "\n";
  }
  auto lock = sys::RunLock::Acquire(
      state_dir, [](const std::string& notice) { std::cerr << "wedge: " << notice << "\n"; });
  if (!lock.ok()) {
    std::cerr << "wedge: " << lock.error().message() << "\n";
    return sys::Interrupted() ? 128 + sys::Interrupted() : kInternalError;
  }
  sys::JournalRecovery cleaned = runner::Cleanup(state_dir);
  for (const auto& line : cleaned.undone)
    std::cout << "cleanup of an earlier run: " << line << "\n";
  for (const auto& line : cleaned.skipped) {
    std::cerr << "wedge: cleanup of an earlier run: " << line << "\n";
  }
  if (!cleaned.failed.empty()) {
    // The host still holds what an earlier run did: a run now would be judged against it.
    for (const auto& line : cleaned.failed) {
      std::cerr << "wedge: cleanup of an earlier run failed: " << line << "\n";
    }
    return kInternalError;
  }
  return std::move(lock).value();
}

}  // namespace wedge::cli
