// A Debian release's archive, reached through the mirror of the host's own apt sources: the
// packages of one release (bullseye, bookworm, trixie, sid), whatever release the host runs.
//
// apt-get and apt-cache run with that release's state alone, kept under APT_DIR
// (STACK_CACHE/apt/RELEASE): its sources.list (the mirror, the release, main, signed by
// Debian's archive keyring), its lists and package cache, and an empty dpkg status so that the
// host's installed versions do not count. The host's own apt configuration is never changed.
// Release roots (stack/release_root.h) and kernel packages (vm/kernel.h) are fetched from it.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/sys/command.h"

namespace wedge::stack {

// The Debian archive the host's apt uses: the first URI of a "deb" source whose suites are not
// -security, in sources.list (one-line) or *.sources (deb822) text; nullopt if none.
std::optional<std::string> MirrorFromSources(std::string_view text);
// $WEDGE_DEBIAN_MIRROR, else MirrorFromSources over /etc/apt/sources.list and
// /etc/apt/sources.list.d/*.{list,sources}.
Result<std::string> DebianMirror();

// Debian's archive keyring, which signs every release's Release file.
inline constexpr char kDebianArchiveKeyring[] = "/usr/share/keyrings/debian-archive-keyring.gpg";

// The environment apt, dpkg and mmdebstrap run with, whatever wedge's own is: a standard PATH,
// LC_ALL=C (their messages are parsed and quoted).
const std::map<std::string, std::string>& ArchiveToolEnvironment();

class ReleaseArchive {
 public:
  // `release`'s archive at `mirror`, its apt state under `apt_dir` (created, root's, not
  // writable by others). Nothing is fetched yet.
  static Result<ReleaseArchive> Open(const std::string& release, const std::string& mirror,
                                     const std::filesystem::path& apt_dir);

  const std::string& release() const { return release_; }
  const std::string& mirror() const { return mirror_; }
  // "deb [signed-by=KEYRING] MIRROR RELEASE main", as sources.list and mmdebstrap take it.
  std::string SourceLine() const;

  // apt-get update. apt exits 0 on some fetch failures, so an index it could not get ("Err:",
  // "Failed to fetch") is an error too, naming the release and quoting apt.
  Status UpdateLists() const;
  // UpdateLists unless the last one that succeeded was less than `max_age` ago.
  Status EnsureFreshLists(std::chrono::seconds max_age) const;
  // apt-cache ARGS over this release's lists.
  Result<sys::CommandOutput> AptCache(const std::vector<std::string>& args) const;
  // apt-get download PACKAGE (its candidate version) into `directory`; an error quoting apt.
  Status Download(const std::string& package, const std::filesystem::path& directory) const;

 private:
  ReleaseArchive(std::string release, std::string mirror, std::filesystem::path apt_dir);
  std::vector<std::string> AptOptions() const;

  std::string release_;
  std::string mirror_;
  std::filesystem::path apt_dir_;
};

// The names a package's Depends field lists (alternatives and version constraints dropped),
// from `apt-cache show --no-all-versions PACKAGE` output.
std::vector<std::string> ParseDepends(std::string_view show_output);

}  // namespace wedge::stack
