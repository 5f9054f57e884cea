// The Debian releases whose docker stack wedge runs (`wedge run --stack RELEASE`), oldest
// first: what the command line accepts, what a scenario may state an expectation for, and what
// the stack module builds roots of.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wedge {

// bullseye, bookworm, trixie, sid.
const std::vector<std::string>& DebianReleases();
bool IsDebianRelease(std::string_view release);
// "bullseye, bookworm, trixie, sid": for the messages that say what a release may be.
std::string DebianReleaseList();

}  // namespace wedge
