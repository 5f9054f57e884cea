// Running auxiliary commands (version queries, tools) through Boost.Process.
//
// These are short calls, each waited for and killed at its timeout, some made where no journal
// exists yet (`wedge list`, the kernel cache): nothing they start is meant to outlive the call,
// so they are not journaled. A process wedge owns beyond one such call (a command step, qemu,
// strace) is a ChildProcess (sys/child_process.h), journaled before it runs.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "wedge/base/result.h"

namespace wedge::sys {

struct CommandOutput {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `program` (a path, or a name searched in PATH) with `args`, waiting at most `timeout`;
// a command still running then is killed and reported as an error.
Result<CommandOutput> RunCommand(const std::string& program, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The same, run with exactly `environment` instead of wedge's own.
Result<CommandOutput> RunCommand(const std::string& program, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout,
                                 const std::map<std::string, std::string>& environment);

}  // namespace wedge::sys
