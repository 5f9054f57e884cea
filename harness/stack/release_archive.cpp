#include "wedge/stack/release_archive.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>

#include "wedge/base/text.h"
#include "wedge/sys/files.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;

// The PATH apt, dpkg and mmdebstrap run with, whatever wedge's own is.
constexpr const char* kToolPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// sid's Release file on a mirror may be past its Valid-Until date; the archive's signature
// still holds, so the date is not checked.
constexpr const char* kNoValidUntil = "Acquire::Check-Valid-Until=false";
// Written in APT_DIR after an update that fetched every index.
constexpr const char* kUpdatedStamp = "lists-updated";

bool IsSecuritySuite(const std::string& suite) {
  return suite.find("-security") != std::string::npos ||
         suite.find("/updates") != std::string::npos;
}

}  // namespace

const std::map<std::string, std::string>& ArchiveToolEnvironment() {
  static const std::map<std::string, std::string> environment = {{"PATH", kToolPath},
                                                                 {"LC_ALL", "C"}};
  return environment;
}

std::optional<std::string> MirrorFromSources(std::string_view text) {
  std::istringstream lines{std::string(text)};
  // deb822: stanzas of "Key: value" lines separated by blank lines.
  std::map<std::string, std::string> stanza;
  auto from_stanza = [&stanza]() -> std::optional<std::string> {
    auto types = stanza.find("types");
    auto uris = stanza.find("uris");
    auto suites = stanza.find("suites");
    if (types == stanza.end() || uris == stanza.end() || suites == stanza.end()) {
      return std::nullopt;
    }
    const std::vector<std::string> type_words = Words(types->second);
    if (std::find(type_words.begin(), type_words.end(), "deb") == type_words.end()) {
      return std::nullopt;
    }
    const std::vector<std::string> suite_words = Words(suites->second);
    if (suite_words.empty() || IsSecuritySuite(suite_words.front())) return std::nullopt;
    const std::vector<std::string> uri_words = Words(uris->second);
    if (uri_words.empty()) return std::nullopt;
    return uri_words.front();
  };
  for (std::string line; std::getline(lines, line);) {
    const std::string trimmed = Trim(line);
    if (trimmed.empty()) {
      if (auto mirror = from_stanza()) return mirror;
      stanza.clear();
      continue;
    }
    if (trimmed[0] == '#') continue;
    if (trimmed.rfind("deb ", 0) == 0) {
      // One-line: deb [options] URI SUITE COMPONENT...
      std::vector<std::string> words = Words(trimmed);
      size_t at = 1;
      if (at < words.size() && words[at].front() == '[') {
        while (at < words.size() && words[at].back() != ']') ++at;
        ++at;
      }
      if (at + 1 < words.size() && !IsSecuritySuite(words[at + 1])) return words[at];
      continue;
    }
    const size_t colon = trimmed.find(':');
    if (colon == std::string::npos || trimmed.rfind("deb-src", 0) == 0) continue;
    std::string key = trimmed.substr(0, colon);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (key.find(' ') == std::string::npos) stanza[key] = Trim(trimmed.substr(colon + 1));
  }
  return from_stanza();
}

Result<std::string> DebianMirror() {
  if (const char* mirror = std::getenv("WEDGE_DEBIAN_MIRROR"); mirror != nullptr && *mirror) {
    return std::string(mirror);
  }
  std::vector<fs::path> files = {"/etc/apt/sources.list"};
  std::error_code ec;
  std::vector<fs::path> parts;
  for (const auto& entry : fs::directory_iterator("/etc/apt/sources.list.d", ec)) {
    const std::string extension = entry.path().extension().string();
    if (extension == ".list" || extension == ".sources") parts.push_back(entry.path());
  }
  std::sort(parts.begin(), parts.end());
  files.insert(files.end(), parts.begin(), parts.end());
  for (const auto& file : files) {
    Result<std::string> text = sys::ReadFile(file);
    if (!text.ok()) continue;
    if (auto mirror = MirrorFromSources(*text)) return *mirror;
  }
  return Error(
      "no Debian archive in the host's apt sources (/etc/apt/sources.list, "
      "/etc/apt/sources.list.d); set WEDGE_DEBIAN_MIRROR");
}

ReleaseArchive::ReleaseArchive(std::string release, std::string mirror, fs::path apt_dir)
    : release_(std::move(release)), mirror_(std::move(mirror)), apt_dir_(std::move(apt_dir)) {}

