// The contexts a kind module is handed, declared for the kinds' headers: the loader's
// (wedge/scenario/read_context.h, with the reader's Node) and a run's (wedge/runner/run_context.h).
#pragma once

namespace wedge::scenario {
struct ReadContext;
namespace reader {
struct Node;
}
}  // namespace wedge::scenario

namespace wedge::runner {
struct RunContext;
}  // namespace wedge::runner
