#include <filesystem>

#include "wedge/kinds/fuse_daemon.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

Status Prepare(const scenario::FuseDaemonFixture& fixture, runner::RunContext& context) {
  std::error_code ec;
  std::filesystem::create_directories(context.run_dir / fixture.mountpoint, ec);
  return OkStatus();
}

std::vector<std::string> Argv(const scenario::FuseDaemonFixture& fixture,
                              const runner::RunContext& context) {
  std::vector<std::string> argv = {(context.options.fixtures_dir / "wedge-fuse").string(),
                                   "--mountpoint", (context.run_dir / fixture.mountpoint).string(),
                                   "--file", fixture.file};
  if (fixture.holder_thread) argv.push_back("--holder-thread");
  argv.push_back("--flush");
  argv.push_back(fixture.flush == scenario::FuseDaemonFixture::Flush::kReply ? "reply" : "never");
  return argv;
}

}  // namespace wedge::kinds
