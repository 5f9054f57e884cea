#include "wedge/vm/kernel.h"

#include <fnmatch.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

#include "wedge/base/debian_releases.h"
#include "wedge/stack/release_archive.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/sys/journal.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

// Debian policy 5.6.1: package names are [a-z0-9][a-z0-9+.-]+.
bool IsPackagePatternCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-' ||
         c == '*' || c == '?' || c == '[' || c == ']';
}

std::string NormalizedModuleName(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::vector<std::string> SplitWords(std::string_view text, char separator) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (c == separator || c == ' ' || c == '\t' || c == '\n') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

// The kernel image of an extracted package tree: ROOT/boot/vmlinuz-R (bullseye to trixie), or
// ROOT/usr/lib/modules/R/vmlinuz (sid's linux-binary-R).
std::optional<fs::path> FindVmlinuz(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root / "boot", ec)) {
    if (entry.path().filename().string().rfind("vmlinuz-", 0) == 0) return entry.path();
  }
  for (const fs::path& modules : {root / "usr/lib/modules", root / "lib/modules"}) {
    for (const auto& entry : fs::directory_iterator(modules, ec)) {
      if (fs::is_regular_file(entry.path() / "vmlinuz", ec)) return entry.path() / "vmlinuz";
    }
  }
  return std::nullopt;
}

// "6.1.0-56-cloud-amd64", from .../vmlinuz-6.1.0-56-cloud-amd64 or .../modules/R/vmlinuz.
std::string ReleaseOf(const fs::path& vmlinuz) {
  std::string name = vmlinuz.filename().string();
  if (name.rfind("vmlinuz-", 0) == 0) return name.substr(8);
  const fs::path parent = vmlinuz.parent_path();
  if (name == "vmlinuz" && parent.parent_path().filename() == "modules") {
    return parent.filename().string();
  }
  return "";
}

Result<KernelImage> ImageFromVmlinuz(const fs::path& vmlinuz, std::string label) {
  Result<std::string> readable = sys::ReadFile(vmlinuz);
  if (!readable.ok()) return readable.error().WithContext("kernel " + label);
  if (!fs::is_regular_file(vmlinuz)) return Error("kernel " + label + ": not a regular file");
  KernelImage image;
  image.label = std::move(label);
  image.vmlinuz = fs::absolute(vmlinuz).lexically_normal();
  image.release = ReleaseOf(vmlinuz);
  if (!image.release.empty()) {
    // An image inside its modules directory (sid's layout); an extracted package
    // (ROOT/boot/vmlinuz-R beside ROOT/lib/modules/R or ROOT/usr/lib/modules/R); or the host's
    // own layout (/boot and /lib/modules).
    const fs::path root = image.vmlinuz.parent_path().parent_path();
    for (const fs::path& candidate :
         {image.vmlinuz.filename() == "vmlinuz" ? image.vmlinuz.parent_path() : fs::path(),
          root / "lib/modules" / image.release, root / "usr/lib/modules" / image.release,
          fs::path("/lib/modules") / image.release}) {
      if (!candidate.empty() && fs::is_directory(candidate / "kernel")) {
        image.modules_dir = candidate;
        break;
      }
    }
  }
  return image;
}

// Where kernel packages come from: the host's own apt, or one release's archive
// (stack/release_archive.h).
class KernelArchive {
 public:
  static Result<KernelArchive> For(const std::string& release) {
    if (release.empty()) return KernelArchive(std::nullopt);
    WEDGE_ASSIGN_OR_RETURN(std::string mirror, stack::DebianMirror());
    WEDGE_ASSIGN_OR_RETURN(
        stack::ReleaseArchive archive,
        stack::ReleaseArchive::Open(release, mirror,
                                    sys::DefaultStackCacheDirectory() / "apt" / release));
    // A kernel's name is looked up in lists at most an hour old: a new upload is seen the same
    // day, and the runs of one afternoon ask the archive once.
    WEDGE_RETURN_IF_ERROR(archive.EnsureFreshLists(std::chrono::hours(1)));
    return KernelArchive(std::move(archive));
  }

