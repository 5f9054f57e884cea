#include "wedge/base/debian_releases.h"

#include <algorithm>

namespace wedge {

const std::vector<std::string>& DebianReleases() {
  // buster is not on the archive's mirror any more (no Release file).
  static const std::vector<std::string> kReleases = {"bullseye", "bookworm", "trixie", "sid"};
  return kReleases;
}

bool IsDebianRelease(std::string_view release) {
  const auto& releases = DebianReleases();
  return std::find(releases.begin(), releases.end(), release) != releases.end();
}

std::string DebianReleaseList() {
  std::string list;
  for (const auto& release : DebianReleases()) list += (list.empty() ? "" : ", ") + release;
  return list;
}

}  // namespace wedge
