// The "fuse-daemon" fixture kind (FuseDaemonFixture in wedge/scenario/scenario.h): the libfuse3
// daemon of fixtures/fuse_daemon.cpp, started in the sandbox by a spawn step.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/kinds/contexts.h"
#include "wedge/scenario/scenario.h"

namespace wedge::kinds {

// Reads and validates the "fuse-daemon" fixture `entry` (its "kind" already read): its
// mountpoint overlaps no earlier fixture's.
scenario::FuseDaemonFixture ReadFuseDaemonFixture(const scenario::reader::Node& entry,
                                                  scenario::ReadContext& context);

// Creates the fixture's mountpoint under the run directory, before anything is spawned.
Status Prepare(const scenario::FuseDaemonFixture& fixture, runner::RunContext& context);
// The daemon's command line: wedge-fuse (next to wedge) with the fixture's options.
std::vector<std::string> Argv(const scenario::FuseDaemonFixture& fixture,
                              const runner::RunContext& context);

// How a fixture runs as the main process of a container (a spawn step's "container").
struct ContainerRun {
  std::filesystem::path binary;          // the fixture, for its image
  std::vector<std::string> run_options;  // what `docker run` needs for it
  std::vector<std::string> argv;         // its command line in the container, ready on stdout
};
// wedge-fuse as users run a FUSE filesystem in docker: /dev/fuse and CAP_SYS_ADMIN (to mount),
// the mountpoint /wedge/MOUNTPOINT made as the working directory.
ContainerRun InContainer(const scenario::FuseDaemonFixture& fixture,
                         const runner::RunContext& context);

}  // namespace wedge::kinds