  Result<sys::CommandOutput> AptCache(const std::vector<std::string>& args) const {
    if (archive_) return archive_->AptCache(args);
    WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput output, sys::RunCommand("apt-cache", args));
    if (output.exit_code != 0) {
      return Error("apt-cache " + (args.empty() ? "" : args.front()) + " failed: " + output.output);
    }
    return output;
  }

  Status Download(const std::string& package, const fs::path& directory) const {
    if (archive_) return archive_->Download(package, directory);
    WEDGE_ASSIGN_OR_RETURN(
        sys::CommandOutput download,
        sys::RunCommand("sh",
                        {"-c",
                         "cd \"$1\" && exec apt-get download -q -o APT::Sandbox::User=root "
                         "\"$2\"",
                         "sh", directory.string(), package},
                        std::chrono::minutes(10)));
    if (download.exit_code != 0) {
      return Error("apt-get download " + package + " failed: " + download.output);
    }
    return OkStatus();
  }

  std::string Where() const { return archive_ ? archive_->release() + "'s archive" : "apt"; }

 private:
  explicit KernelArchive(std::optional<stack::ReleaseArchive> archive)
      : archive_(std::move(archive)) {}
  std::optional<stack::ReleaseArchive> archive_;
};

// Downloads `package` into `directory` and extracts it into `root`.
Status FetchAndExtract(const KernelArchive& archive, const std::string& package,
                       const fs::path& directory, const fs::path& root) {
  std::error_code ec;
  const fs::path download = directory / ("deb-" + package);
  fs::create_directories(download, ec);
  if (ec) return Error("create_directories('" + download.string() + "'): " + ec.message());
  WEDGE_RETURN_IF_ERROR(archive.Download(package, download));
  std::optional<fs::path> deb;
  for (const auto& entry : fs::directory_iterator(download)) {
    if (entry.path().extension() == ".deb") deb = entry.path();
  }
  if (!deb) return Error("apt-get download " + package + " left no .deb");
  WEDGE_ASSIGN_OR_RETURN(
      sys::CommandOutput extract,
      sys::RunCommand("dpkg-deb", {"-x", deb->string(), root}, std::chrono::minutes(5)));
  if (extract.exit_code != 0) {
    return Error("dpkg-deb -x " + deb->string() + " failed: " + extract.output);
  }
  return OkStatus();
}

Result<KernelImage> FetchPackage(const KernelSpec& spec, const fs::path& cache_dir,
                                 std::ostream* progress) {
  WEDGE_ASSIGN_OR_RETURN(KernelArchive archive, KernelArchive::For(spec.release));
  std::string prefix = spec.package.substr(0, spec.package.find_first_of("*?["));
  WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput names, archive.AptCache({"pkgnames", prefix}));
  WEDGE_ASSIGN_OR_RETURN(std::string package,
                         SelectKernelPackage(spec.package, SplitWords(names.output, '\n')));
  const fs::path root = cache_dir / package;
  if (!FindVmlinuz(root)) {
    if (progress != nullptr) {
      *progress << "kernel " << spec.text << ": fetching " << package << " from " << archive.Where()
                << " into " << root.string() << "\n";
    }
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    if (ec) return Error("create_directories('" + cache_dir.string() + "'): " + ec.message());
    // Downloaded and extracted beside the final directory, then renamed into place: an
    // interrupted fetch never leaves a half-extracted kernel in the cache.
    const fs::path partial = cache_dir / (package + ".partial-" + std::to_string(::getpid()));
    fs::remove_all(partial, ec);
    fs::create_directories(partial / "root", ec);
    if (ec) return Error("create_directories('" + partial.string() + "'): " + ec.message());
    auto fetch = [&]() -> Status {
      WEDGE_RETURN_IF_ERROR(FetchAndExtract(archive, package, partial, partial / "root"));
      if (!FindVmlinuz(partial / "root")) {
        // sid's linux-image-R is empty: the image and the modules are its dependencies
        // linux-binary-R and linux-modules-R, the packages named for the same R.
        const std::string suffix = package.substr(std::string_view("linux-image-").size());
        WEDGE_ASSIGN_OR_RETURN(sys::CommandOutput shown,
                               archive.AptCache({"show", "--no-all-versions", package}));
        for (const std::string& dependency : stack::ParseDepends(shown.output)) {
          if (dependency == package || !dependency.ends_with("-" + suffix)) continue;
          if (progress != nullptr) {
            *progress << "kernel " << spec.text << ": " << package << " depends on " << dependency
                      << ", fetching it too\n";
          }
          WEDGE_RETURN_IF_ERROR(FetchAndExtract(archive, dependency, partial, partial / "root"));
        }
      }
      // A concurrent wedge may have filled the cache meanwhile: its copy is as good.
      fs::rename(partial / "root", root, ec);
      if (ec && !FindVmlinuz(root)) {
        return Error("rename('" + (partial / "root").string() + "', '" + root.string() +
                     "'): " + ec.message());
      }
      return OkStatus();
    };
    Status fetched = fetch();
    fs::remove_all(partial, ec);
    WEDGE_RETURN_IF_ERROR(fetched);
  }
  std::optional<fs::path> vmlinuz = FindVmlinuz(root);
  if (!vmlinuz) {
    return Error("kernel package " + package +
                 " (and the packages of its release it depends on) has no boot/vmlinuz-* or "
                 "usr/lib/modules/*/vmlinuz");
  }
  return ImageFromVmlinuz(*vmlinuz, package);
}

}  // namespace

