// Running one run-command step: a real binary under the confinement a scenario pins.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"
#include "wedge/signature/signature.h"
#include "wedge/sys/journal.h"

namespace wedge::runner {

// Runs `binary` with the step's args and environment `env`, with the step's rlimits,
// NoNewPrivileges and seccomp filter installed between fork and exec, exactly as systemd would
// before starting a unit's ExecStart. Waits up to the step's timeout, then kills it. How it
// ended comes from the kernel: the wait status, and for a seccomp kill the audit record naming
// the refused syscall.
Result<signature::ObservedCommand> RunCommandStep(const scenario::RunCommandStep& step,
                                                  const std::filesystem::path& binary,
                                                  const std::map<std::string, std::string>& env,
                                                  sys::Journal& journal);

}  // namespace wedge::runner
