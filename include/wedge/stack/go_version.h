// Which Go toolchain built a binary, read from its build information (the ELF section
// .go.buildinfo that `go version FILE` reads), without running it: a release's daemons may not
// run outside their root, and the version is what decides some bugs (seed 002: Go 1.19's os
// init calls setrlimit; later ones call prlimit64).
#pragma once

#include <filesystem>
#include <string>

#include "wedge/base/result.h"

namespace wedge::stack {

// "go1.19.8"; an error naming the file when it is not a 64-bit little-endian ELF file or has no
// Go build information. Both layouts are read: Go 1.18 and later inline the version string;
// earlier ones (bullseye's go1.15) point at a string header in the binary's data.
Result<std::string> GoVersionOf(const std::filesystem::path& binary);

}  // namespace wedge::stack
