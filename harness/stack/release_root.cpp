#include "wedge/stack/release_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wedge/base/debian_releases.h"
#include "wedge/base/fault_point.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// sid's Release file on a mirror may be past its Valid-Until date; the archive's signature
// still holds, so the date is not checked.
constexpr const char* kNoValidUntil = "Acquire::Check-Valid-Until=false";

void Say(std::ostream* out, const std::string& release, const std::string& line) {
  if (out == nullptr) return;
  *out << "[stack " << release << "] " << line << "\n";
  out->flush();
}

std::string Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r");
  return std::string(text.substr(first, last - first + 1));
}

std::vector<std::string> Words(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

bool IsSecuritySuite(const std::string& suite) {
  return suite.find("-security") != std::string::npos ||
         suite.find("/updates") != std::string::npos;
}

// Why `directory` cannot hold roots wedge runs as root, or OK: root's (wedge's uid), a directory
// (not a link), writable by nobody else.
Status CheckCacheDirectory(const fs::path& directory) {
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0)
    return ErrnoError("lstat('" + directory.string() + "')");
  if (!S_ISDIR(st.st_mode)) return Error(directory.string() + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Error(directory.string() + " is owned by uid " + std::to_string(st.st_uid) +
                 ", not by wedge's uid " + std::to_string(::geteuid()));
  }
  if ((st.st_mode & 022) != 0) {
    return Error(directory.string() + " is writable by others than its owner");
  }
  return OkStatus();
}

Status MakeCacheDirectory(const fs::path& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) return Error("create_directories('" + directory.string() + "'): " + ec.message());
  return CheckCacheDirectory(directory);
}

// apt-get and apt-cache with the lists of one release kept under `apt_dir`, apart from the
// host's: its sources, lists, cache and an empty status (so the host's installed versions do
// not count).
std::vector<std::string> AptOptions(const fs::path& apt_dir) {
  return {"-o", "Dir::Etc::SourceList=" + (apt_dir / "sources.list").string(),
          "-o", "Dir::Etc::SourceParts=-",
          "-o", "Dir::State::Lists=" + (apt_dir / "lists").string(),
          "-o", "Dir::State::Status=" + (apt_dir / "status").string(),
          "-o", "Dir::Cache=" + (apt_dir / "cache").string(),
          "-o", "APT::Sandbox::User=root",
          "-o", kNoValidUntil};
}

std::string SourceLine(const std::string& mirror, const std::string& release) {
  return "deb [signed-by=" + std::string(kKeyring) + "] " + mirror + " " + release + " main";
}

// The versions `release`'s archive offers now for the stack's packages.
Result<std::map<std::string, std::string>> ResolveVersions(const std::string& release,
                                                           const std::string& mirror,
                                                           const fs::path& apt_dir) {
  for (const char* sub : {"lists/partial", "cache/archives/partial"}) {
    WEDGE_RETURN_IF_ERROR(MakeCacheDirectory(apt_dir / sub));
  }
  WEDGE_RETURN_IF_ERROR(
      sys::WriteFileAtomically(apt_dir / "sources.list", SourceLine(mirror, release) + "\n", 0644));
  if (!fs::exists(apt_dir / "status")) {
    WEDGE_RETURN_IF_ERROR(sys::WriteFileAtomically(apt_dir / "status", "", 0644));
  }
  std::vector<std::string> update = AptOptions(apt_dir);
  update.insert(update.end(), {"-q", "update"});
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput updated,
                         sys::RunCommand("apt-get", update, std::chrono::minutes(3),
                                         {{"PATH", kPath}, {"LC_ALL", "C"}}));
  // apt-get update exits 0 on some fetch failures: an index it could not get shows as "Err:"
  // or "W: Failed to fetch".
  if (updated.exit_code != 0 || updated.output.find("\nErr:") != std::string::npos ||
      updated.output.rfind("Err:", 0) == 0 ||
      updated.output.find("Failed to fetch") != std::string::npos) {
    return Error("the archive " + mirror + " did not give " + release +
                 "'s package lists (apt-get update): " + Trim(updated.output));
  }
  std::vector<std::string> show = AptOptions(apt_dir);
  show.insert(show.end(), {"show", "--no-all-versions"});
  const std::vector<std::string> packages = StackPackages(release);
  show.insert(show.end(), packages.begin(), packages.end());
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput shown,
                         sys::RunCommand("apt-cache", show, std::chrono::seconds(30),
                                         {{"PATH", kPath}, {"LC_ALL", "C"}}));
  std::map<std::string, std::string> versions = ParseCandidateVersions(shown.output);
  for (const std::string& package : packages) {
    if (!versions.contains(package)) {
      return Error(release + " has no package " + package + " in " + mirror);
    }
  }
  return versions;
}

