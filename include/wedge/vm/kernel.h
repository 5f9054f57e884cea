// The kernels of `wedge run --kernel`: the host's own, a vmlinuz on disk, or a Debian kernel
// package fetched with apt and cached; and the modules a guest must load.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"

namespace wedge::vm {

enum class KernelSource {
  kHost,     // "host": the running kernel, natively
  kPath,     // a vmlinuz file (anything with a '/')
  kPackage,  // a Debian package name or fnmatch glob: linux-image-6.1.0-*-cloud-amd64
};

struct KernelSpec {
  KernelSource source = KernelSource::kHost;
  std::string text;     // as the user wrote it
  std::string release;  // a package's release ("bullseye"), "" for the host's own apt sources
  std::string package;  // a package's name or glob, without the release
};

// Parses one --kernel value: "host", a path, or [RELEASE:]PACKAGE, e.g.
// bullseye:linux-image-5.10.0-*-cloud-amd64 (RELEASE one of wedge::DebianReleases(), its
// archive reached through the host's mirror; without it, the host's own apt sources). Package
// names may only hold Debian's package name characters and the glob characters * ? [ ].
Result<KernelSpec> ParseKernelSpec(std::string_view text);

// The package a name or glob selects among `available` (apt-cache pkgnames output): every name
// `pattern` matches in full (fnmatch), the highest by version sort (strverscmp). The glob
// matches whole names, so linux-image-6.1.0-*-cloud-amd64 never picks the -dbg or -unsigned
// packages.
Result<std::string> SelectKernelPackage(std::string_view pattern,
                                        const std::vector<std::string>& available);

// A kernel a guest boots.
struct KernelImage {
  std::string label;  // what the matrix calls it: "host", a package name or a path
  bool host = false;  // run natively on the running kernel; the fields below are unset
  std::filesystem::path vmlinuz;
  std::filesystem::path modules_dir;  // lib/modules/RELEASE; empty when none was found
  std::string release;                // "6.1.0-56-cloud-amd64"
};

// Where fetched kernel packages are extracted: /var/cache/wedge/kernels, or
// $WEDGE_KERNEL_CACHE. A cache, not a host mutation: kept between runs.
std::filesystem::path DefaultKernelCache();

// Resolves a spec to a bootable kernel. A package is looked up with `apt-cache pkgnames` (in its
// release's lists, stack/release_archive.h, when it names one), fetched with `apt-get download`
// and extracted with `dpkg-deb -x` into CACHE/PACKAGE (once; later runs use the cache). A
// package without a kernel image (sid's linux-image-R, which only depends on linux-binary-R and
// linux-modules-R) brings its dependencies named for the same R into the same tree. `progress` (may
// be null) gets one line per download. Bad input (unknown package, missing or unreadable vmlinuz)
// is an error and changes nothing but the cache.
Result<KernelImage> ResolveKernel(const KernelSpec& spec, const std::filesystem::path& cache_dir,
                                  std::ostream* progress);

// A loadable module and the modules it needs, by name ("fuse"; '-' and '_' are the same).
struct KernelModule {
  std::string name;
  std::filesystem::path path;  // relative to the modules directory
  std::vector<std::string> depends;
};

// A module's name from its file name: kernel/fs/fuse/fuse.ko -> "fuse", snd-pcm.ko.xz ->
// "snd_pcm".
std::string ModuleName(const std::filesystem::path& file);
// Parses modules.dep ("kernel/fs/x.ko: kernel/lib/y.ko ...") into modules by name.
std::map<std::string, KernelModule> ParseModulesDep(std::string_view text);
// The `depends=` list of a module file's .modinfo section (its raw bytes).
std::vector<std::string> ParseModinfoDepends(std::string_view module_bytes);
// The modules to load, dependencies first, for the modules `wanted`; `lookup` finds a module
// by name. A name lookup cannot find is an error.
Result<std::vector<KernelModule>> ModuleLoadOrder(
    const std::vector<std::string>& wanted,
    const std::function<std::optional<KernelModule>(const std::string&)>& lookup);
// The modules built into the kernel, by name, from modules.builtin text (one path a line).
std::set<std::string> ParseModulesBuiltin(std::string_view text);
// The same, for the modules of `modules_dir`: from its modules.dep when it has one (depmod ran),
// else from each module file's .modinfo (a package extracted without running depmod). Modules
// its modules.builtin lists are built in: nothing to load.
Result<std::vector<KernelModule>> ModuleLoadOrder(const std::vector<std::string>& wanted,
                                                  const std::filesystem::path& modules_dir);

}  // namespace wedge::vm