Result<KernelSpec> ParseKernelSpec(std::string_view text) {
  if (text.empty()) return Error("--kernel needs a value: host, a vmlinuz path or a package");
  if (text == "host") return KernelSpec{KernelSource::kHost, "host", "", ""};
  if (text.find('/') != std::string_view::npos) {
    return KernelSpec{KernelSource::kPath, std::string(text), "", ""};
  }
  std::string release;
  std::string_view package = text;
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    release = std::string(text.substr(0, colon));
    package = text.substr(colon + 1);
    if (!IsDebianRelease(release)) {
      return Error("--kernel " + std::string(text) + ": " + release +
                   " is not a release wedge fetches from (" + DebianReleaseList() + ")");
    }
  }
  if (package.empty() || !std::all_of(package.begin(), package.end(), IsPackagePatternCharacter) ||
      package[0] == '-') {
    return Error("--kernel " + std::string(text) +
                 ": neither host, a path (with a '/') nor a Debian package name or glob, "
                 "optionally after a release (bullseye:linux-image-5.10.0-*-cloud-amd64)");
  }
  return KernelSpec{KernelSource::kPackage, std::string(text), release, std::string(package)};
}

Result<std::string> SelectKernelPackage(std::string_view pattern,
                                        const std::vector<std::string>& available) {
  const std::string glob(pattern);
  std::optional<std::string> best;
  for (const auto& name : available) {
    if (::fnmatch(glob.c_str(), name.c_str(), 0) != 0) continue;
    if (!best || ::strverscmp(name.c_str(), best->c_str()) > 0) best = name;
  }
  if (!best) return Error("no package matches '" + glob + "' (apt-cache pkgnames)");
  return *best;
}

fs::path DefaultKernelCache() {
  const char* override_dir = std::getenv("WEDGE_KERNEL_CACHE");
  return override_dir != nullptr && *override_dir != '\0' ? override_dir
                                                          : "/var/cache/wedge/kernels";
}

Result<KernelImage> ResolveKernel(const KernelSpec& spec, const fs::path& cache_dir,
                                  std::ostream* progress) {
  switch (spec.source) {
    case KernelSource::kHost: {
      KernelImage image;
      image.label = "host";
      image.host = true;
      return image;
    }
    case KernelSource::kPath:
      return ImageFromVmlinuz(spec.text, spec.text);
    case KernelSource::kPackage:
      return FetchPackage(spec, cache_dir, progress);
  }
  return Error("unknown kernel source");
}

std::string ModuleName(const fs::path& file) {
  std::string name = file.filename().string();
  size_t ko = name.find(".ko");
  return NormalizedModuleName(ko == std::string::npos ? name : name.substr(0, ko));
}