// Versions resolved less than kResolvedFor ago are used again without asking the archive: the
// runs of one suite or matrix, and the runs of an afternoon, use one root per release.
constexpr std::int64_t kResolvedForSeconds = 3600;

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::map<std::string, std::string>> RecentlyResolved(const fs::path& apt_dir,
                                                            const std::string& mirror) {
  Result<std::string> text = sys::ReadFile(apt_dir / "resolved.json");
  if (!text.ok()) return text.error();
  const json resolved = json::parse(*text, nullptr, false);
  if (!resolved.is_object() || resolved.value("mirror", "") != mirror ||
      !resolved.contains("packages") || !resolved["packages"].is_object()) {
    return Error("no usable resolution");
  }
  const std::int64_t age = NowSeconds() - resolved.value("resolved_at", std::int64_t{0});
  if (age < 0 || age >= kResolvedForSeconds) return Error("resolution too old");
  return resolved["packages"].get<std::map<std::string, std::string>>();
}

void RecordResolved(const fs::path& apt_dir, const std::string& mirror,
                    const std::map<std::string, std::string>& packages) {
  const json resolved = {{"mirror", mirror}, {"packages", packages}, {"resolved_at", NowSeconds()}};
  (void)sys::WriteFileAtomically(apt_dir / "resolved.json", resolved.dump(2) + "\n", 0644);
}

struct CachedRoot {
  fs::path root;
  json manifest;
};

// The root CACHE/NAME if it is complete (its manifest CACHE/NAME.json was written) and trusted.
std::optional<CachedRoot> Cached(const fs::path& cache, const std::string& name) {
  const fs::path root = cache / name;
  Result<std::string> text = sys::ReadFile(cache / (name + ".json"));
  if (!text.ok() || !CheckCacheDirectory(root).ok()) return std::nullopt;
  json manifest = json::parse(*text, nullptr, false);
  if (!manifest.is_object() || !manifest.contains("packages")) return std::nullopt;
  return CachedRoot{root, std::move(manifest)};
}

// The newest complete root of `release` in the cache, for when the archive cannot be reached.
std::optional<CachedRoot> NewestCached(const fs::path& cache, const std::string& release) {
  std::optional<CachedRoot> newest;
  fs::file_time_type newest_time;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache, ec)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".json" || file.rfind(release + "-", 0) != 0) continue;
    std::optional<CachedRoot> cached = Cached(cache, entry.path().stem().string());
    const fs::file_time_type time = fs::last_write_time(entry.path(), ec);
    if (cached && (!newest || time > newest_time)) {
      newest = std::move(cached);
      newest_time = time;
    }
  }
  return newest;
}

std::uint64_t DiskUsage(const fs::path& root) {
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

// mmdebstrap into `target`, in a mount and pid namespace of its own (unshare --kill-child):
// whatever it mounts, and every process it starts, goes when it does.
Status Build(const std::string& release, const std::string& mirror,
             const std::map<std::string, std::string>& versions, const fs::path& target,
             sys::Journal& journal) {
  std::string include = "--include=";
  for (const auto& [package, version] : versions) {
    if (include.back() != '=') include += ",";
    include += package + "=" + version;
  }
  sys::ChildSpec spec;
  spec.role = "mmdebstrap " + release;
  spec.argv = {
      "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
      "--kill-child", "mmdebstrap", "--mode=root", "--variant=essential", "--quiet", include,
      // apt.conf syntax, where apt-get's -o takes KEY=VALUE.
      "--aptopt=Acquire::Check-Valid-Until \"false\"", "--keyring=" + std::string(kKeyring),
      release, target.string(), SourceLine(mirror, release)};
  spec.environment = std::map<std::string, std::string>{{"PATH", kPath}, {"LC_ALL", "C"}};
  // Its output goes to a file without a name, which nothing can leave behind.
  UniqueFd log_fd(::open(target.parent_path().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!log_fd.valid())
    return ErrnoError("open(O_TMPFILE in '" + target.parent_path().string() + "')");
  spec.stdout_stream = sys::ChildStream::Descriptor(log_fd.get());
  spec.stderr_stream = sys::ChildStream::SameAsStdout();
  WEDGE_ASSIGN_OR_RETURN(sys::ChildProcess child, sys::ChildProcess::Start(journal, spec));
  std::optional<int> status = child.WaitUntil(sys::MonotonicMillis() + 15 * 60 * 1000);
  if (!status) {
    child.Kill();
    return Error("mmdebstrap " + release + " did not finish" +
                 (sys::Interrupted() ? " (interrupted)" : " within 15 minutes"));
  }
  ::lseek(log_fd.get(), 0, SEEK_SET);
  Result<std::string> output = sys::ReadDescriptor(log_fd.get(), "mmdebstrap's output");
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    std::string tail = output.ok() ? Trim(*output) : "";
    if (tail.size() > 2000) tail = "..." + tail.substr(tail.size() - 2000);
    return Error("mmdebstrap " + release + " failed: " + tail);
  }
  return OkStatus();
}

}  // namespace

