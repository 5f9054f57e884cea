// wedge's subcommands, one overload per parsed command line; each returns wedge's exit status.
#pragma once

#include "wedge/cli/command_line.h"

namespace wedge::cli {

int Execute(const ListCommand& command);      // catalog.cpp
int Execute(const ValidateCommand& command);  // catalog.cpp
int Execute(const RunCommand& command);       // run.cpp
int Execute(const VerifyCommand& command);    // patch.cpp
int Execute(const BisectCommand& command);    // patch.cpp
int Execute(const SnapshotCommand& command);  // live.cpp
int Execute(const MatchCommand& command);     // live.cpp
int Execute(const CleanupCommand& command);   // cleanup.cpp

}  // namespace wedge::cli