Result<ReleaseArchive> ReleaseArchive::Open(const std::string& release, const std::string& mirror,
                                            const fs::path& apt_dir) {
  for (const char* sub : {"lists/partial", "cache/archives/partial"}) {
    WEDGE_RETURN_IF_ERROR(sys::MakeSharedDirectory(apt_dir / sub));
  }
  ReleaseArchive archive(release, mirror, apt_dir);
  WEDGE_RETURN_IF_ERROR(
      sys::WriteFileAtomically(apt_dir / "sources.list", archive.SourceLine() + "\n", 0644));
  if (!fs::exists(apt_dir / "status")) {
    WEDGE_RETURN_IF_ERROR(sys::WriteFileAtomically(apt_dir / "status", "", 0644));
  }
  return archive;
}

std::string ReleaseArchive::SourceLine() const {
  return "deb [signed-by=" + std::string(kDebianArchiveKeyring) + "] " + mirror_ + " " + release_ +
         " main";
}

std::vector<std::string> ReleaseArchive::AptOptions() const {
  return {"-o", "Dir::Etc::SourceList=" + (apt_dir_ / "sources.list").string(),
          "-o", "Dir::Etc::SourceParts=-",
          "-o", "Dir::State::Lists=" + (apt_dir_ / "lists").string(),
          "-o", "Dir::State::Status=" + (apt_dir_ / "status").string(),
          "-o", "Dir::Cache=" + (apt_dir_ / "cache").string(),
          "-o", "APT::Sandbox::User=root",
          "-o", kNoValidUntil};
}

Status ReleaseArchive::UpdateLists() const {
  std::vector<std::string> update = AptOptions();
  update.insert(update.end(), {"-q", "update"});
  WEDGE_ASSIGN_OR_RETURN(
      sys::CommandOutput updated,
      sys::RunCommand("apt-get", update, std::chrono::minutes(3), ArchiveToolEnvironment()));
  // apt-get update exits 0 on some fetch failures: an index it could not get shows as "Err:"
  // or "W: Failed to fetch".
  if (updated.exit_code != 0 || updated.output.find("\nErr:") != std::string::npos ||
      updated.output.rfind("Err:", 0) == 0 ||
      updated.output.find("Failed to fetch") != std::string::npos) {
    return Error("the archive " + mirror_ + " did not give " + release_ +
                 "'s package lists (apt-get update): " + Trim(updated.output));
  }
  return sys::WriteFileAtomically(apt_dir_ / kUpdatedStamp, "", 0644);
}

Status ReleaseArchive::EnsureFreshLists(std::chrono::seconds max_age) const {
  std::error_code ec;
  const fs::file_time_type updated = fs::last_write_time(apt_dir_ / kUpdatedStamp, ec);
  if (!ec) {
    const auto age = fs::file_time_type::clock::now() - updated;
    if (age >= fs::file_time_type::duration::zero() && age < max_age) return OkStatus();
  }
  return UpdateLists();
}

Result<sys::CommandOutput> ReleaseArchive::AptCache(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = AptOptions();
  argv.insert(argv.end(), args.begin(), args.end());
  WEDGE_ASSIGN_OR_RETURN(
      sys::CommandOutput output,
      sys::RunCommand("apt-cache", argv, std::chrono::seconds(30), ArchiveToolEnvironment()));
  if (output.exit_code != 0) {
    std::string command = "apt-cache";
    for (const auto& arg : args) command += " " + arg;
    return Error(command + " for " + release_ + " failed: " + Trim(output.output));
  }
  return output;
}

Status ReleaseArchive::Download(const std::string& package, const fs::path& directory) const {
  std::vector<std::string> argv = {"-c", "cd \"$1\" && shift && exec apt-get \"$@\"", "sh",
                                   directory.string()};
  for (const auto& option : AptOptions()) argv.push_back(option);
  argv.insert(argv.end(), {"-q", "download", package});
  WEDGE_ASSIGN_OR_RETURN(
      sys::CommandOutput download,
      sys::RunCommand("sh", argv, std::chrono::minutes(10), ArchiveToolEnvironment()));
  if (download.exit_code != 0) {
    return Error("apt-get download " + package + " (" + release_ +
                 ") failed: " + Trim(download.output));
  }
  return OkStatus();
}

std::vector<std::string> ParseDepends(std::string_view show_output) {
  std::istringstream lines{std::string(show_output)};
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Depends: ", 0) != 0) continue;
    std::istringstream clauses{line.substr(9)};
    for (std::string clause; std::getline(clauses, clause, ',');) {
      // "a (>= 1) | b": the first alternative, without its version constraint.
      const std::string first = Trim(clause.substr(0, clause.find('|')));
      const std::string name = Trim(first.substr(0, first.find_first_of(" (:")));
      if (!name.empty()) names.push_back(name);
    }
    break;  // the first stanza's
  }
  return names;
}

}  // namespace wedge::stack
