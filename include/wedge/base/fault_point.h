// Fault points: named places in wedge where its own fault tests stop it, to kill or interrupt it
// at an exact point rather than after a guessed delay (tests/scenario/fault_kill_points_test.cpp).
//
// They exist only in a build configured with the CMake option WEDGE_FAULT_POINTS=ON (./ci/test's
// build); by default, in ./ci/suite's build and in an installed wedge, FaultPoint does nothing and
// WEDGE_FAULT_STOP_AT is ignored, so a variable left set can never stop a run holding a deadlock
// and the run lock. With them, WEDGE_FAULT_STOP_AT=NAME makes wedge print
// "fault point: stopped before NAME" on stdout and stop itself (SIGSTOP) when it reaches NAME; the
// test then sends SIGKILL, or a signal followed by SIGCONT.
//
// The points:
//   "stack", "setup", "trigger", "stall", "capture", "match", "recover", "teardown"
//                          as each phase of a run begins (runner::PhaseClock::Begin)
//   "guest"                a guest kernel's qemu runs, journaled (vm::RunInGuest)
//   "stack-containerd-up"  in a private stack's start: containerd serves, dockerd not yet started
//   "release-root-built"   a release's root complete in CACHE/.build-RUN_ID-RELEASE, journaled,
//                          not yet renamed into place (stack::EnsureReleaseRoot)
//   "flap-outage"          in a flap step: containerd away in the first outage, as the step's
//                          "how" leaves it (the probe attached to dockerd)
//   "undo"                 in Journal::UndoAll: the newest pending change undone, older ones still
//                          pending (a kill leaves a half-done undo)
#pragma once

#include <string_view>

namespace wedge {

// Stops wedge at the point `name` if WEDGE_FAULT_STOP_AT names it and fault points are compiled
// in; otherwise returns at once.
void FaultPoint(std::string_view name);

// Whether this build has fault points (`wedge --version` says).
bool FaultPointsCompiledIn();

}  // namespace wedge