std::vector<std::string> StackPackages(const std::string& release) {
  std::vector<std::string> packages = {"containerd", "docker.io", "runc"};
  if (release != "bullseye" && release != "bookworm") packages.push_back("docker-cli");
  std::sort(packages.begin(), packages.end());
  return packages;
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

std::map<std::string, std::string> ParseCandidateVersions(std::string_view text) {
  std::map<std::string, std::string> versions;
  std::istringstream lines{std::string(text)};
  std::string package;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Package: ", 0) == 0) {
      package = Trim(line.substr(9));
    } else if (line.rfind("Version: ", 0) == 0 && !package.empty() && !versions.contains(package)) {
      versions[package] = Trim(line.substr(9));
    } else if (Trim(line).empty()) {
      package.clear();
    }
  }
  return versions;
}

std::string RootName(const std::string& release,
                     const std::map<std::string, std::string>& packages) {
  // FNV-1a 64 over "name=version\n" lines: a name, not a security boundary (the cache is
  // root's alone).
  std::uint64_t hash = 1469598103934665603ull;
  for (const auto& [package, version] : packages) {
    for (char c : package + "=" + version + "\n") {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return release + "-" + std::string(hex, 12);
}

Binaries ReleaseRoot::StackBinaries() const {
  Binaries binaries = Binaries::Defaults();
  binaries.root = root;
  binaries.release = release;
  return binaries;
}

Result<ReleaseRoot> EnsureReleaseRoot(const std::string& release, sys::Journal& journal,
                                      const fs::path& cache, std::ostream* say) {
  if (!IsDebianRelease(release)) return Error("unknown release '" + release + "'");
  WEDGE_RETURN_IF_ERROR(MakeCacheDirectory(cache));
  WEDGE_ASSIGN_OR_RETURN(std::string mirror, DebianMirror());
  ReleaseRoot result;
  result.release = release;
  Result<std::map<std::string, std::string>> versions =
      RecentlyResolved(cache / "apt" / release, mirror);
  if (!versions.ok()) {
    versions = ResolveVersions(release, mirror, cache / "apt" / release);
    if (versions.ok()) RecordResolved(cache / "apt" / release, mirror, *versions);
  }
  if (!versions.ok()) {
    std::optional<CachedRoot> fallback = NewestCached(cache, release);
    if (!fallback) return versions.error();
    Say(say, release,
        versions.error().message() + "; using the newest cached root, " +
            fallback->root.filename().string());
    result.root = fallback->root;
    result.packages = fallback->manifest["packages"].get<std::map<std::string, std::string>>();
    result.size_bytes = fallback->manifest.value("size_bytes", std::uint64_t{0});
    return result;
  }
  result.packages = *versions;
  const std::string name = RootName(release, result.packages);
  if (std::optional<CachedRoot> cached = Cached(cache, name)) {
    result.root = cached->root;
    result.size_bytes = cached->manifest.value("size_bytes", std::uint64_t{0});
    return result;
  }
  std::string list;
  for (const auto& [package, version] : result.packages) list += " " + package + " " + version;
  Say(say, release, "building its root from " + mirror + " (" + Trim(list) + ")");
  const std::int64_t started = sys::MonotonicMillis();
  // A root left without its manifest (a build killed after its rename) is not trusted: it goes.
  std::error_code ec;
  fs::remove_all(cache / name, ec);
  const fs::path building =
      cache / (std::string(sys::kStackBuildPrefix) + journal.run_id() + "-" + release);
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq, journal.Record(sys::DirectoryChange{building}));
  if (::mkdir(building.c_str(), 0755) != 0) {
    (void)journal.Undo(seq);
    return ErrnoError("mkdir('" + building.string() + "')");
  }
  if (Status built = Build(release, mirror, result.packages, building, journal); !built.ok()) {
    (void)journal.Undo(seq);
    return built.error();
  }
  for (const char* name_in_root :
       {"docker", "dockerd", "containerd", "runc", "containerd-shim-runc-v2"}) {
    const fs::path binary = building / Binaries::Defaults().Path(name_in_root).relative_path();
    if (::access(binary.c_str(), X_OK) != 0) {
      (void)journal.Undo(seq);
      return Error(release + "'s root has no " + name_in_root + " at " + binary.string());
    }
  }
  ::chmod(building.c_str(), 0755);
  result.size_bytes = DiskUsage(building);
  FaultPoint("release-root-built");
  if (::rename(building.c_str(), (cache / name).c_str()) != 0) {
    Error error = ErrnoError("rename('" + building.string() + "')");
    (void)journal.Undo(seq);
    return error;
  }
  (void)journal.Forget(seq);
  result.root = cache / name;
  result.build_ms = sys::MonotonicMillis() - started;
  const json manifest = {{"release", release},
                         {"packages", result.packages},
                         {"mirror", mirror},
                         {"build_ms", result.build_ms},
                         {"size_bytes", result.size_bytes}};
  WEDGE_RETURN_IF_ERROR(
      sys::WriteFileAtomically(cache / (name + ".json"), manifest.dump(2) + "\n", 0644));
  Say(say, release,
      "built " + result.root.string() + " in " + std::to_string(result.build_ms) + " ms, " +
          std::to_string(result.size_bytes / (1024 * 1024)) + " MiB");
  return result;
}

}  // namespace wedge::stack
