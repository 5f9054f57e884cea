#include "wedge/stack/release_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wedge/base/debian_releases.h"
#include "wedge/base/fault_point.h"
#include "wedge/base/text.h"
#include "wedge/base/unique_fd.h"
#include "wedge/stack/release_archive.h"
#include "wedge/sys/cgroup.h"
#include "wedge/sys/child_process.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"
#include "wedge/sys/process.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void Say(std::ostream* out, const std::string& release, const std::string& line) {
  if (out == nullptr) return;
  *out << "[stack " << release << "] " << line << "\n";
  out->flush();
}

// The versions `release`'s archive offers now for the stack's packages.
Result<std::map<std::string, std::string>> ResolveVersions(const std::string& release,
                                                           const std::string& mirror,
                                                           const fs::path& apt_dir) {
  WEDGE_ASSIGN_OR_RETURN(ReleaseArchive archive, ReleaseArchive::Open(release, mirror, apt_dir));
  WEDGE_RETURN_IF_ERROR(archive.UpdateLists());
  std::vector<std::string> show = {"show", "--no-all-versions"};
  const std::vector<std::string> packages = StackPackages(release);
  show.insert(show.end(), packages.begin(), packages.end());
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput shown, archive.AptCache(show));
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

// The versions of the stack's packages in `release`'s archive now: a resolution less than
// kResolvedForSeconds old, else a new one (then recorded).
Result<std::map<std::string, std::string>> CurrentVersions(const std::string& release,
                                                           const std::string& mirror,
                                                           const fs::path& apt_dir) {
  Result<std::map<std::string, std::string>> versions = RecentlyResolved(apt_dir, mirror);
  if (versions.ok()) return versions;
  versions = ResolveVersions(release, mirror, apt_dir);
  if (versions.ok()) RecordResolved(apt_dir, mirror, *versions);
  return versions;
}

struct CachedRoot {
  fs::path root;
  json manifest;
};

// The root CACHE/NAME if it is complete (its manifest CACHE/NAME.json was written) and trusted.
std::optional<CachedRoot> Cached(const fs::path& cache, const std::string& name) {
  const fs::path root = cache / name;
  Result<std::string> text = sys::ReadFile(cache / (name + ".json"));
  if (!text.ok() || !sys::CheckSharedDirectory(root).ok()) return std::nullopt;
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
Status Build(const ReleaseArchive& archive, const std::map<std::string, std::string>& versions,
             const fs::path& target, sys::Journal& journal) {
  const std::string& release = archive.release();
  std::string include = "--include=";
  for (const auto& [package, version] : versions) {
    if (include.back() != '=') include += ",";
    include += package + "=" + version;
  }
  sys::ChildSpec spec;
  spec.role = "mmdebstrap " + release;
  spec.argv = {"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
               "--kill-child", "mmdebstrap", "--mode=root", "--variant=essential", "--quiet",
               include,
               // apt.conf syntax, where apt-get's -o takes KEY=VALUE.
               "--aptopt=Acquire::Check-Valid-Until \"false\"",
               "--keyring=" + std::string(kDebianArchiveKeyring), release, target.string(),
               archive.SourceLine()};
  spec.environment = ArchiveToolEnvironment();
  // Its output goes to a file without a name, which nothing can leave behind.
  UniqueFd log_fd(::open(target.parent_path().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!log_fd.valid())
    return ErrnoError("open(O_TMPFILE in '" + target.parent_path().string() + "')");
  spec.stdout_stream = sys::ChildStream::Descriptor(log_fd.get());
  spec.stderr_stream = sys::ChildStream::SameAsStdout();
  // Everything mmdebstrap starts runs in a cgroup of the build's: its undo (this function's
  // end, or `wedge cleanup` after a kill) stops every one of them and waits, before the
  // directory they write into is removed.
  WEDGE_ASSIGN_OR_RETURN(
      std::unique_ptr<sys::ScopedCgroup> cgroup,
      sys::ScopedCgroup::Create(journal, "wedge/" + journal.run_id() + "/root-build", {}));
  const fs::path procs = cgroup->directory() / "cgroup.procs";
  UniqueFd procs_fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!procs_fd.valid()) return ErrnoError("open('" + procs.string() + "')");
  spec.cgroup_procs_fd = procs_fd.get();
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
  WEDGE_RETURN_IF_ERROR(cgroup->Remove());
  return cgroup->RemoveCreatedParentsIfUnused();
}

}  // namespace

std::vector<std::string> StackPackages(const std::string& release) {
  std::vector<std::string> packages = {"containerd", "docker.io", "runc"};
  if (release != "bullseye" && release != "bookworm") packages.push_back("docker-cli");
  std::sort(packages.begin(), packages.end());
  return packages;
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
  WEDGE_RETURN_IF_ERROR(sys::MakeSharedDirectory(cache));
  ReleaseRoot result;
  result.release = release;
  // No mirror (a guest kernel's wedge, whose cache holds the one root it was given) is an
  // archive out of reach, as an unreachable one is.
  const Result<std::string> mirror_found = DebianMirror();
  const Result<std::map<std::string, std::string>> versions =
      mirror_found.ok() ? CurrentVersions(release, *mirror_found, cache / "apt" / release)
                        : mirror_found.error();
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
  const std::string& mirror = *mirror_found;
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
  WEDGE_ASSIGN_OR_RETURN(ReleaseArchive archive,
                         ReleaseArchive::Open(release, mirror, cache / "apt" / release));
  const fs::path building =
      cache / (std::string(sys::kStackBuildPrefix) + journal.run_id() + "-" + release);
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq, journal.Record(sys::DirectoryChange{building}));
  if (::mkdir(building.c_str(), 0755) != 0) {
    (void)journal.Undo(seq);
    return ErrnoError("mkdir('" + building.string() + "')");
  }
  if (Status built = Build(archive, result.packages, building, journal); !built.ok()) {
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
