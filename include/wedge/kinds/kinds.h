// Every kind module, for the runner's dispatch and the loader's: the alternatives of
// scenario::Step, scenario::RecoveryStep, scenario::Precondition::check and scenario::Fixture::kind
// are the table of kinds, and std::visit finds each one's run functions here by overload; the
// loader (harness/scenario/loader.cpp) finds each one's reader through the table of its category,
// keyed by the name the file spells. Adding a kind is one module (its header here; read.cpp and
// run.cpp under harness/kinds/NAME/), one alternative and one entry in its category's table.
#pragma once

#include "wedge/kinds/abort_fuse_connections.h"
#include "wedge/kinds/drain_pipes.h"
#include "wedge/kinds/flap.h"
#include "wedge/kinds/fuse_daemon.h"
#include "wedge/kinds/kill.h"
#include "wedge/kinds/kill_sandbox.h"
#include "wedge/kinds/pids_limit_hit.h"
#include "wedge/kinds/pipe_capacity_at_most.h"
#include "wedge/kinds/rlimit_soft_below_hard.h"
#include "wedge/kinds/run_command.h"
#include "wedge/kinds/spawn.h"
#include "wedge/kinds/wait_for_stall.h"
#include "wedge/kinds/watched_command.h"