std::map<std::string, KernelModule> ParseModulesDep(std::string_view text) {
  std::map<std::string, KernelModule> modules;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    KernelModule module;
    module.path = line.substr(0, colon);
    module.name = ModuleName(module.path);
    for (const auto& dependency : SplitWords(line.substr(colon + 1), ' ')) {
      module.depends.push_back(ModuleName(dependency));
    }
    modules[module.name] = std::move(module);
  }
  return modules;
}

std::vector<std::string> ParseModinfoDepends(std::string_view module_bytes) {
  // .modinfo holds NUL-terminated "key=value" strings; "depends=" is always present, empty
  // for a module that needs none.
  constexpr std::string_view kKey{"\0depends=", 9};
  size_t at = module_bytes.find(kKey);
  if (at == std::string_view::npos) return {};
  std::string_view rest = module_bytes.substr(at + kKey.size());
  std::vector<std::string> depends;
  for (auto& name : SplitWords(rest.substr(0, rest.find('\0')), ',')) {
    depends.push_back(NormalizedModuleName(name));
  }
  return depends;
}

Result<std::vector<KernelModule>> ModuleLoadOrder(
    const std::vector<std::string>& wanted,
    const std::function<std::optional<KernelModule>(const std::string&)>& lookup) {
  std::vector<KernelModule> order;
  std::set<std::string> placed;
  std::set<std::string> visiting;
  std::function<Status(const std::string&)> place = [&](const std::string& name) -> Status {
    if (placed.count(name) != 0 || visiting.count(name) != 0) return OkStatus();
    std::optional<KernelModule> module = lookup(name);
    if (!module) return Error("module " + name + " not found");
    visiting.insert(name);
    for (const auto& dependency : module->depends) {
      if (Status status = place(dependency); !status.ok()) {
        return status.error().WithContext("module " + name + " needs " + dependency);
      }
    }
    visiting.erase(name);
    placed.insert(name);
    order.push_back(std::move(*module));
    return OkStatus();
  };
  for (const auto& name : wanted) WEDGE_RETURN_IF_ERROR(place(NormalizedModuleName(name)));
  return order;
}

std::set<std::string> ParseModulesBuiltin(std::string_view text) {
  std::set<std::string> names;
  for (const auto& path : SplitWords(text, '\n')) names.insert(ModuleName(path));
  return names;
}

Result<std::vector<KernelModule>> ModuleLoadOrder(const std::vector<std::string>& requested,
                                                  const fs::path& modules_dir) {
  Result<std::string> builtin_text = sys::ReadFile(modules_dir / "modules.builtin");
  const std::set<std::string> builtin =
      builtin_text.ok() ? ParseModulesBuiltin(*builtin_text) : std::set<std::string>{};
  std::vector<std::string> wanted;
  for (const auto& name : requested) {
    if (builtin.count(NormalizedModuleName(name)) == 0) wanted.push_back(name);
  }
  if (Result<std::string> dep = sys::ReadFile(modules_dir / "modules.dep"); dep.ok()) {
    std::map<std::string, KernelModule> modules = ParseModulesDep(*dep);
    return ModuleLoadOrder(wanted, [&](const std::string& name) -> std::optional<KernelModule> {
      auto found = modules.find(name);
      if (found == modules.end()) return std::nullopt;
      return found->second;
    });
  }
  std::map<std::string, fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(modules_dir / "kernel", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().find(".ko") != std::string::npos) {
      files[ModuleName(it->path())] = it->path().lexically_relative(modules_dir);
    }
  }
  return ModuleLoadOrder(wanted, [&](const std::string& name) -> std::optional<KernelModule> {
    auto found = files.find(name);
    if (found == files.end()) return std::nullopt;
    Result<std::string> bytes = sys::ReadFile(modules_dir / found->second);
    if (!bytes.ok()) return std::nullopt;
    return KernelModule{name, found->second, ParseModinfoDepends(*bytes)};
  });
}

}  // namespace wedge::vm
